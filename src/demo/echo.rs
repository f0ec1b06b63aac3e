//! `demo-agent --role echo`: the smallest useful task agent. It reads
//! JSON-RPC lines on stdin and answers each `task.run` at once with
//! `{"echo": input}`; it buffers its answers and flushes when stdin has
//! nothing more for it, so a busy stream costs few writes.

use std::io::{BufRead, BufWriter, Write};

use serde_json::{Value, json};

pub fn run() -> i32 {
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {}
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if msg.get("method").and_then(Value::as_str) == Some("task.run") {
            let answer = json!({
                "jsonrpc": "2.0",
                "id": msg.get("id"),
                "result": { "echo": msg.pointer("/params/task/input") },
            });
            if serde_json::to_writer(&mut out, &answer).is_err() || out.write_all(b"\n").is_err() {
                return 0;
            }
        }
        // Flush once the lines already read are answered.
        if input.buffer().is_empty() && out.flush().is_err() {
            return 0;
        }
    }
}

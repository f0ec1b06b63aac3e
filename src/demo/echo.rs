//! `demo-agent --role echo`: the smallest useful task agent. It reads
//! JSON-RPC lines on stdin and answers each `task.run` at once with
//! `{"echo": input}`; it buffers its answers and flushes when stdin has
//! nothing more for it, so a busy stream costs few writes. With
//! `ECHO_RECORD` set it appends `ID ATTEMPT MICROS` to that file for every
//! task it gets (MICROS: when, µs since the epoch; tests count re-runs and
//! the benchmark measures dispatch with it).

use std::io::{BufRead, BufWriter, Write};

use serde_json::{Value, json};

pub fn run() -> i32 {
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut record = std::env::var_os("ECHO_RECORD").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
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
            if let Some(f) = record.as_mut() {
                let task = msg.pointer("/params/task");
                let id = task.and_then(|t| t.get("id")).and_then(Value::as_str);
                let attempt = task.and_then(|t| t.get("attempt")).and_then(Value::as_u64);
                // One write per line: replicas append to the same file.
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                let rec = format!("{} {} {micros}\n", id.unwrap_or("?"), attempt.unwrap_or(0));
                let _ = f.write_all(rec.as_bytes());
            }
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

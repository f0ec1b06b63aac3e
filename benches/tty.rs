//! Interactive agents: what terminals cost the daemon, and how fast a key
//! comes back. Run: `cargo bench --bench tty` (about a minute).
//!
//! - CPU: 50 `tty = true` replicas each printing 100 lines a second (80
//!   characters with some color), for 20 s after 5 s to settle: the
//!   daemon's own CPU (pty reads, the emulator, the plain-text log).
//! - Keystroke to echo: a `tty = true` replica running `cat`; one key sent
//!   as the console sends it (`send` with the input held), then `screen`
//!   asked until the key shows (the terminal's own echo), over the local
//!   socket; 300 keys, p50 and p99.

mod common;

use std::time::{Duration, Instant};

use autonomos::proto::{Request, Response};
use common::{Daemon, cpu_seconds as cpu};

const PRINTER: &str = "i=0; while :; do i=$((i+1)); printf '\\033[32m%08d\\033[0m the quick brown fox jumps over the lazy dog, line of a busy agent\\n' $i; sleep 0.01; done";

async fn screen(c: &mut autonomos::client::Client) -> String {
    let req = Request::Screen {
        agent: "echo".into(),
        replica: 0,
        cells: true,
    };
    match c.request(req).await {
        Ok(Response::Screen { screen }) => screen.lines.join("\n"),
        other => panic!("screen: {other:?}"),
    }
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let mut cfg = String::new();
    for i in 0..50 {
        cfg.push_str(&format!(
            "[agents.t{i}]\ncommand = [\"sh\", \"-c\", {PRINTER:?}]\ntty = true\n"
        ));
    }
    let d = Daemon::start(bin, &cfg);
    let pid = d.child.id();
    std::thread::sleep(Duration::from_secs(5));
    let (t0, (own0, _)) = (Instant::now(), cpu(pid));
    std::thread::sleep(Duration::from_secs(20));
    let secs = t0.elapsed().as_secs_f64();
    let (own1, _) = cpu(pid);
    println!("| what | measured |");
    println!("| --- | --- |");
    println!(
        "| daemon CPU, 50 tty replicas × ~100 lines/s, 20 s | {:.1} % of a core |",
        (own1 - own0) / secs * 100.0
    );
    drop(d);

    let d = Daemon::start(bin, "[agents.echo]\ncommand = [\"cat\"]\ntty = true\n");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = d.connect().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut lat = Vec::new();
        for i in 0..300 {
            let ch = char::from(b'a' + (i % 26) as u8);
            // A new line every 60 keys keeps the screen from scrolling
            // the key out of sight.
            let text = if i % 60 == 59 {
                "\r".to_string()
            } else {
                ch.to_string()
            };
            let before = screen(&mut c).await;
            let t = Instant::now();
            let req = Request::Send {
                agent: "echo".into(),
                replica: 0,
                text,
                enter: false,
                hold: Some(true),
            };
            c.request(req).await.expect("send");
            loop {
                if screen(&mut c).await != before {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(2), "no echo");
            }
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "| keystroke to echo over the local socket (300 keys) | p50 {:.2} ms, p99 {:.2} ms |",
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100]
        );
    });
}

//! The CLI verbs that talk to a daemon: connect, send, print (human or
//! `--json`). Formatting is kept in pure functions so it can be tested.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::Global;
use crate::client::{Client, ClientError, SshTarget, Update};
use crate::core::lifecycle::{Millis, State};
use crate::core::sanitize::sanitize_line;
use crate::proto::{AgentStatus, FleetStatus, Request, Response, ServerEvent, Stream};

/// Connects as the global options say: over ssh with `--host`, else to the
/// local daemon of the data dir in force.
pub async fn connect(g: &Global) -> Result<Client, ClientError> {
    match &g.host {
        Some(url) => {
            let mut t = SshTarget::parse(url).map_err(ClientError::Ssh)?;
            t.remote_bin = g.remote_bin.clone();
            t.remote_data_dir = g.remote_data_dir.clone();
            t.ssh_config = g.ssh_config.clone();
            Client::connect_ssh(&t).await
        }
        None => {
            let data_dir =
                crate::paths::client_data_dir(g.data_dir.as_deref(), g.config.as_deref());
            Client::connect_local(&crate::paths::runtime_dir(), &data_dir).await
        }
    }
}

/// Prints an error (and its JSON form with `--json`); exit code 1.
pub fn fail(e: &ClientError, json: bool) -> ExitCode {
    if json {
        let kind = match e {
            ClientError::Request(r) => serde_json::to_value(r.kind).unwrap_or_default(),
            ClientError::NoDaemon { .. } => "no_daemon".into(),
            _ => "connection".into(),
        };
        println!(
            "{}",
            serde_json::json!({ "ok": false, "kind": kind, "message": e.to_string() })
        );
    }
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Runs a request whose answer is a message (scale, start, stop, ...).
pub async fn simple(g: &Global, request: Request, json: bool) -> ExitCode {
    let result = async {
        let mut c = connect(g).await?;
        c.request(request).await
    }
    .await;
    match result {
        Ok(Response::Done { message }) => {
            if json {
                println!("{}", serde_json::json!({ "ok": true, "message": message }));
            } else {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Ok(Response::Stopped {
            message,
            was_running,
        }) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": true, "message": message, "was_running": was_running })
                );
            } else {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => {
            eprintln!("error: unexpected answer {other:?}");
            ExitCode::FAILURE
        }
        Err(e) => fail(&e, json),
    }
}

/// Parses `AGENT` or `AGENT/N`.
pub fn parse_target(s: &str) -> Result<(String, Option<u32>), String> {
    match s.split_once('/') {
        None => Ok((s.to_string(), None)),
        Some((a, n)) => n
            .parse::<u32>()
            .map(|n| (a.to_string(), Some(n)))
            .map_err(|_| format!("`{s}`: a replica is written AGENT/N, e.g. researcher/2")),
    }
}

pub async fn status(g: &Global, replicas: bool, json: bool) -> ExitCode {
    let result = async { connect(g).await?.status().await }.await;
    match result {
        Ok(s) => {
            if json {
                match serde_json::to_string_pretty(&s) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            } else {
                print!("{}", status_table(&s, replicas));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, json),
    }
}

/// "1h02m", "5m12s", "42s".
pub fn fmt_age(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 86_400 {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// "12.4MiB".
pub fn fmt_bytes(b: u64) -> String {
    crate::config::format_size(b)
}

/// The state that best describes an agent: the most pressing of its replicas'.
pub fn agent_state(a: &AgentStatus) -> String {
    if !a.enabled {
        return "stopped".into();
    }
    let rank = |s: State| match s {
        State::Failed => 0,
        State::Backoff => 1,
        State::Adaptation => 2,
        State::Decommissioning => 3,
        State::TaskCompletion => 4,
        State::ResourceAllocation => 5,
        State::Initialization => 6,
        State::ContextPreparation => 7,
        State::PerformanceMonitoring => 8,
        State::ActiveOperation => 9,
        State::Stopped => 10,
    };
    match a.replicas.iter().map(|r| r.state).min_by_key(|s| rank(*s)) {
        Some(s) => s.label().to_string(),
        None => "scaled to 0".into(),
    }
}

/// The fleet table of `autonomos status`.
pub fn status_table(s: &FleetStatus, replicas: bool) -> String {
    let now = s.now;
    let mut rows: Vec<[String; 8]> = vec![[
        "AGENT".into(),
        "REPLICAS".into(),
        "STATE".into(),
        "CPU".into(),
        "MEMORY".into(),
        "RESTARTS".into(),
        "UPTIME".into(),
        "LAST EXIT".into(),
    ]];
    let uptime = |started: Option<Millis>| {
        started
            .map(|t| fmt_age(now.saturating_sub(t)))
            .unwrap_or_else(|| "-".into())
    };
    for a in &s.agents {
        let cpu: f64 = a.replicas.iter().map(|r| r.cpu_percent).sum();
        let mem: u64 = a.replicas.iter().map(|r| r.rss_bytes).sum();
        let restarts: u64 = a.replicas.iter().map(|r| r.restarts).sum();
        let oldest = a.replicas.iter().filter_map(|r| r.started_at).min();
        let last = a
            .replicas
            .iter()
            .filter_map(|r| r.last_exit)
            .max_by_key(|e| e.at)
            .map(|e| format!("{e}, {} ago", fmt_age(now.saturating_sub(e.at))))
            .unwrap_or_else(|| "-".into());
        rows.push([
            a.name.clone(),
            format!("{}/{}", a.running, a.desired),
            agent_state(a),
            format!("{cpu:.1}%"),
            fmt_bytes(mem),
            restarts.to_string(),
            uptime(oldest),
            last,
        ]);
        if replicas {
            for r in &a.replicas {
                let mut state = r.state.label().to_string();
                if let Some(w) = r.waiting.as_ref().or(r.error.as_ref()) {
                    state = format!("{state} ({})", sanitize_line(w.as_bytes()));
                }
                rows.push([
                    format!("  {}/{}", a.name, r.index),
                    r.pid
                        .map(|p| format!("pid {p}"))
                        .unwrap_or_else(|| "-".into()),
                    state,
                    format!("{:.1}%", r.cpu_percent),
                    fmt_bytes(r.rss_bytes),
                    r.restarts.to_string(),
                    uptime(r.started_at),
                    r.last_exit
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
        }
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            let right = (3..=5).contains(&i);
            if right {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                if i < 7 {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if i < 7 {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let rows_omitted: u32 = s.agents.iter().map(|a| a.replicas_omitted).sum();
    if replicas && rows_omitted > 0 {
        out.push_str(&format!(
            "({rows_omitted} replica rows not listed: the fleet is larger than one answer)\n"
        ));
    }
    if s.agents_omitted > 0 {
        out.push_str(&format!(
            "({} agents not listed: the fleet is larger than one answer)\n",
            s.agents_omitted
        ));
    }
    if let Some(p) = &s.backup_progress {
        out.push_str(&format!("\n{}\n", sanitize_line(p.line().as_bytes())));
    }
    for f in &s.storage {
        out.push_str(&format!(
            "\nDATA DIR FAILING: writes to the {} fail since {} ago ({} failed): {}\n",
            f.what,
            fmt_age(now.saturating_sub(f.since)),
            f.errors,
            sanitize_line(f.error.as_bytes())
        ));
        out.push_str(match f.part.as_str() {
            "state" => "  changes (scale, start, stop) are refused until it takes writes again\n",
            _ => "  audit records are kept in memory and written when it takes writes again\n",
        });
    }
    out
}

/// `autonomos logs`: sanitized, one `[replica] line` each; `-f` polls for more.
pub async fn logs(g: &Global, agent: String, follow: bool, lines: usize, json: bool) -> ExitCode {
    let mut c = match connect(g).await {
        Ok(c) => c,
        Err(e) => return fail(&e, json),
    };
    let mut since = None;
    let mut out = std::io::stdout().lock();
    loop {
        let req = Request::Logs {
            agent: agent.clone(),
            lines,
            since,
        };
        match c.request(req).await {
            Ok(Response::Logs { lines: got, next }) => {
                if let Some(prev) = since
                    && let Some(first) = got.first()
                    && first.seq > prev + 1
                {
                    let skipped = first.seq - prev - 1;
                    if !json {
                        let _ = writeln!(
                            out,
                            "… {skipped} lines not shown (output faster than the follow)"
                        );
                    }
                }
                for l in &got {
                    let r = if json {
                        serde_json::to_string(l)
                            .map(|s| writeln!(out, "{s}"))
                            .is_ok()
                    } else {
                        let tag = match l.stream {
                            Stream::Stdout => "",
                            Stream::Stderr => "!",
                        };
                        writeln!(
                            out,
                            "[{}{tag}] {}",
                            l.replica,
                            sanitize_line(l.text.as_bytes())
                        )
                        .is_ok()
                    };
                    if !r {
                        return ExitCode::SUCCESS; // stdout closed (e.g. | head)
                    }
                }
                let _ = out.flush();
                since = Some(next);
            }
            Ok(other) => {
                eprintln!("error: unexpected answer {other:?}");
                return ExitCode::FAILURE;
            }
            Err(e) => return fail(&e, json),
        }
        if !follow {
            return ExitCode::SUCCESS;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One line per event, for `attach` until the console is there.
pub fn event_line(now: Millis, event: &ServerEvent) -> Option<String> {
    let t = jiff::Timestamp::from_millisecond(now as i64)
        .map(|t| t.strftime("%H:%M:%S").to_string())
        .unwrap_or_default();
    match event {
        ServerEvent::Transition {
            agent,
            replica,
            transition,
        } => Some(format!(
            "{t} {agent}/{replica} {} → {}: {}",
            transition.from,
            transition.to,
            sanitize_line(transition.reason.as_bytes())
        )),
        ServerEvent::Agent {
            name,
            desired,
            enabled,
        } => Some(format!(
            "{t} {name}: desired {desired}, {}",
            if *enabled { "started" } else { "stopped" }
        )),
        ServerEvent::FleetChanged => Some(format!("{t} fleet changed (reload)")),
        ServerEvent::ShuttingDown => Some(format!("{t} daemon shutting down")),
        ServerEvent::Samples { .. } => None,
        ServerEvent::Storage { faults } if faults.is_empty() => {
            Some(format!("{t} data dir takes writes again"))
        }
        ServerEvent::Storage { faults } => Some(format!(
            "{t} DATA DIR FAILING: {}",
            faults
                .iter()
                .map(|f| format!("{}: {}", f.what, sanitize_line(f.error.as_bytes())))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        ServerEvent::Audit {
            records,
            backup_running,
            progress,
        } => {
            let last = records
                .last()
                .map(|r| format!("audit #{} {} {}: {}", r.seq, r.actor, r.action, r.result))
                .unwrap_or_default();
            Some(format!(
                "{t} {last}{}",
                match progress {
                    Some(p) => format!(" ({})", p.line()),
                    None if *backup_running => " (backup running)".to_string(),
                    None => String::new(),
                }
            ))
        }
        ServerEvent::Alerts { alerts, .. } => {
            let firing: Vec<&str> = alerts
                .iter()
                .filter(|a| a.state == "firing")
                .map(|a| a.id.as_str())
                .collect();
            Some(format!(
                "{t} alerts: {} firing{}{}",
                firing.len(),
                if firing.is_empty() { "" } else { ": " },
                firing.join(", ")
            ))
        }
    }
}

/// `attach` (line mode): the status, then events as they happen, until
/// Ctrl-C, `q` + Enter, or the daemon goes away. Never touches the fleet.
pub async fn attach(g: &Global) -> ExitCode {
    let mut c = match connect(g).await {
        Ok(c) => c,
        Err(e) => return fail(&e, false),
    };
    let (_, snap) = match c.subscribe().await {
        Ok(s) => s,
        Err(e) => return fail(&e, false),
    };
    println!(
        "attached to the Autonomos daemon on {} (pid {}, version {}); Ctrl-C detaches, the fleet keeps running",
        c.daemon.host, c.daemon.pid, c.daemon.version
    );
    print!("{}", status_table(&snap, false));
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    let mut stdin_open = true;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(_) = async { match hangup.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => break,
            Some(_) = async { match term.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => break,
            n = tokio::io::AsyncBufReadExt::read_line(&mut stdin, &mut line), if stdin_open => {
                match n {
                    // No stdin (or closed): keep following until a signal.
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(_) if line.trim() == "q" => break,
                    Ok(_) => line.clear(),
                }
            }
            u = c.next_event() => match u {
                Ok(Update::Event(_, e)) => {
                    if let Some(l) = event_line(now_ms(), &e) { println!("{l}"); }
                }
                Ok(Update::Snapshot(_, s)) => print!("{}", status_table(&s, false)),
                Err(e) => { eprintln!("detached: {e}"); return ExitCode::FAILURE; }
            }
        }
    }
    println!("detached; the fleet keeps running");
    ExitCode::SUCCESS
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `dial-stdio`: relay stdin/stdout to the local daemon's socket, with
/// half-close in both directions.
pub async fn dial_stdio(g: &Global) -> ExitCode {
    let data_dir = crate::paths::client_data_dir(g.data_dir.as_deref(), g.config.as_deref());
    let socket = crate::paths::socket_path(&crate::paths::runtime_dir(), &data_dir);
    let mut sock = match tokio::net::UnixStream::connect(&socket).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "autonomos dial-stdio: no daemon for data dir {} ({}: {e})",
                data_dir.display(),
                socket.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    match tokio::io::copy_bidirectional(&mut stdio, &mut sock).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autonomos dial-stdio: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `up`: start a detached daemon for the data dir if none answers. Returns
/// the options to attach with (the data dir made explicit).
pub async fn up(
    g: &Global,
    sample_every: Option<Duration>,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<Global, ExitCode> {
    if g.host.is_some() {
        return Ok(g.clone());
    }
    let source = crate::paths::find_config(g.config.as_deref());
    let cfg = match crate::paths::load_config(&source) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            eprintln!("\nthe daemon was not started: fix the config and try again");
            return Err(ExitCode::from(2));
        }
    };
    let data_dir = crate::paths::data_dir(g.data_dir.as_deref(), &cfg);
    let runtime = crate::paths::runtime_dir();
    if Client::connect_local(&runtime, &data_dir).await.is_err() {
        match spawn_detached(&source, &data_dir, sample_every, metrics_addr) {
            Ok(log) => {
                let t = std::time::Instant::now();
                loop {
                    if Client::connect_local(&runtime, &data_dir).await.is_ok() {
                        break;
                    }
                    if t.elapsed() > Duration::from_secs(15) {
                        eprintln!(
                            "error: the daemon did not come up within 15 s; see {}",
                            log.display()
                        );
                        return Err(ExitCode::FAILURE);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                eprintln!(
                    "started the daemon for {} (log: {})",
                    data_dir.display(),
                    log.display()
                );
            }
            Err(e) => {
                eprintln!("error: cannot start the daemon: {e}");
                return Err(ExitCode::FAILURE);
            }
        }
    }
    let mut g = g.clone();
    g.data_dir = Some(data_dir);
    Ok(g)
}

/// Attaches the console when the terminal can show it, else the line mode.
pub async fn attach_any(g: &Global, plain: bool) -> ExitCode {
    #[cfg(feature = "tui")]
    {
        use std::io::IsTerminal;
        if !plain && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
            let g2 = g.clone();
            let connect: crate::tui::Connect = Box::new(move || {
                let g = g2.clone();
                Box::pin(async move { connect(&g).await })
            });
            let remote = g.host.as_ref().and_then(|h| {
                SshTarget::parse(h).ok().map(|t| match t.user {
                    Some(u) => format!("{u}@{}", t.host),
                    None => t.host,
                })
            });
            // Theme and keys: the flag (or AUTONOMOS_THEME), else the local
            // config's [console], else the defaults.
            let source = crate::paths::find_config(g.config.as_deref());
            let console = match crate::paths::load_config(&source) {
                Ok(cfg) => cfg.console,
                Err(e) => {
                    eprint!("{e}");
                    eprintln!(
                        "\nthe console cannot read its settings from this config: fix it and try again"
                    );
                    return ExitCode::from(2);
                }
            };
            let theme = g.theme.clone().or_else(|| {
                let t = console.theme.clone()?;
                // A theme file is relative to the config file.
                match &source {
                    crate::paths::ConfigSource::File(p)
                        if t.contains('/') || t.ends_with(".toml") =>
                    {
                        p.parent().map(|d| d.join(&t).display().to_string())
                    }
                    _ => Some(t),
                }
            });
            return crate::tui::run(
                connect,
                crate::tui::Options {
                    theme: theme.unwrap_or_else(|| "dark".into()),
                    remote,
                    keys: console.keys,
                },
            )
            .await;
        }
    }
    let _ = plain;
    attach(g).await
}

fn spawn_detached(
    source: &crate::paths::ConfigSource,
    data_dir: &Path,
    sample_every: Option<Duration>,
    metrics_addr: Option<std::net::SocketAddr>,
) -> std::io::Result<PathBuf> {
    crate::daemon::prepare_data_dir(data_dir).map_err(std::io::Error::other)?;
    let log = data_dir.join("logs").join("daemon.out");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let err = out.try_clone()?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("daemon")
        .arg("--detached")
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(every) = sample_every {
        cmd.arg("--sample-every")
            .arg(format!("{}ms", every.as_millis()));
    }
    if let Some(addr) = metrics_addr {
        cmd.arg("--metrics-addr").arg(addr.to_string());
    }
    if let crate::paths::ConfigSource::File(p) = source {
        cmd.arg("--config").arg(std::path::absolute(p)?);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir("/");
    // Not waited for: the daemon calls setsid() and outlives us.
    cmd.spawn()?;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target("a"), Ok(("a".into(), None)));
        assert_eq!(parse_target("a/2"), Ok(("a".into(), Some(2))));
        assert!(parse_target("a/x").is_err());
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(fmt_age(42_000), "42s");
        assert_eq!(fmt_age(312_000), "5m12s");
        assert_eq!(fmt_age(3_720_000), "1h02m");
        assert_eq!(fmt_age(90_000_000), "1d01h");
    }
}

//! Sessions with a daemon: `up`, `attach` (console or line mode),
//! `dial-stdio`.

use super::*;

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

/// `dial-stdio`: relay stdin/stdout to the local daemon's socket, with
/// half-close in both directions.
pub async fn dial_stdio(g: &Global) -> ExitCode {
    let data_dir = crate::paths::client_data_dir(g.data_dir.as_deref(), g.config.as_deref());
    let opened = match &g.socket {
        Some(path) => tokio::net::UnixStream::connect(path).await.map_err(|e| {
            crate::client::ClientError::Ssh(format!("cannot connect to {}: {e}", path.display()))
        }),
        None => crate::client::open_local(&crate::paths::runtime_dir(), &data_dir).await,
    };
    let mut sock = match opened {
        Ok(s) => s,
        Err(e) => {
            eprintln!("autonomos dial-stdio: {e}");
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
    if !g.host.is_empty() || g.socket.is_some() {
        // A named daemon elsewhere: nothing to start here.
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
            let all = match targets(g) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // One console, one link per host; requests go to the host in view.
            let hosts: Vec<crate::tui::Host> = all
                .iter()
                .map(|t| {
                    let name = if all.len() > 1 {
                        t.name.clone()
                    } else {
                        String::new()
                    };
                    let (g, t) = (g.clone(), t.clone());
                    let connect: crate::tui::Connect = Box::new(move || {
                        let (g, t) = (g.clone(), t.clone());
                        Box::pin(async move { connect_to(&g, &t).await })
                    });
                    crate::tui::Host { name, connect }
                })
                .collect();
            let remote = (all.len() == 1).then(|| all[0].url.clone()).flatten();
            let remote = remote.as_deref().and_then(|h| {
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
            return crate::tui::run_hosts(
                hosts,
                crate::tui::Options {
                    theme: theme.unwrap_or_else(|| crate::tui::theme::Theme::default_name().into()),
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

pub(super) fn spawn_detached(
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

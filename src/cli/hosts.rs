//! Which daemons a verb talks to: the local one, or those `--host` names
//! (repeatable): an `ssh://` URL, a `[[hosts]]` name from the config, or
//! `all` for every `[[hosts]]` entry.

use super::*;

/// One daemon to talk to.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// How it is shown (its `[[hosts]]` name, else the URL's host).
    pub name: String,
    /// None: the local daemon.
    pub url: Option<String>,
    pub data_dir: Option<String>,
    pub socket: Option<String>,
    pub remote_bin: Option<String>,
}

impl Target {
    fn local() -> Target {
        Target {
            name: "local".into(),
            url: None,
            data_dir: None,
            socket: None,
            remote_bin: None,
        }
    }

    fn from_url(url: &str) -> Result<Target, String> {
        let t = SshTarget::parse(url)?;
        let name = match t.port {
            Some(p) => format!("{}:{p}", t.host),
            None => t.host,
        };
        Ok(Target {
            name,
            url: Some(url.to_string()),
            data_dir: None,
            socket: None,
            remote_bin: None,
        })
    }

    fn from_spec(h: &crate::config::HostSpec) -> Target {
        Target {
            name: h.name.clone(),
            url: Some(h.url.clone()),
            data_dir: h.data_dir.clone(),
            socket: h.socket.clone(),
            remote_bin: h.remote_bin.clone(),
        }
    }
}

/// The daemons `--host` names (the local one without it). Names and `all`
/// are read from the config's `[[hosts]]`.
pub fn targets(g: &Global) -> Result<Vec<Target>, String> {
    if g.host.is_empty() {
        return Ok(vec![Target::local()]);
    }
    let mut known: Option<Vec<crate::config::HostSpec>> = None;
    let mut out: Vec<Target> = Vec::new();
    for h in &g.host {
        let found = if h.starts_with("ssh://") {
            vec![Target::from_url(h)?]
        } else {
            let hosts = match &known {
                Some(k) => k,
                None => known.insert(configured_hosts(g)?),
            };
            if h == "all" {
                if hosts.is_empty() {
                    return Err("`--host all`: the config has no [[hosts]] entries".into());
                }
                hosts.iter().map(Target::from_spec).collect()
            } else {
                match hosts.iter().find(|s| s.name == *h) {
                    Some(s) => vec![Target::from_spec(s)],
                    None => {
                        let names: Vec<&str> = hosts.iter().map(|s| s.name.as_str()).collect();
                        return Err(format!(
                            "`--host {h}`: not an ssh:// URL and no [[hosts]] entry of that name (known: {})",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ));
                    }
                }
            }
        };
        for t in found {
            // The same daemon named twice; two daemons on one machine (other
            // data dirs or sockets) stay two.
            let same = |o: &Target| {
                (&o.url, &o.data_dir, &o.socket, &o.remote_bin)
                    == (&t.url, &t.data_dir, &t.socket, &t.remote_bin)
            };
            if !out.iter().any(same) {
                out.push(t);
            }
        }
    }
    // Two URLs with one host name stay apart.
    let names: Vec<String> = out.iter().map(|t| t.name.clone()).collect();
    for (i, t) in out.iter_mut().enumerate() {
        if names.iter().filter(|n| **n == t.name).count() > 1 {
            t.name = format!("{}#{}", t.name, i + 1);
        }
    }
    Ok(out)
}

fn configured_hosts(g: &Global) -> Result<Vec<crate::config::HostSpec>, String> {
    let source = crate::paths::find_config(g.config.as_deref());
    crate::paths::load_config(&source)
        .map(|c| c.hosts)
        .map_err(|e| format!("reading [[hosts]] from the config: {e}"))
}

/// Connects to one target; `--remote-*` and `--ssh-config` fill in what its
/// `[[hosts]]` entry leaves out.
pub async fn connect_to(g: &Global, t: &Target) -> Result<Client, ClientError> {
    let Some(url) = &t.url else {
        return connect_local(g).await;
    };
    let mut s = SshTarget::parse(url).map_err(ClientError::Ssh)?;
    s.remote_bin = t.remote_bin.clone().unwrap_or_else(|| g.remote_bin.clone());
    s.remote_data_dir = t.data_dir.clone().or_else(|| g.remote_data_dir.clone());
    s.remote_socket = t.socket.clone().or_else(|| g.remote_socket.clone());
    s.ssh_config = g.ssh_config.clone();
    Client::connect_ssh(&s).await
}

/// The local daemon: by `--socket`, else by the data dir in force.
pub async fn connect_local(g: &Global) -> Result<Client, ClientError> {
    match &g.socket {
        Some(socket) => Client::connect_socket(socket).await,
        None => {
            let data_dir =
                crate::paths::client_data_dir(g.data_dir.as_deref(), g.config.as_deref());
            Client::connect_local(&crate::paths::runtime_dir(), &data_dir).await
        }
    }
}

//! The A2A HTTP gateway (`[gateway]`): each task agent served under
//! `/agents/NAME/` in the A2A protocol's HTTP+JSON binding, on hyper and
//! axum, over TLS (rustls) when `cert`/`key` are set. Requests carry the
//! bearer token of `token_file` when one is set (compared in constant
//! time). Bounds: `max_connections` at once, `request_timeout` per request
//! (and per quiet stretch of a stream), bodies up to `[tasks] max_input`
//! plus room for the envelope.

mod a2a;
mod auth;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::GatewaySpec;
use crate::daemon::router::Router;
use crate::daemon::tasks::Tasks;

/// A connection's TLS handshake and its request headers must arrive within
/// this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers beyond this are refused.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    tasks: Tasks,
    router: Router,
    /// SHA-256 of the bearer token, when one is required.
    token: Option<[u8; 32]>,
    tls: bool,
    /// The largest body read (the largest input plus the envelope).
    max_body: usize,
    request_timeout: Duration,
}

/// A running gateway: where it listens.
pub struct Gateway {
    pub addr: SocketAddr,
    pub tls: bool,
}

/// The gateway bound and its files read, not yet serving.
pub struct Bound {
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    token: Option<[u8; 32]>,
    spec: GatewaySpec,
    max_input: u64,
    pub addr: SocketAddr,
}

/// Reads the TLS files and the token and binds (before any agent starts,
/// so a mistake here stops the daemon with nothing running). Errors name
/// the file or address at fault.
pub fn bind(spec: &GatewaySpec, max_input: u64) -> Result<Option<Bound>, String> {
    let Some(addr) = spec.listen else {
        return Ok(None);
    };
    let acceptor = match (&spec.cert, &spec.key) {
        (Some(c), Some(k)) => Some(acceptor(c, k)?),
        _ => None,
    };
    let token = match &spec.token_file {
        Some(f) => Some(auth::read_token(f)?),
        None => None,
    };
    let what = |e: std::io::Error| format!("cannot serve the gateway on {addr}: {e}");
    let std_listener = std::net::TcpListener::bind(addr).map_err(what)?;
    std_listener.set_nonblocking(true).map_err(what)?;
    let listener = TcpListener::from_std(std_listener).map_err(what)?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("gateway on {addr}: {e}"))?;
    Ok(Some(Bound {
        listener,
        acceptor,
        token,
        spec: spec.clone(),
        max_input,
        addr: bound,
    }))
}

impl Bound {
    /// Serves until the runtime ends.
    pub fn serve(self, tasks: Tasks, router: Router) -> Gateway {
        let shared = Shared {
            tasks,
            router,
            token: self.token,
            tls: self.acceptor.is_some(),
            max_body: self.max_input as usize + 64 * 1024,
            request_timeout: self.spec.request_timeout,
        };
        let tls = self.acceptor.is_some();
        tokio::spawn(serve(self.listener, self.acceptor, shared, self.spec));
        Gateway {
            addr: self.addr,
            tls,
        }
    }
}

fn acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let certs = crate::config::pem_certificates(cert)
        .map_err(|e| format!("gateway cert {}: {e}", cert.display()))?;
    let bytes = std::fs::read(key).map_err(|e| format!("gateway key {}: {e}", key.display()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "gateway key {}: not a PEM private key ({e:?})",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| format!("gateway cert and key do not make a TLS identity: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Shared,
    spec: GatewaySpec,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(spec.max_connections));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "gateway: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = routes::routes(shared.clone(), peer);
        let service = TowerToHyperService::new(app);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let http = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .max_buf_size(MAX_HEADER_BYTES);
                b
            };
            match acceptor {
                Some(a) => {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(stream)).await
                    else {
                        return;
                    };
                    let _ = http.serve_connection(TokioIo::new(tls), service).await;
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

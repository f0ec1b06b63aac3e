//! `[gateway]`: where the A2A HTTP gateway listens and how it guards
//! itself. Beyond loopback it needs TLS and a bearer token.

use super::*;
use crate::config::model::GatewaySpec;

/// Most connections the gateway may serve at once.
const MAX_CONNECTIONS: i128 = 4096;

impl Checker<'_> {
    pub(super) fn gateway(&mut self, t: &DeTable<'_>, spec: &mut GatewaySpec) {
        let keys = [
            "listen",
            "cert",
            "key",
            "token_file",
            "max_connections",
            "request_timeout",
        ];
        let [
            listen,
            cert,
            key,
            token_file,
            max_connections,
            request_timeout,
        ] = self.fields(t, "gateway", keys, |k| {
            matches!(k, "addr" | "address" | "bind" | "port")
                .then(|| "write listen = \"127.0.0.1:8080\"".to_owned())
                .or_else(|| {
                    matches!(k, "token" | "bearer" | "secret")
                        .then(|| "keep the token in a file: token_file = \"PATH\"".to_owned())
                })
        });
        let field = |key| Field {
            key,
            table: "gateway",
        };
        if let Some((_, v)) = listen {
            spec.listen = self.listen_addr(v, "gateway", "127.0.0.1:8080");
        }
        if let Some((_, v)) = cert {
            spec.cert = self.path(v, field("cert"));
        }
        if let Some((_, v)) = key {
            spec.key = self.path(v, field("key"));
        }
        if let Some((_, v)) = token_file {
            spec.token_file = self.path(v, field("token_file"));
        }
        if let Some((_, v)) = max_connections
            && let Some(n) = self.int_in(v, field("max_connections"), 1, MAX_CONNECTIONS)
        {
            spec.max_connections = n as usize;
        }
        if let Some((_, v)) = request_timeout
            && let Some(d) = self.duration_max(v, field("request_timeout"), HOUR)
        {
            if d < SECOND {
                let message = "`request_timeout` in [gateway] must be at least 1s".to_owned();
                self.problem(v.span(), message, None);
            } else {
                spec.request_timeout = d;
            }
        }
        let span = t
            .get("listen")
            .map(|v| v.span())
            .or_else(|| t.get("cert").map(|v| v.span()))
            .or_else(|| t.get("key").map(|v| v.span()))
            .unwrap_or(0..0);
        if spec.cert.is_some() != spec.key.is_some() {
            self.problem(
                span.clone(),
                "[gateway] needs both `cert` and `key` for TLS, or neither".into(),
                Some("cert = \"gateway.crt\" and key = \"gateway.key\" (PEM files)".into()),
            );
        }
        if let Some(a) = spec.listen
            && !a.ip().is_loopback()
            && (spec.cert.is_none() || spec.key.is_none() || spec.token_file.is_none())
        {
            self.problem(
                span,
                format!(
                    "[gateway] listen = \"{a}\" is reachable beyond this machine: it needs TLS (`cert`, `key`) and a bearer token (`token_file`)"
                ),
                Some("listen on 127.0.0.1, or set cert, key and token_file".into()),
            );
        }
    }
}

//! Serving `/metrics` over HTTP/1.1: hyper for the protocol, axum for the
//! routes, and two bounds of our own so that a slow or hammering scraper
//! costs little: at most `MAX_CONNECTIONS` at once (more wait in the accept
//! queue), each closed after one answer and cut after `REQUEST_TIMEOUT`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::{Published, encode};

/// Concurrent scrape connections.
const MAX_CONNECTIONS: usize = 16;
/// The longest one connection may take, from accept to the last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// What one request may buffer (its headers): a scrape needs a few hundred
/// bytes.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// `GET /metrics` (and `HEAD`), an index at `/`, 404 elsewhere.
pub fn routes(published: Published) -> Router {
    Router::new()
        .route("/metrics", get(metrics).fallback(only_get))
        .route("/", get(index).fallback(only_get))
        .fallback(not_found)
        .with_state(published)
}

/// Serves the endpoint until the task is dropped.
pub async fn serve(listener: TcpListener, published: Published) {
    let service = TowerToHyperService::new(routes(published));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .max_buf_size(MAX_REQUEST_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, conn).await;
        });
    }
}

async fn metrics(State(published): State<Published>) -> Response {
    let scrape = published.lock().ok().and_then(|p| p.clone());
    let Some(scrape) = scrape else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no sample yet\n").into_response();
    };
    // Encoding 500 agents takes a few ms: off the async workers.
    let body = tokio::task::spawn_blocking(move || encode(scrape))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

async fn index() -> &'static str {
    "Autonomos metrics: GET /metrics\n"
}

async fn not_found(method: axum::http::Method) -> (StatusCode, &'static str) {
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        (StatusCode::NOT_FOUND, "not found; try /metrics\n")
    } else {
        only_get().await
    }
}

async fn only_get() -> (StatusCode, &'static str) {
    (StatusCode::METHOD_NOT_ALLOWED, "only GET\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn ask(port: u16, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn routes_answer_and_close_each_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let published: Published = Default::default();
        tokio::spawn(serve(listener, published));
        let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        // No sample yet: 503, and the connection closes after the answer.
        let r = ask(port, &get("/metrics")).await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(r.ends_with("no sample yet\n"), "{r}");
        let r = ask(port, &get("/")).await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("GET /metrics"),
            "{r}"
        );
        let r = ask(port, &get("/nope")).await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = ask(
            port,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        let r = ask(port, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            r.starts_with("HTTP/1.1 200") && !r.contains("GET /metrics"),
            "{r}"
        );
    }
}

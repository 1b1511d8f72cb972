//! The HTTP side of the metrics endpoint: hyper's HTTP/1 server on a tokio listener,
//! `GET /metrics` only (404 for any other path, 405 for another method).
//!
//! The work is bounded: at most [`MAX_CONNECTIONS`] connections at once (the next waits
//! to be accepted), a request's head must arrive within [`HEAD_TIMEOUT`] and a
//! connection ends after [`CONNECTION_LIFETIME`]; one collection runs at a time, on a
//! blocking thread (it reads maps and the connection tables), and never touches the
//! daemon's loop: the daemon's part comes from the [`Snapshot`] it last published.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Mutex, Semaphore, watch},
    task::JoinHandle,
};
use tracing::{info, warn};

use super::{Snapshot, collect};
use crate::{cli::status, dataplane::Maps};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a client may take to send a request's head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may stay open, keep-alive included.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running endpoint; dropping it closes the listener.
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsServer {
    /// Listens on `addr` and serves the maps pinned under `pin_path` (none: the daemon
    /// has no data plane) with the daemon's `snapshot`. A non-loopback address is
    /// logged as a warning: the endpoint has no authentication.
    pub async fn bind(
        addr: SocketAddr,
        pin_path: Option<PathBuf>,
        snapshot: watch::Receiver<Snapshot>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        if addr.ip().is_loopback() {
            info!(%addr, "serving metrics on http://{addr}/metrics");
        } else {
            warn!(
                %addr,
                "serving metrics on http://{addr}/metrics, not a loopback address: the \
                 endpoint has no authentication, anyone who reaches it reads the metrics"
            );
        }
        let source = Arc::new(Source {
            pin_path,
            snapshot,
            last: Mutex::new(None),
        });
        let task = tokio::spawn(accept_loop(listener, source));
        Ok(Self { addr, task })
    }

    /// Where it listens (the port chosen when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// What a scrape reads.
struct Source {
    pin_path: Option<PathBuf>,
    snapshot: watch::Receiver<Snapshot>,
    /// The last collection: when it started, and its text.
    last: Mutex<Option<(Instant, Arc<String>)>>,
}

impl Source {
    /// The exposition text, collected for this request (or by a collection that started
    /// after it arrived, while it waited for its turn).
    async fn scrape(&self) -> Result<Arc<String>, String> {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((started, text)) = last.as_ref() {
            if *started >= asked {
                return Ok(text.clone());
            }
        }
        let started = Instant::now();
        let snap = self.snapshot.borrow().clone();
        let pin_path = self.pin_path.clone();
        let text = tokio::task::spawn_blocking(move || {
            let plane = match pin_path.as_deref() {
                Some(p) => Some(read_plane(p).map_err(|e| format!("{e:#}"))?),
                None => None,
            };
            Ok::<_, String>(collect::encode(plane.as_ref(), &snap))
        })
        .await
        .map_err(|e| format!("collecting metrics: {e}"))??;
        let text = Arc::new(text);
        *last = Some((started, text.clone()));
        Ok(text)
    }
}

/// The maps' part, as `xlb status` reads it.
fn read_plane(pin_path: &Path) -> anyhow::Result<status::Status> {
    let maps = Maps::from_pins(pin_path)?;
    status::from_maps(&maps)
}

async fn accept_loop(listener: TcpListener, source: Arc<Source>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: try again shortly.
                warn!("metrics endpoint: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let source = source.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let source = source.clone();
                async move { Ok::<_, Infallible>(respond(&source, &req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn respond(source: &Source, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n".into(),
        );
    }
    if req.method() != Method::GET {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET /metrics\n".into());
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return r;
    }
    match source.scrape().await {
        Ok(text) => {
            let mut r = Response::new(Full::new(Bytes::from(text.as_bytes().to_vec())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(OPENMETRICS),
            );
            r
        }
        Err(e) => {
            warn!("metrics scrape failed: {e}");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the data plane: {e}\n"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_get_metrics_only() {
        let mut snap = Snapshot::default();
        snap.reloads.ok = 3;
        let (_tx, rx) = watch::channel(snap);
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), None, rx)
            .await
            .unwrap();
        let addr = server.local_addr();
        let ok = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(OPENMETRICS), "{ok}");
        assert!(
            ok.contains("xlb_config_reloads_total{result=\"ok\"} 3\n"),
            "{ok}"
        );
        let other = get(
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(other.starts_with("HTTP/1.1 404 Not Found\r\n"), "{other}");
        let post = get(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "dropping the server closes the listener"
        );
    }

    #[tokio::test]
    async fn a_scrape_of_missing_pins_is_an_error_not_a_hang() {
        let (_tx, rx) = watch::channel(Snapshot::default());
        let server = MetricsServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            Some(PathBuf::from("/nonexistent/xlb-met-pins")),
            rx,
        )
        .await
        .unwrap();
        let r = get(
            server.local_addr(),
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{r}"
        );
        assert!(r.contains("reading the data plane"), "{r}");
    }
}

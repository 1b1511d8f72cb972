//! `http_get` and `ssl_get`: a GET per `url`, each on its own connection, written by
//! hand as keepalived does; the check passes when every URL answers as expected.
//!
//! Per URL: the status must be in `status_code` (default 200-299); with `digest`, the
//! MD5 of the body must match (keepalived's `genhash` over the body bytes, after
//! de-chunking); with `regex`, the body must match it (not match with
//! `regex_no_match`). Without `digest` or `regex` the body is not read.
//!
//! `ssl_get` speaks TLS 1.2 / 1.3 (rustls) and, like keepalived, does not verify the
//! server's certificate: the check is about the service answering, not its identity.
//! SNI is sent only with `enable_sni` (`sni_name`, else the virtualhost).
//!
//! Timing: `connect_timeout` bounds the connection, then separately the TLS handshake
//! and the whole exchange of each URL.
//!
//! This module holds the spec and judges the answers; `wire` reads and writes
//! HTTP/1.x, `tls` is the TLS client.

mod tls;
mod wire;

use std::fmt;

use md5::Digest;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::socket::{ConnectOpts, fmt_duration, tcp_connect};
use super::state::Outcome;
use crate::config::{HttpProtocol, StatusCodes};
use crate::net::io_reason;

/// What an `http_get` / `ssl_get` fetches and expects.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    pub conn: ConnectOpts,
    /// `Some` for `ssl_get`.
    pub tls: Option<TlsOpts>,
    pub protocol: HttpProtocol,
    pub urls: Vec<UrlSpec>,
}

/// TLS options of `ssl_get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOpts {
    /// Server name sent as SNI (`enable_sni`).
    pub sni: Option<String>,
    /// Send close_notify before closing (`tls_compliant`).
    pub close_notify: bool,
}

/// One `url` entry, with its `Host:` resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlSpec {
    pub path: String,
    /// `Host:` header value: the virtualhost, else the address, with `:port` unless
    /// the port is the scheme's default.
    pub host: String,
    pub status: StatusCodes,
    pub digest: Option<[u8; 16]>,
    pub regex: Option<BodyRegex>,
    pub regex_no_match: bool,
}

/// A compiled `regex`, compared by its source.
#[derive(Clone)]
pub struct BodyRegex(pub regex::bytes::Regex);

impl PartialEq for BodyRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl fmt::Debug for BodyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

/// 32 hexadecimal digits to bytes.
pub fn parse_digest(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs one check: every URL in turn, stopping at the first failure.
pub async fn check(spec: &HttpSpec) -> Outcome {
    for url in &spec.urls {
        if let Err(reason) = fetch(spec, url).await {
            return Outcome::down(format!("{}: {reason}", url.path));
        }
    }
    Outcome::up()
}

async fn fetch(spec: &HttpSpec, url: &UrlSpec) -> Result<(), String> {
    let tcp = tcp_connect(&spec.conn).await?;
    let timeout = spec.conn.timeout;
    let request = wire::request(spec.protocol, &url.path, &url.host);
    let Some(tls) = &spec.tls else {
        let mut s = tcp;
        return bounded(timeout, exchange(&mut s, &request, url)).await;
    };
    let mut s = tls::handshake(tcp, tls.sni.as_deref(), spec.conn.addr.ip(), timeout).await?;
    let r = bounded(timeout, exchange(&mut s, &request, url)).await;
    if tls.close_notify {
        let _ = tokio::time::timeout(timeout, s.shutdown()).await;
    }
    r
}

/// `exchange` within `timeout`.
async fn bounded(
    timeout: std::time::Duration,
    exchange: impl Future<Output = Result<(), String>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timeout after {} waiting for the answer",
            fmt_duration(timeout)
        )),
    }
}

/// Sends `request` and judges the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    request: &[u8],
    url: &UrlSpec,
) -> Result<(), String> {
    s.write_all(request).await.map_err(|e| io_reason(&e))?;
    let (head, body_start) = wire::read_head(s).await?;
    if !url.status.contains(head.status) {
        return Err(format!("status {} (expected {})", head.status, url.status));
    }
    if url.digest.is_none() && url.regex.is_none() {
        return Ok(());
    }
    let body = wire::read_body(s, body_start, &head, url.regex.is_some()).await?;
    if let Some(want) = &url.digest {
        let got: [u8; 16] = body.md5.finalize().into();
        if &got != want {
            return Err(format!(
                "digest mismatch: MD5 of the body is {}, expected {}",
                hex(&got),
                hex(want)
            ));
        }
    }
    if let Some(re) = &url.regex {
        let matched = re.0.is_match(&body.kept);
        if matched == url.regex_no_match {
            return Err(if matched {
                format!("regex {:?} matched (regex_no_match)", re.0.as_str())
            } else {
                format!("regex {:?} no match", re.0.as_str())
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use md5::Md5;
    use tokio::net::TcpListener;

    use super::*;

    const BODY: &[u8] = b"<html>xlb says hello</html>\n";

    /// A tiny HTTP server on 127.0.0.1: `/ok` 200 with BODY, `/fail` 503, `/chunked`
    /// 200 with BODY in two chunks, `/length` 200 with Content-Length and a kept-alive
    /// connection; it records the request heads it gets.
    async fn http_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move { serve(s, log).await });
            }
        });
        (addr, seen)
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, log: Arc<Mutex<Vec<String>>>) {
        let mut buf = Vec::new();
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            if wire::read_some(&mut s, &mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        log.lock().unwrap().push(head);
        let mut out = Vec::new();
        match path.as_str() {
            "/ok" => {
                out.extend_from_slice(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n");
                out.extend_from_slice(BODY);
            }
            "/fail" => out.extend_from_slice(b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy"),
            "/chunked" => {
                let (a, b) = BODY.split_at(10);
                out.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                out.extend_from_slice(format!("{:x}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(format!("\r\n{:x};ext=1\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n0\r\n\r\n");
            }
            "/length" => {
                out.extend_from_slice(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", BODY.len()).as_bytes(),
                );
                out.extend_from_slice(BODY);
                let _ = s.write_all(&out).await;
                // Keep the connection open: the check must stop at Content-Length.
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            _ => out.extend_from_slice(b"HTTP/1.0 404 Not Found\r\n\r\n"),
        }
        let _ = s.write_all(&out).await;
        let _ = s.shutdown().await;
    }

    fn md5_hex(bytes: &[u8]) -> String {
        hex(&Md5::digest(bytes))
    }

    pub(super) fn url(path: &str) -> UrlSpec {
        UrlSpec {
            path: path.to_owned(),
            host: "www.example.org".to_owned(),
            status: StatusCodes::default(),
            digest: None,
            regex: None,
            regex_no_match: false,
        }
    }

    fn spec(addr: SocketAddr, urls: Vec<UrlSpec>) -> HttpSpec {
        HttpSpec {
            conn: ConnectOpts::new(addr, Duration::from_secs(2)),
            tls: None,
            protocol: HttpProtocol::Http10,
            urls,
        }
    }

    #[test]
    fn check_http_digest_parsing() {
        assert_eq!(
            parse_digest("0123456789abcdefABCDEF0123456789").map(|d| hex(&d)),
            Some("0123456789abcdefabcdef0123456789".to_owned())
        );
    }

    #[tokio::test]
    async fn check_http_status_digest_regex() {
        let (addr, seen) = http_server().await;
        assert_eq!(check(&spec(addr, vec![url("/ok")])).await, Outcome::up());
        assert!(seen.lock().unwrap()[0].contains("Host: www.example.org\r\n"));

        let out = check(&spec(addr, vec![url("/ok"), url("/fail")])).await;
        assert_eq!(out, Outcome::down("/fail: status 503 (expected 200-299)"));
        let mut u = url("/fail");
        u.status = StatusCodes(vec![503..=503]);
        assert_eq!(check(&spec(addr, vec![u])).await, Outcome::up());

        // digest: keepalived's genhash, MD5 of the body.
        let mut u = url("/ok");
        u.digest = parse_digest(&md5_hex(BODY));
        assert_eq!(check(&spec(addr, vec![u.clone()])).await, Outcome::up());
        u.digest = parse_digest(&md5_hex(b"something else"));
        let Outcome::Failure { reason } = check(&spec(addr, vec![u])).await else {
            panic!("digest mismatch passed");
        };
        assert!(
            reason.starts_with("/ok: digest mismatch: MD5 of the body is "),
            "{reason}"
        );
        assert!(reason.contains(&md5_hex(BODY)), "{reason}");

        // Chunked bodies are de-chunked before the digest; Content-Length ends a body.
        for path in ["/chunked", "/length"] {
            let mut u = url(path);
            u.digest = parse_digest(&md5_hex(BODY));
            assert_eq!(check(&spec(addr, vec![u])).await, Outcome::up(), "{path}");
        }

        let mut u = url("/ok");
        u.regex = Some(BodyRegex(regex::bytes::Regex::new("says h[e]llo").unwrap()));
        assert_eq!(check(&spec(addr, vec![u.clone()])).await, Outcome::up());
        u.regex_no_match = true;
        assert!(
            matches!(check(&spec(addr, vec![u.clone()])).await, Outcome::Failure { reason } if reason.contains("matched"))
        );
        u.regex = Some(BodyRegex(regex::bytes::Regex::new("goodbye").unwrap()));
        assert_eq!(check(&spec(addr, vec![u.clone()])).await, Outcome::up());
        u.regex_no_match = false;
        assert_eq!(
            check(&spec(addr, vec![u])).await,
            Outcome::down("/ok: regex \"goodbye\" no match")
        );
    }

    #[tokio::test]
    async fn check_http_closed_port_and_silent_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts, reads, never answers.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut s = spec(addr, vec![url("/ok")]);
        s.conn.timeout = Duration::from_millis(300);
        assert_eq!(
            check(&s).await,
            Outcome::down("/ok: timeout after 300ms waiting for the answer")
        );
        silent.abort();
        let _ = silent.await;
        assert_eq!(check(&s).await, Outcome::down("/ok: connection refused"));
    }

    #[tokio::test]
    async fn check_ssl_get_with_a_self_signed_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_der = cert.cert.der().clone();
        let key_der =
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let snis = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sni_log, req_log) = (snis.clone(), log.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (sni_log, req_log) = (sni_log.clone(), req_log.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        let sni = tls.get_ref().1.server_name().map(str::to_owned);
                        sni_log.lock().unwrap().push(sni);
                        serve(tls, req_log).await;
                    }
                });
            }
        });

        let mut u = url("/ok");
        u.digest = parse_digest(&md5_hex(BODY));
        let mut s = spec(addr, vec![u]);
        s.tls = Some(TlsOpts {
            sni: None,
            close_notify: true,
        });
        assert_eq!(check(&s).await, Outcome::up());
        s.tls = Some(TlsOpts {
            sni: Some("www.example.org".to_owned()),
            close_notify: false,
        });
        assert_eq!(check(&s).await, Outcome::up());
        assert_eq!(
            *snis.lock().unwrap(),
            vec![None, Some("www.example.org".to_owned())]
        );
        s.urls = vec![url("/fail")];
        assert_eq!(
            check(&s).await,
            Outcome::down("/fail: status 503 (expected 200-299)")
        );

        // Plain HTTP to the TLS port: the handshake fails and says so.
        let plain = spec(addr, vec![url("/ok")]);
        assert!(matches!(check(&plain).await, Outcome::Failure { .. }));
        // A server that hangs up at once: the handshake fails and says so.
        let closing = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut hangup = spec(closing.local_addr().unwrap(), vec![url("/ok")]);
        tokio::spawn(async move {
            while let Ok((s, _)) = closing.accept().await {
                drop(s);
            }
        });
        hangup.tls = Some(TlsOpts {
            sni: None,
            close_notify: false,
        });
        let Outcome::Failure { reason } = check(&hangup).await else {
            panic!("a TLS handshake with a closed connection passed");
        };
        assert!(reason.starts_with("/ok: TLS handshake: "), "{reason}");
    }
}

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

use std::fmt;
use std::sync::{Arc, OnceLock};

use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::socket::{ConnectOpts, fmt_duration, tcp_connect};
use super::state::Outcome;
use crate::config::{HttpProtocol, StatusCodes};
use crate::net::io_reason;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body kept for `regex` (the digest streams over any size); a chunked body
/// is kept whole up to this size to be de-chunked.
const MAX_BODY: usize = 4 * 1024 * 1024;

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
    let request = request(spec.protocol, url);
    let Some(tls) = &spec.tls else {
        let mut s = tcp;
        return bounded(timeout, exchange(&mut s, &request, url)).await;
    };
    let name = match &tls.sni {
        Some(n) => {
            ServerName::try_from(n.clone()).map_err(|_| format!("{n:?} is not a valid SNI name"))?
        }
        None => ServerName::IpAddress(spec.conn.addr.ip().into()),
    };
    let handshake = tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp);
    let mut s = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("TLS handshake: {}", tls_reason(&e))),
        Err(_) => {
            return Err(format!(
                "TLS handshake timeout after {}",
                fmt_duration(timeout)
            ));
        }
    };
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

fn tls_reason(e: &std::io::Error) -> String {
    match e.get_ref() {
        Some(inner) => inner.to_string(),
        None => io_reason(e),
    }
}

/// The request keepalived sends.
fn request(protocol: HttpProtocol, url: &UrlSpec) -> Vec<u8> {
    let (version, close) = match protocol {
        HttpProtocol::Http10 => ("1.0", false),
        HttpProtocol::Http10Close => ("1.0", true),
        HttpProtocol::Http11 => ("1.1", true),
    };
    let mut r = format!(
        "GET {} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\nHost: {}\r\n",
        url.path, url.host
    );
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The status line and the headers that say where the body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    /// Bytes of the status line and headers, blank line included.
    len: usize,
}

/// Parses a response head from the start of `buf`; `Ok(None)` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err("response headers too long".to_owned());
        }
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    }
    .filter(|c| (100..=999).contains(c))
    .ok_or_else(|| {
        format!(
            "not an HTTP response: {:?}",
            status_line.chars().take(60).collect::<String>()
        )
    })?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    Ok(Some(Head {
        status,
        content_length: if chunked { None } else { content_length },
        chunked,
        len: end + 4,
    }))
}

/// De-chunks a complete chunked body; `Ok(None)` while incomplete.
fn dechunk(mut raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&raw[..eol]).map_err(|_| "bad chunk size")?;
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            // Trailers until a blank line; the body is complete once it is there.
            return Ok(raw.windows(2).position(|w| w == b"\r\n").map(|_| body));
        }
        if raw.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Sends `request` and judges the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    request: &[u8],
    url: &UrlSpec,
) -> Result<(), String> {
    s.write_all(request).await.map_err(|e| io_reason(&e))?;
    let mut buf = Vec::with_capacity(4096);
    let head = loop {
        if let Some(h) = parse_head(&buf)? {
            break h;
        }
        if read_some(s, &mut buf).await? == 0 {
            return Err(if buf.is_empty() {
                "connection closed without an answer".to_owned()
            } else {
                "connection closed in the response headers".to_owned()
            });
        }
    };
    if !url.status.contains(head.status) {
        return Err(format!("status {} (expected {})", head.status, url.status));
    }
    if url.digest.is_none() && url.regex.is_none() {
        return Ok(());
    }
    let body = read_body(s, buf.split_off(head.len), &head, url.regex.is_some()).await?;
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

struct Body {
    md5: Md5,
    /// The body, or its first `MAX_BODY` bytes (only when `keep`).
    kept: Vec<u8>,
}

async fn read_body<S: AsyncRead + Unpin>(
    s: &mut S,
    start: Vec<u8>,
    head: &Head,
    keep: bool,
) -> Result<Body, String> {
    if head.chunked {
        let mut raw = start;
        loop {
            if let Some(body) = dechunk(&raw)? {
                let mut md5 = Md5::new();
                md5.update(&body);
                return Ok(Body { md5, kept: body });
            }
            if raw.len() > MAX_BODY {
                return Err(format!("chunked body larger than {MAX_BODY} bytes"));
            }
            if read_some(s, &mut raw).await? == 0 {
                return Err("connection closed in the chunked body".to_owned());
            }
        }
    }
    let mut body = Body {
        md5: Md5::new(),
        kept: Vec::new(),
    };
    let mut total: u64 = 0;
    let feed = |body: &mut Body, bytes: &[u8], total: &mut u64| {
        let take = match head.content_length {
            Some(n) => bytes.len().min((n - (*total).min(n)) as usize),
            None => bytes.len(),
        };
        let bytes = &bytes[..take];
        body.md5.update(bytes);
        if keep && body.kept.len() < MAX_BODY {
            let room = MAX_BODY - body.kept.len();
            body.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        *total += take as u64;
    };
    feed(&mut body, &start, &mut total);
    let mut chunk = vec![0u8; 16 * 1024];
    while head.content_length.is_none_or(|n| total < n) {
        let n = s.read(&mut chunk).await.map_err(|e| io_reason(&e))?;
        if n == 0 {
            if head.content_length.is_some() {
                return Err("connection closed before the end of the body".to_owned());
            }
            break;
        }
        feed(&mut body, &chunk[..n], &mut total);
    }
    Ok(body)
}

async fn read_some<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 8192];
    let n = s.read(&mut chunk).await.map_err(|e| io_reason(&e))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// One client configuration for every `ssl_get`: TLS 1.2 and 1.3, ring, no
/// certificate verification.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports TLS 1.2 and 1.3")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any certificate, as keepalived's SSL_GET does; handshake signatures are
/// still checked against the presented certificate.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Duration;

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
            if read_some(&mut s, &mut buf).await.unwrap_or(0) == 0 {
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

    fn url(path: &str) -> UrlSpec {
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
    fn check_http_head_parsing() {
        assert_eq!(parse_head(b"HTTP/1.0 200 OK\r\n"), Ok(None));
        let h = parse_head(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.content_length, h.chunked, h.len),
            (503, Some(4), false, 40)
        );
        let h = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.chunked);
        assert!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")
                .unwrap_err()
                .contains("not an HTTP")
        );
        assert_eq!(
            dechunk(b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"),
            Ok(Some(b"wikipedia".to_vec()))
        );
        assert_eq!(dechunk(b"4\r\nwiki\r\n5\r\npe"), Ok(None));
        assert_eq!(
            parse_digest("0123456789abcdefABCDEF0123456789").map(|d| hex(&d)),
            Some("0123456789abcdefabcdef0123456789".to_owned())
        );
    }

    #[test]
    fn check_http_request_is_keepalived_s() {
        let u = url("/health");
        assert_eq!(
            request(HttpProtocol::Http10, &u),
            b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www.example.org\r\n\r\n"
        );
        let r = String::from_utf8(request(HttpProtocol::Http11, &u)).unwrap();
        assert!(r.starts_with("GET /health HTTP/1.1\r\n") && r.contains("Connection: close\r\n"));
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

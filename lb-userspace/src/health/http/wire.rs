//! HTTP/1.x as `http_get` speaks it, by hand as keepalived does: the request, the
//! response head, and the body delimited by `Content-Length`, chunked encoding or the
//! end of the connection.

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::HttpProtocol;
use crate::net::io_reason;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body kept for `regex` (the digest streams over any size); a chunked body
/// is kept whole up to this size to be de-chunked.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The request keepalived sends.
pub(super) fn request(protocol: HttpProtocol, path: &str, host: &str) -> Vec<u8> {
    let (version, close) = match protocol {
        HttpProtocol::Http10 => ("1.0", false),
        HttpProtocol::Http10Close => ("1.0", true),
        HttpProtocol::Http11 => ("1.1", true),
    };
    let mut r =
        format!("GET {path} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\n");
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Reads the response head; returns it with the bytes read after it (the start of the
/// body).
pub(super) async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<(Head, Vec<u8>), String> {
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
    let body_start = buf.split_off(head.len);
    Ok((head, body_start))
}

/// The status line and the headers that say where the body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) status: u16,
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

/// A response body as read: its MD5, and the bytes kept for `regex`.
pub(super) struct Body {
    pub(super) md5: Md5,
    /// The body, or its first `MAX_BODY` bytes (only when `keep`).
    pub(super) kept: Vec<u8>,
}

/// Reads the body that `head` announces, `start` being its first bytes (read with the
/// head); keeps it for `regex` when `keep`.
pub(super) async fn read_body<S: AsyncRead + Unpin>(
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

/// Reads what is there into `buf`; 0 at the end of the stream.
pub(super) async fn read_some<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Result<usize, String> {
    let mut chunk = [0u8; 8192];
    let n = s.read(&mut chunk).await.map_err(|e| io_reason(&e))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::http::tests::url;

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
    }

    #[test]
    fn check_http_request_is_keepalived_s() {
        let u = url("/health");
        assert_eq!(
            request(HttpProtocol::Http10, &u.path, &u.host),
            b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www.example.org\r\n\r\n"
        );
        let r = String::from_utf8(request(HttpProtocol::Http11, &u.path, &u.host)).unwrap();
        assert!(r.starts_with("GET /health HTTP/1.1\r\n") && r.contains("Connection: close\r\n"));
    }
}

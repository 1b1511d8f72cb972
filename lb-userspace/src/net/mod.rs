//! Network helpers shared by the health checks and the notifications: I/O failures
//! worded for logs, the host's name, and the SMTP client's primitives ([`smtp`]) that
//! both `smtp_check` and the mail alerts speak.

use std::io;

pub mod smtp;

/// A log-friendly reason for an I/O error: "connection refused" rather than
/// "Connection refused (os error 111)".
pub(crate) fn io_reason(e: &io::Error) -> String {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".to_owned(),
        K::ConnectionReset => "connection reset".to_owned(),
        K::ConnectionAborted => "connection aborted".to_owned(),
        K::HostUnreachable => "host unreachable".to_owned(),
        K::NetworkUnreachable => "network unreachable".to_owned(),
        K::TimedOut => "timeout".to_owned(),
        K::UnexpectedEof => "connection closed early".to_owned(),
        K::AddrNotAvailable => "address not available".to_owned(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

/// The host name (for SMTP `HELO`), `localhost` when it cannot be read.
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // on success (the last byte stays 0 if truncated).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "localhost".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(s) if !s.is_empty() => s.to_owned(),
        _ => "localhost".to_owned(),
    }
}

//! `smtp_check`: connects, expects the 220 greeting, says `HELO <helo_name>` and
//! expects 250, then says `QUIT`, as keepalived's SMTP_CHECK. Multi-line replies
//! (`250-...`) are read to their last line. `connect_timeout` bounds the connection,
//! then separately the whole dialogue.

use tokio::io::{AsyncWriteExt, BufReader};

use super::socket::{ConnectOpts, fmt_duration, tcp_connect};
use super::state::Outcome;
use crate::net::io_reason;
use crate::net::smtp::reply;

/// Where a `smtp_check` connects and how it introduces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSpec {
    pub conn: ConnectOpts,
    pub helo_name: String,
}

/// Runs one check.
pub async fn check(spec: &SmtpSpec) -> Outcome {
    let stream = match tcp_connect(&spec.conn).await {
        Ok(s) => s,
        Err(reason) => return Outcome::down(reason),
    };
    let dialogue = async {
        let mut s = BufReader::new(stream);
        let greeting = reply(&mut s, "greeting").await?;
        if greeting != 220 {
            return Err(format!("greeting {greeting}, expected 220"));
        }
        s.write_all(format!("HELO {}\r\n", spec.helo_name).as_bytes())
            .await
            .map_err(|e| format!("HELO: {}", io_reason(&e)))?;
        let helo = reply(&mut s, "HELO").await?;
        if helo != 250 {
            return Err(format!("HELO answered {helo}, expected 250"));
        }
        // Polite end; its answer does not change the verdict.
        if s.write_all(b"QUIT\r\n").await.is_ok() {
            let _ = reply(&mut s, "QUIT").await;
        }
        Ok(())
    };
    match tokio::time::timeout(spec.conn.timeout, dialogue).await {
        Ok(Ok(())) => Outcome::up(),
        Ok(Err(reason)) => Outcome::down(reason),
        Err(_) => Outcome::down(format!(
            "timeout after {} in the SMTP dialogue",
            fmt_duration(spec.conn.timeout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// An SMTP server on 127.0.0.1 greeting with `greeting` (a full reply, CRLF
    /// included) and answering HELO with a multi-line 250; records what it is told.
    async fn server(greeting: &'static str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut s = BufReader::new(s);
                    let _ = s.write_all(greeting.as_bytes()).await;
                    let mut line = String::new();
                    while s.read_line(&mut line).await.unwrap_or(0) > 0 {
                        log.lock().unwrap().push(line.trim_end().to_owned());
                        let answer: &[u8] = if line.starts_with("HELO") {
                            b"250-mx.example.org\r\n250 PIPELINING\r\n"
                        } else {
                            b"221 bye\r\n"
                        };
                        let _ = s.write_all(answer).await;
                        line.clear();
                    }
                });
            }
        });
        (addr, heard)
    }

    fn spec(addr: SocketAddr) -> SmtpSpec {
        SmtpSpec {
            conn: ConnectOpts::new(addr, Duration::from_secs(2)),
            helo_name: "lb1.example.org".to_owned(),
        }
    }

    #[tokio::test]
    async fn check_smtp_banner_and_helo() {
        let (addr, heard) = server("220-mx.example.org ESMTP\r\n220 ready\r\n").await;
        assert_eq!(check(&spec(addr)).await, Outcome::up());
        assert_eq!(
            *heard.lock().unwrap(),
            vec!["HELO lb1.example.org".to_owned(), "QUIT".to_owned()]
        );

        let (busy, _) = server("421 too busy\r\n").await;
        assert_eq!(
            check(&spec(busy)).await,
            Outcome::down("greeting 421, expected 220")
        );
        let (ssh, _) = server("SSH-2.0-OpenSSH_9.2\r\n").await;
        assert_eq!(
            check(&spec(ssh)).await,
            Outcome::down("greeting: not an SMTP reply: \"SSH-2.0-OpenSSH_9.2\"")
        );
    }

    #[tokio::test]
    async fn check_smtp_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut s = spec(addr);
        s.conn.timeout = Duration::from_millis(300);
        assert_eq!(
            check(&s).await,
            Outcome::down("timeout after 300ms in the SMTP dialogue")
        );
        hold.abort();
    }
}

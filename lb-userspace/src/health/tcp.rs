//! `tcp_check`: up when a TCP connection completes within `connect_timeout`.
//!
//! The connection is then reset (SO_LINGER 0) rather than closed, as HAProxy does for
//! its checks: nothing was exchanged, and it leaves no TIME_WAIT behind, which at
//! thousands of checks a second toward one server would exhaust source ports.

use std::time::Duration;

use super::socket::{ConnectOpts, tcp_connect};
use super::state::Outcome;

/// What a `tcp_check` connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSpec {
    pub conn: ConnectOpts,
}

/// Runs one check.
pub async fn check(spec: &TcpSpec) -> Outcome {
    match tcp_connect(&spec.conn).await {
        Ok(stream) => {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            Outcome::up()
        }
        Err(reason) => Outcome::down(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn spec(addr: std::net::SocketAddr, timeout_ms: u64) -> TcpSpec {
        TcpSpec {
            conn: ConnectOpts::new(addr, Duration::from_millis(timeout_ms)),
        }
    }

    #[tokio::test]
    async fn check_tcp_listener_up_closed_port_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(check(&spec(addr, 2000)).await, Outcome::up());
        drop(listener);
        assert_eq!(
            check(&spec(addr, 2000)).await,
            Outcome::down("connection refused")
        );
    }

    #[tokio::test]
    async fn check_tcp_ipv6_and_bindto() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback: skipped");
            return;
        };
        let mut s = spec(listener.local_addr().unwrap(), 2000);
        s.conn.bindto = Some("::1".parse().unwrap());
        assert_eq!(check(&s).await, Outcome::up());
        let (_conn, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), "::1".parse::<std::net::IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn check_tcp_full_backlog_times_out() {
        // A listener that never accepts, with its backlog filled: further SYNs go
        // unanswered, which is what a hung server looks like.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        let mut timed_out = None;
        for _ in 0..8 {
            match tokio::time::timeout(
                Duration::from_millis(300),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) => held.push(s),
                _ => {
                    timed_out = Some(());
                    break;
                }
            }
        }
        if timed_out.is_none() {
            eprintln!("backlog never filled: skipped");
            return;
        }
        let out = check(&spec(addr, 300)).await;
        assert_eq!(out, Outcome::down("connection timeout after 300ms"));
    }
}

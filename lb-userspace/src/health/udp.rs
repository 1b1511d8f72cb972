//! `udp_check`: sends one datagram (`payload`) on a connected UDP socket.
//!
//! Without `require_reply` the check passes unless an error comes back within
//! `connect_timeout` (an ICMP port unreachable, reported by the kernel on the
//! connected socket): silence is success, as keepalived's UDP_CHECK. With
//! `require_reply` an answer must come back, of `min_reply_length..=max_reply_length`
//! bytes, starting with the given bytes if any.

use super::socket::{ConnectOpts, fmt_duration, udp_connect, udp_reason};
use super::state::Outcome;

/// What a `udp_check` sends and expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSpec {
    pub conn: ConnectOpts,
    pub payload: Vec<u8>,
    pub reply: Reply,
    pub min_reply_length: usize,
    pub max_reply_length: usize,
}

/// What answer is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    NotRequired,
    Any,
    StartsWith(Vec<u8>),
}

/// keepalived sends a 32-byte filler when no payload is configured.
pub fn default_payload() -> Vec<u8> {
    b"xlb udp_check: are you there?\n\0\0".to_vec()
}

/// Runs one check.
pub async fn check(spec: &UdpSpec) -> Outcome {
    let socket = match udp_connect(&spec.conn) {
        Ok(s) => s,
        Err(e) => return Outcome::down(e),
    };
    if let Err(e) = socket.send(&spec.payload).await {
        return Outcome::down(udp_reason(&e));
    }
    let mut buf = vec![0u8; spec.max_reply_length.max(spec.min_reply_length) + 1];
    match tokio::time::timeout(spec.conn.timeout, socket.recv(&mut buf)).await {
        Err(_) if spec.reply == Reply::NotRequired => Outcome::up(),
        Err(_) => Outcome::down(format!(
            "no reply within {}",
            fmt_duration(spec.conn.timeout)
        )),
        Ok(Err(e)) => Outcome::down(udp_reason(&e)),
        Ok(Ok(n)) => judge(spec, &buf[..n]),
    }
}

fn judge(spec: &UdpSpec, reply: &[u8]) -> Outcome {
    if spec.reply == Reply::NotRequired {
        return Outcome::up();
    }
    if reply.len() < spec.min_reply_length || reply.len() > spec.max_reply_length {
        return Outcome::down(format!(
            "reply of {} bytes, expected {}..={}",
            reply.len(),
            spec.min_reply_length,
            spec.max_reply_length
        ));
    }
    if let Reply::StartsWith(want) = &spec.reply {
        if !reply.starts_with(want) {
            return Outcome::down("reply data mismatch");
        }
    }
    Outcome::up()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;

    async fn echo_server() -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                let _ = sock.send_to(&buf[..n], peer).await;
            }
        });
        addr
    }

    fn spec(addr: SocketAddr, reply: Reply) -> UdpSpec {
        UdpSpec {
            conn: ConnectOpts::new(addr, Duration::from_millis(300)),
            payload: b"ping".to_vec(),
            reply,
            min_reply_length: 0,
            max_reply_length: 65535,
        }
    }

    #[tokio::test]
    async fn check_udp_echo_and_closed_port() {
        let echo = echo_server().await;
        assert_eq!(check(&spec(echo, Reply::NotRequired)).await, Outcome::up());
        assert_eq!(check(&spec(echo, Reply::Any)).await, Outcome::up());
        assert_eq!(
            check(&spec(echo, Reply::StartsWith(b"pi".to_vec()))).await,
            Outcome::up()
        );
        assert_eq!(
            check(&spec(echo, Reply::StartsWith(b"pong".to_vec()))).await,
            Outcome::down("reply data mismatch")
        );
        let mut short = spec(echo, Reply::Any);
        short.min_reply_length = 10;
        assert_eq!(
            check(&short).await,
            Outcome::down("reply of 4 bytes, expected 10..=65535")
        );

        // A closed port answers with ICMP port unreachable: down.
        let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        assert_eq!(
            check(&spec(addr, Reply::NotRequired)).await,
            Outcome::down("ICMP port unreachable")
        );

        // A bound socket that never answers: up unless a reply is required.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        assert_eq!(check(&spec(addr, Reply::NotRequired)).await, Outcome::up());
        assert_eq!(
            check(&spec(addr, Reply::Any)).await,
            Outcome::down("no reply within 300ms")
        );
        drop(silent);
    }
}

//! `dns_check`: one query over UDP; up when an answer with our ID, QR set and RCODE 0
//! (NOERROR) comes back within `connect_timeout`, as keepalived's DNS_CHECK (which
//! does not look at the answer section either). Datagrams with another ID are
//! ignored; an ICMP port unreachable fails the check at once.
//!
//! The codec is the small part of RFC 1035 4.1 a query needs:
//!
//! ```text
//!                                 1  1  1  1  1  1
//!   0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |                      ID                       |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |          QDCOUNT / ANCOUNT / NSCOUNT / ARCOUNT |  (4 x 16 bits)
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |  QNAME (labels) | QTYPE (16) | QCLASS (16, IN=1) |
//! ```

use super::socket::{ConnectOpts, fmt_duration, udp_connect, udp_reason};
use super::state::Outcome;

/// What a `dns_check` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    pub conn: ConnectOpts,
    /// QTYPE (1 A, 6 SOA, 28 AAAA, ...).
    pub qtype: u16,
    /// Its name, for logs.
    pub qtype_name: &'static str,
    /// The name asked, `.` for the root.
    pub name: String,
}

const HEADER_LEN: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_RD: u16 = 0x0100;

/// A query for `name` / `qtype` / IN with recursion desired, as keepalived sends.
fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&FLAG_RD.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    q.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    for label in name.split('.').filter(|l| !l.is_empty()) {
        // Labels are 1..=63 bytes: checked when the config was parsed.
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    q
}

/// What a received datagram says about our query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// Not an answer to it (too short, another ID, not a response): keep waiting.
    Ignore,
    /// An answer with this RCODE.
    Rcode(u8),
}

fn decode_reply(id: u16, datagram: &[u8]) -> Reply {
    if datagram.len() < HEADER_LEN {
        return Reply::Ignore;
    }
    let rid = u16::from_be_bytes([datagram[0], datagram[1]]);
    let flags = u16::from_be_bytes([datagram[2], datagram[3]]);
    if rid != id || flags & FLAG_QR == 0 {
        return Reply::Ignore;
    }
    Reply::Rcode((flags & 0x000f) as u8)
}

fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    }
}

/// Runs one check.
pub async fn check(spec: &DnsSpec) -> Outcome {
    let socket = match udp_connect(&spec.conn) {
        Ok(s) => s,
        Err(e) => return Outcome::down(e),
    };
    let id: u16 = rand::random();
    let query = encode_query(id, &spec.name, spec.qtype);
    let exchange = async {
        socket.send(&query).await.map_err(|e| udp_reason(&e))?;
        let mut buf = [0u8; 1500];
        loop {
            let n = socket.recv(&mut buf).await.map_err(|e| udp_reason(&e))?;
            match decode_reply(id, &buf[..n]) {
                Reply::Ignore => continue,
                Reply::Rcode(0) => return Ok(()),
                Reply::Rcode(r) => {
                    return Err(format!(
                        "{} {} answered rcode {r} ({})",
                        spec.qtype_name,
                        spec.name,
                        rcode_name(r)
                    ));
                }
            }
        }
    };
    match tokio::time::timeout(spec.conn.timeout, exchange).await {
        Ok(Ok(())) => Outcome::up(),
        Ok(Err(reason)) => Outcome::down(reason),
        Err(_) => Outcome::down(format!(
            "no answer to {} {} within {}",
            spec.qtype_name,
            spec.name,
            fmt_duration(spec.conn.timeout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;

    #[test]
    fn check_dns_query_bytes() {
        // dig +noedns -t A example.org, with ID 0x1234.
        let q = encode_query(0x1234, "example.org", 1);
        let mut want = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
        assert_eq!(q, want);
        // Root, SOA: keepalived's default query.
        assert_eq!(
            &encode_query(1, ".", 6)[HEADER_LEN..],
            b"\x00\x00\x06\x00\x01"
        );
        assert_eq!(
            encode_query(1, "example.org.", 1),
            encode_query(1, "example.org", 1)
        );
    }

    #[test]
    fn check_dns_reply_decoding() {
        let mut r = encode_query(7, "example.org", 1);
        assert_eq!(decode_reply(7, &r), Reply::Ignore, "a query is not a reply");
        r[2] |= 0x80;
        assert_eq!(decode_reply(7, &r), Reply::Rcode(0));
        assert_eq!(decode_reply(8, &r), Reply::Ignore);
        r[3] |= 3;
        assert_eq!(decode_reply(7, &r), Reply::Rcode(3));
        assert_eq!(decode_reply(7, &r[..5]), Reply::Ignore);
    }

    /// A responder on 127.0.0.1: answers each query with RCODE `rcode`, after first
    /// sending a datagram with a wrong ID (which must be ignored).
    async fn responder(rcode: u8) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                let mut answer = buf[..n].to_vec();
                answer[2] |= 0x80; // QR
                answer[3] = (answer[3] & 0xf0) | rcode;
                let mut wrong = answer.clone();
                wrong[0] ^= 0xff;
                let _ = sock.send_to(&wrong, peer).await;
                let _ = sock.send_to(&answer, peer).await;
            }
        });
        addr
    }

    fn spec(addr: SocketAddr, timeout_ms: u64) -> DnsSpec {
        DnsSpec {
            conn: ConnectOpts::new(addr, Duration::from_millis(timeout_ms)),
            qtype: 6,
            qtype_name: "SOA",
            name: ".".to_owned(),
        }
    }

    #[tokio::test]
    async fn check_dns_against_a_responder() {
        assert_eq!(check(&spec(responder(0).await, 2000)).await, Outcome::up());
        assert_eq!(
            check(&spec(responder(3).await, 2000)).await,
            Outcome::down("SOA . answered rcode 3 (NXDOMAIN)")
        );
    }

    #[tokio::test]
    async fn check_dns_closed_port_and_silence() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        // Bound but silent: timeout.
        assert_eq!(
            check(&spec(addr, 300)).await,
            Outcome::down("no answer to SOA . within 300ms")
        );
        drop(sock);
        // Closed: ICMP port unreachable.
        assert_eq!(
            check(&spec(addr, 2000)).await,
            Outcome::down("ICMP port unreachable")
        );
    }
}

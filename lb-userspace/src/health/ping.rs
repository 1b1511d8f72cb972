//! `ping_check`: up when the server answers an ICMP (ICMPv6) echo request within
//! `connect_timeout`, as keepalived's PING_CHECK.
//!
//! One socket serves every ping of an address family and source (a [`Pinger`]): a raw
//! socket when we may open one (root, CAP_NET_RAW), else an unprivileged ICMP datagram
//! socket (`net.ipv4.ping_group_range`). A reader task hands each echo reply to the
//! check waiting for its (source address, sequence number); raw sockets also match our
//! identifier, and a socket filter keeps other ICMP types out. Per-check raw sockets
//! would each receive a copy of every reply: quadratic at thousands of pings a second.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type (8/0,   |     Code 0    |          Checksum             |
//! |  128/129 v6)  |               |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Data ...
//! ```

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::socket::{bind_device, fmt_duration, set_int_opt, set_opt_bytes};
use super::state::Outcome;
use crate::net::io_reason;

/// What a `ping_check` pings, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingSpec {
    pub target: IpAddr,
    pub bindto: Option<IpAddr>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    pub timeout: Duration,
}

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const PAYLOAD: &[u8] = b"xlb ping_check\0\0";

/// An echo request. The checksum is filled for ICMPv4 (the kernel does it for ICMPv6).
fn encode_echo(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 }, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// (identifier, sequence) of an echo reply; `raw_v4`: the datagram starts with the
/// IPv4 header (raw IPv4 sockets).
fn decode_echo_reply(v6: bool, raw_v4: bool, datagram: &[u8]) -> Option<(u16, u16)> {
    let icmp = if raw_v4 {
        let ihl = usize::from(datagram.first()? & 0x0f) * 4;
        datagram.get(ihl..)?
    } else {
        datagram
    };
    if icmp.len() < 8 {
        return None;
    }
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    if icmp[0] != want || icmp[1] != 0 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// Which [`Pinger`] a ping goes through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PingerKey {
    v6: bool,
    bindto: Option<IpAddr>,
    bind_if: Option<String>,
    fwmark: Option<u32>,
}

impl PingerKey {
    fn of(spec: &PingSpec) -> Self {
        Self {
            v6: spec.target.is_ipv6(),
            bindto: spec.bindto,
            bind_if: spec.bind_if.clone(),
            fwmark: spec.fwmark,
        }
    }
}

type Waiters = Mutex<HashMap<(IpAddr, u16), oneshot::Sender<()>>>;

/// One ICMP socket and the checks waiting for replies on it.
pub struct Pinger {
    socket: Arc<AsyncFd<Socket>>,
    v6: bool,
    ident: u16,
    seq: AtomicU16,
    waiters: Arc<Waiters>,
    reader: JoinHandle<()>,
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Pinger {
    /// Opens the socket and starts its reader (inside a tokio runtime).
    fn open(key: &PingerKey) -> io::Result<Self> {
        let (domain, proto) = if key.v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let (socket, raw) = match Socket::new(domain, Type::from(libc::SOCK_RAW), Some(proto)) {
            Ok(s) => (s, true),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (
                Socket::new(domain, Type::DGRAM, Some(proto)).map_err(|e2| {
                    io::Error::new(
                        e2.kind(),
                        format!(
                            "no raw ICMP socket ({}) nor ICMP datagram socket ({}): run as \
                             root or allow net.ipv4.ping_group_range",
                            io_reason(&e),
                            io_reason(&e2)
                        ),
                    )
                })?,
                false,
            ),
            Err(e) => return Err(e),
        };
        socket.set_nonblocking(true)?;
        let fd = socket.as_raw_fd();
        if let Some(ifname) = &key.bind_if {
            bind_device(fd, ifname)?;
        }
        if let Some(mark) = key.fwmark {
            set_int_opt(fd, libc::SOL_SOCKET, libc::SO_MARK, mark as libc::c_int)?;
        }
        if let Some(ip) = key.bindto {
            socket.bind(&SocketAddr::new(ip, 0).into())?;
        }
        if raw {
            // Only echo replies reach the socket (a set bit filters a type out).
            if key.v6 {
                let mut filter = [u32::MAX; 8];
                filter[usize::from(ECHO_REPLY_V6 >> 5)] &= !(1 << (ECHO_REPLY_V6 & 31));
                let bytes: Vec<u8> = filter.iter().flat_map(|w| w.to_ne_bytes()).collect();
                set_opt_bytes(fd, libc::IPPROTO_ICMPV6, 1 /* ICMP6_FILTER */, &bytes)?;
            } else {
                let mask: u32 = !(1 << ECHO_REPLY_V4);
                set_opt_bytes(
                    fd,
                    libc::SOL_RAW,
                    1, /* ICMP_FILTER */
                    &mask.to_ne_bytes(),
                )?;
            }
        }
        // SAFETY: the Socket owns its descriptor, open until the AsyncFd is dropped.
        let socket = Arc::new(unsafe { AsyncFd::register(socket) }?);
        let waiters: Arc<Waiters> = Arc::default();
        let ident: u16 = rand::random();
        let reader = tokio::spawn(read_replies(
            socket.clone(),
            waiters.clone(),
            key.v6,
            raw,
            ident,
        ));
        Ok(Self {
            socket,
            v6: key.v6,
            ident,
            seq: AtomicU16::new(rand::random()),
            waiters,
            reader,
        })
    }

    /// Sends one echo request to `target` and waits for its reply.
    pub(crate) async fn ping(&self, target: IpAddr, timeout: Duration) -> Result<(), String> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .insert((target, seq), tx);
        // Whatever happens next, the entry goes.
        struct Unregister<'a>(&'a Waiters, (IpAddr, u16));
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                if let Ok(mut w) = self.0.lock() {
                    w.remove(&self.1);
                }
            }
        }
        let _unregister = Unregister(&self.waiters, (target, seq));

        let packet = encode_echo(self.v6, self.ident, seq);
        let dest: socket2::SockAddr = SocketAddr::new(target, 0).into();
        let exchange = async {
            loop {
                let mut guard = self.socket.writable().await.map_err(|e| io_reason(&e))?;
                match guard.try_io(|s| s.get_ref().send_to(&packet, &dest)) {
                    Ok(Ok(_)) => break,
                    Ok(Err(e)) => {
                        return Err(format!("sending the echo request: {}", io_reason(&e)));
                    }
                    Err(_would_block) => continue,
                }
            }
            rx.await.map_err(|_| "the ICMP reader stopped".to_owned())
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!("no echo reply within {}", fmt_duration(timeout))),
        }
    }
}

/// Runs until aborted by the [`Pinger`]'s drop.
async fn read_replies(
    socket: Arc<AsyncFd<Socket>>,
    waiters: Arc<Waiters>,
    v6: bool,
    raw: bool,
    ident: u16,
) {
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    loop {
        let Ok(mut guard) = socket.readable().await else {
            return;
        };
        let (n, from) = match guard.try_io(|s| s.get_ref().recv_from(&mut buf)) {
            Ok(Ok(r)) => r,
            Ok(Err(_)) | Err(_) => continue,
        };
        // SAFETY: recv_from initialised the first `n` bytes.
        let data = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let Some((id, seq)) = decode_echo_reply(v6, raw && !v6, data) else {
            continue;
        };
        if raw && id != ident {
            continue; // another process's ping
        }
        let Some(src) = from.as_socket().map(|a| a.ip()) else {
            continue;
        };
        let waiter = waiters.lock().expect("waiters lock").remove(&(src, seq));
        if let Some(tx) = waiter {
            let _ = tx.send(());
        }
    }
}

/// The pingers of one monitor, shared by its checks and dropped with the last one.
#[derive(Default)]
pub struct Pingers(Mutex<HashMap<PingerKey, Weak<Pinger>>>);

impl Pingers {
    /// The pinger for `spec`, opened if none is alive.
    pub fn get(&self, spec: &PingSpec) -> io::Result<Arc<Pinger>> {
        let key = PingerKey::of(spec);
        let mut map = self.0.lock().expect("pingers lock");
        if let Some(p) = map.get(&key).and_then(Weak::upgrade) {
            return Ok(p);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let p = Arc::new(Pinger::open(&key)?);
        map.insert(key, Arc::downgrade(&p));
        Ok(p)
    }
}

/// Runs one check through `pinger` (from [`Pingers::get`]).
pub async fn check(spec: &PingSpec, pinger: &Pinger) -> Outcome {
    match pinger.ping(spec.target, spec.timeout).await {
        Ok(()) => Outcome::up(),
        Err(reason) => Outcome::down(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ping_echo_codec() {
        let p = encode_echo(false, 0x1234, 7);
        assert_eq!(&p[..8], &[8, 0, p[2], p[3], 0x12, 0x34, 0, 7]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        // RFC 1071's example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );

        let mut reply = p.clone();
        reply[0] = ECHO_REPLY_V4;
        assert_eq!(decode_echo_reply(false, false, &reply), Some((0x1234, 7)));
        assert_eq!(decode_echo_reply(false, false, &p), None, "a request");
        let mut with_ip = vec![0x45; 20];
        with_ip.extend_from_slice(&reply);
        assert_eq!(decode_echo_reply(false, true, &with_ip), Some((0x1234, 7)));
        let mut v6 = encode_echo(true, 1, 2);
        v6[0] = ECHO_REPLY_V6;
        assert_eq!(decode_echo_reply(true, false, &v6), Some((1, 2)));
    }

    fn spec(target: &str, timeout_ms: u64) -> PingSpec {
        PingSpec {
            target: target.parse().unwrap(),
            bindto: None,
            bind_if: None,
            fwmark: None,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn check_ping_loopback() {
        let pingers = Pingers::default();
        let s = spec("127.0.0.1", 2000);
        let pinger = match pingers.get(&s) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("no ICMP socket here ({e}): skipped");
                return;
            }
        };
        // Several at once through one socket, each gets its own reply.
        let all = futures::future::join_all((0..20).map(|_| check(&s, &pinger))).await;
        assert!(all.iter().all(|o| *o == Outcome::up()), "{all:?}");
        assert!(
            Arc::ptr_eq(&pinger, &pingers.get(&s).unwrap()),
            "one socket"
        );

        let s6 = spec("::1", 2000);
        match pingers.get(&s6) {
            Ok(p6) => assert_eq!(check(&s6, &p6).await, Outcome::up()),
            Err(e) => eprintln!("no ICMPv6 socket ({e}): IPv6 part skipped"),
        }
    }
}

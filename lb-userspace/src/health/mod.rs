//! Health checks of real servers, with keepalived's checkers and semantics. What the
//! rest of xlb uses: [`targets_from_config`] gives the [`Target`]s, [`HealthMonitor`]
//! checks them and sends a [`Verdict`] each time a server's aliveness or dynamic weight
//! changes.
//!
//! The modules, by responsibility:
//! - `targets`: from the configuration to the targets, each checker's spec with the
//!   values in force.
//! - `state`: the pure per-real-server state machine (retry, delay_before_retry,
//!   delay_loop, warmup, alpha, misc_dynamic weights) on a clock passed in.
//! - `monitor`: one tokio task per real server, which runs the checkers on the
//!   schedule the state machine gives.
//! - The checkers, one module each: `tcp` (`tcp_check`), `http` (`http_get`,
//!   `ssl_get`), `misc` (`misc_check`), `dns` (`dns_check`), `udp` (`udp_check`),
//!   `ping` (`ping_check`), `smtp` (`smtp_check`). Each is an async function from its
//!   spec to an `Outcome`; none blocks a thread, and every one is bounded by its
//!   timeout. Those that connect share `socket` (`ConnectOpts`, keepalived's connection
//!   options).

mod dns;
mod http;
mod misc;
mod monitor;
pub(crate) mod ping;
mod smtp;
mod socket;
mod state;
mod targets;
mod tcp;
mod udp;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::config::Protocol;

pub use monitor::{HealthMonitor, Verdict};
pub use targets::targets_from_config;

use socket::ConnectOpts;
use state::CheckerPolicy;

/// A real server of a virtual service: the key of a [`Target`] and of its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealKey {
    /// The virtual service: VIP, port, protocol.
    pub vip: IpAddr,
    pub vport: u16,
    pub protocol: Protocol,
    /// The real server: address and port.
    pub rip: IpAddr,
    pub rport: u16,
}

impl fmt::Display for RealKey {
    /// `198.18.0.100:80/TCP -> 198.18.0.21:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}",
            SocketAddr::new(self.vip, self.vport),
            self.protocol.as_str(),
            SocketAddr::new(self.rip, self.rport)
        )
    }
}

/// A real server and its checkers: what [`HealthMonitor`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub key: RealKey,
    /// Alive only while every checker is up. Never empty in what
    /// [`targets_from_config`] returns (a server without checkers is always alive).
    pub checkers: Vec<CheckerSpec>,
}

impl Target {
    /// Whether the server counts as alive before any check ran: yes unless a checker
    /// has `alpha` (keepalived starts those checkers failed).
    pub fn initially_alive(&self) -> bool {
        self.checkers.iter().all(|c| !c.policy.alpha)
    }
}

/// One checker: what to probe and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckerSpec {
    pub kind: CheckKind,
    pub policy: CheckerPolicy,
}

/// What a checker probes. Each variant's spec holds values in force (addresses,
/// ports and timeouts resolved).
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Tcp(tcp::TcpSpec),
    /// `http_get`, or `ssl_get` when its `tls` is set.
    Http(Arc<http::HttpSpec>),
    Misc(Arc<misc::MiscSpec>),
    Dns(dns::DnsSpec),
    Udp(Arc<udp::UdpSpec>),
    Ping(ping::PingSpec),
    Smtp(Arc<smtp::SmtpSpec>),
}

impl CheckKind {
    /// keepalived's keyword for the checker.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "tcp_check",
            Self::Http(h) if h.tls.is_some() => "ssl_get",
            Self::Http(_) => "http_get",
            Self::Misc(_) => "misc_check",
            Self::Dns(_) => "dns_check",
            Self::Udp(_) => "udp_check",
            Self::Ping(_) => "ping_check",
            Self::Smtp(_) => "smtp_check",
        }
    }

    /// `tcp_check 198.18.0.21:80`, `misc_check "/usr/local/bin/chk"`: how logs and
    /// verdict reasons name the checker.
    pub fn label(&self) -> String {
        let k = self.keyword();
        match self {
            Self::Tcp(s) => format!("{k} {}", s.conn.addr),
            Self::Http(s) => format!("{k} {}", s.conn.addr),
            Self::Misc(s) => format!("{k} {:?}", s.command),
            Self::Dns(s) => format!("{k} {}", s.conn.addr),
            Self::Udp(s) => format!("{k} {}", s.conn.addr),
            Self::Ping(s) => format!("{k} {}", s.target),
            Self::Smtp(s) => format!("{k} {}", s.conn.addr),
        }
    }
}

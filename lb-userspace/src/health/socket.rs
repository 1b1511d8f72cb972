//! Sockets shared by the checkers: keepalived's connection options (`connect_ip`,
//! `connect_port`, `bindto`, `bind_port`, `bind_if`, `fwmark`, `connect_timeout`) and
//! failure reasons worded for logs.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::net::io_reason;

/// Where a checker connects and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOpts {
    /// `connect_ip`:`connect_port` (default: the real server's).
    pub addr: SocketAddr,
    /// Source address (`bindto`). Default: chosen by routing.
    pub bindto: Option<IpAddr>,
    /// Source port (`bind_port`). Default: ephemeral.
    pub bind_port: Option<u16>,
    /// Interface (`bind_if`, SO_BINDTODEVICE); also the scope of a link-local `addr`.
    pub bind_if: Option<String>,
    /// SO_MARK on the check's packets (`fwmark`).
    pub fwmark: Option<u32>,
    /// `connect_timeout`: bounds the connection, and separately the exchange after it.
    pub timeout: Duration,
}

impl ConnectOpts {
    /// Plain options: connect to `addr` within `timeout` (the checkers' tests).
    #[cfg(test)]
    pub(super) fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            timeout,
        }
    }

    /// The destination, with the scope of `bind_if` when it is IPv6 link-local.
    fn destination(&self) -> SocketAddr {
        match (self.addr, &self.bind_if) {
            (SocketAddr::V6(mut a), Some(ifname))
                if a.scope_id() == 0 && (a.ip().segments()[0] & 0xffc0) == 0xfe80 =>
            {
                a.set_scope_id(if_index(ifname));
                SocketAddr::V6(a)
            }
            (a, _) => a,
        }
    }

    fn local(&self) -> Option<SocketAddr> {
        if self.bindto.is_none() && self.bind_port.is_none() {
            return None;
        }
        let ip = self.bindto.unwrap_or(if self.addr.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
        Some(SocketAddr::new(ip, self.bind_port.unwrap_or(0)))
    }

    fn apply_socket_options(&self, fd: RawFd) -> io::Result<()> {
        if let Some(ifname) = &self.bind_if {
            bind_device(fd, ifname)?;
        }
        if let Some(mark) = self.fwmark {
            set_int_opt(fd, libc::SOL_SOCKET, libc::SO_MARK, mark as libc::c_int)?;
        }
        Ok(())
    }

    fn check_port(&self) -> Result<(), String> {
        if self.addr.port() == 0 {
            return Err(
                "no port to check: the real server's port is 0 (all ports); set connect_port"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// Connects a TCP stream as `opts` says, within `opts.timeout`. The error is the
/// reason for logs ("timeout after 3s", "connection refused").
pub(super) async fn tcp_connect(opts: &ConnectOpts) -> Result<TcpStream, String> {
    opts.check_port()?;
    let dest = opts.destination();
    let socket = if dest.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {}", io_reason(&e)))?;
    opts.apply_socket_options(socket.as_raw_fd())
        .map_err(|e| format!("socket options: {}", io_reason(&e)))?;
    if let Some(local) = opts.local() {
        socket
            .bind(local)
            .map_err(|e| format!("bind to {local}: {}", io_reason(&e)))?;
    }
    match tokio::time::timeout(opts.timeout, socket.connect(dest)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(io_reason(&e)),
        Err(_) => Err(format!(
            "connection timeout after {}",
            fmt_duration(opts.timeout)
        )),
    }
}

/// A UDP socket connected to `opts.addr`, bound and marked as `opts` says.
pub(super) fn udp_connect(opts: &ConnectOpts) -> Result<UdpSocket, String> {
    opts.check_port()?;
    let dest = opts.destination();
    let domain = if dest.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let setup = || -> io::Result<UdpSocket> {
        let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        s.set_nonblocking(true)?;
        opts.apply_socket_options(s.as_raw_fd())?;
        if let Some(local) = opts.local() {
            s.bind(&local.into())?;
        }
        s.connect(&dest.into())?;
        UdpSocket::from_std(s.into())
    };
    setup().map_err(|e| io_reason(&e))
}

/// As [`io_reason`], for a connected UDP socket, where "connection refused" is an
/// ICMP port unreachable.
pub(super) fn udp_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "ICMP port unreachable".to_owned(),
        _ => io_reason(e),
    }
}

/// `3s`, `1.5s`, `250ms`.
pub(super) fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

pub(super) fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_opt_bytes(fd, level, name, &value.to_ne_bytes())
}

pub(super) fn set_opt_bytes(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    // SAFETY: `value` is valid for reads of its length for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(super) fn bind_device(fd: RawFd, ifname: &str) -> io::Result<()> {
    set_opt_bytes(
        fd,
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        ifname.as_bytes(),
    )
}

fn if_index(ifname: &str) -> u32 {
    let Ok(c) = std::ffi::CString::new(ifname) else {
        return 0;
    };
    // SAFETY: `c` is a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_well_in_logs() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&refused), "connection refused");
        let other = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_reason(&other), "permission denied");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    }

    #[tokio::test]
    async fn port_zero_is_refused_with_a_hint() {
        let opts = ConnectOpts::new("127.0.0.1:0".parse().unwrap(), Duration::from_secs(1));
        let e = tcp_connect(&opts).await.unwrap_err();
        assert!(e.contains("connect_port"), "{e}");
    }
}

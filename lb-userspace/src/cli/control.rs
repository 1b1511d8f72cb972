//! The client side of the control socket (protocol: `crate::control`): `xlb reload`,
//! `xlb weight|drain|enable|disable`, `xlb log level|reopen`, and the live part of `xlb
//! status`. One request, one reply, with time limits; a socket where nobody answers is
//! a clear error naming it. `drain --wait` then follows the real server's connections in
//! the pinned connection table (as `xlb status` counts them) until none is active.

use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    cli::status::{LiveStatus, Status},
    config::Protocol,
    control::{RealRef, Reply, ReplyLine, Request, ServiceRef, VERSION, request_line},
    dataplane::Maps,
};

/// How long a reply may take (a reload resolves real servers' MACs, so not a second).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no xlb daemon answers on {}: {err} (is `xlb run` running? its socket is \
         named after --pin-path, or given with --socket)",
        .socket.display()
    )]
    NoDaemon { socket: PathBuf, err: io::Error },
    #[error("{}: permission denied: the control socket is root's", .0.display())]
    PermissionDenied(PathBuf),
    #[error("{}: {err}", .socket.display())]
    Io { socket: PathBuf, err: io::Error },
    #[error("{}: the daemon's reply is not understood ({detail}); is it an xlb of another version?", .socket.display())]
    BadReply { socket: PathBuf, detail: String },
}

impl ClientError {
    /// Whether no daemon is there at all (status then falls back to the pinned maps).
    pub fn no_daemon(&self) -> bool {
        matches!(self, ClientError::NoDaemon { .. })
    }
}

/// Sends `request` to the daemon on `socket` and returns its reply.
pub fn call(socket: &Path, request: &Request) -> Result<Reply, ClientError> {
    let io_err = |err: io::Error| match err.kind() {
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(socket.to_path_buf()),
        _ => ClientError::Io {
            socket: socket.to_path_buf(),
            err,
        },
    };
    let stream = UnixStream::connect(socket).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NoDaemon {
            socket: socket.to_path_buf(),
            err,
        },
        _ => io_err(err),
    })?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(io_err)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(io_err)?;
    // A daemon that refuses the peer answers and closes before reading: the write may
    // then fail, and the refusal still waits to be read.
    let written = (&stream).write_all(request_line(request).as_bytes());
    let mut line = String::new();
    let read = BufReader::new(&stream).read_line(&mut line);
    match (written, read) {
        (_, Ok(n)) if n > 0 => parse_reply(socket, &line),
        (Err(e), _) | (Ok(()), Err(e)) => Err(io_err(e)),
        (Ok(()), Ok(_)) => parse_reply(socket, &line),
    }
}

fn parse_reply(socket: &Path, line: &str) -> Result<Reply, ClientError> {
    let bad = |detail: String| ClientError::BadReply {
        socket: socket.to_path_buf(),
        detail,
    };
    if line.is_empty() {
        return Err(bad("the connection closed without a reply".into()));
    }
    let r: ReplyLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    if r.version != VERSION {
        return Err(bad(format!(
            "protocol version {}, this xlb speaks {VERSION}",
            r.version
        )));
    }
    Ok(r.reply)
}

/// `xlb status`: the daemon's answer on `socket` with the maps it names, or, when it does
/// not answer, the maps pinned at `pin_path` and its status file `state_file`, with why
/// nothing is live.
pub fn live_status(
    socket: &Path,
    pin_path: &Path,
    state_file: &Path,
) -> anyhow::Result<LiveStatus> {
    let (live, live_unavailable) = match call(socket, &Request::Status) {
        Ok(Reply::Status(info)) => (Some(*info), None),
        Ok(Reply::Error { message }) => (
            None,
            Some(format!(
                "the daemon on {} refused: {message}",
                socket.display()
            )),
        ),
        Ok(other) => (
            None,
            Some(format!(
                "unexpected reply from {}: {other:?}",
                socket.display()
            )),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    let status = match &live {
        Some(info) => crate::cli::status::read(&info.pin_path, &info.state_file)?,
        None => crate::cli::status::read(pin_path, state_file)?,
    };
    Ok(LiveStatus {
        live,
        live_unavailable,
        status,
    })
}

/// A reply as the commands print it: Ok(line) to stdout, Err(line) to stderr and exit 1.
pub fn outcome(reply: Reply) -> Result<String, String> {
    match reply {
        Reply::Done { message } | Reply::Edited { message, .. } => Ok(message),
        Reply::Error { message } => Err(message),
        Reply::Status(_) => Err("unexpected status reply".into()),
        Reply::Plan { text, .. } => Ok(text.trim_end().to_string()),
    }
}

/// The connections of one real server of one service, as draining sees them: active
/// (TCP established, and UDP flows, which have no end but their timeout, so a drain waits
/// for them) and inactive (TCP half-open or closing). `xlb status` counts as ipvsadm does
/// instead (`ConnCounts`: UDP is inactive there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealConns {
    pub active: usize,
    pub inactive: usize,
}

/// The connections of real server `real` of `service`, from `xlb status`'s counts (one
/// pass over the connection table): a UDP service's flows, inactive to ipvsadm, are
/// active to a drain.
pub fn conns_of(status: &Status, service: ServiceRef, real: RealRef) -> RealConns {
    let found = (status.services.iter())
        .filter(|s| s.selected_by(service.addr, service.protocol.as_str()))
        .flat_map(|s| &s.real_servers)
        .find(|r| r.ip == real.ip() && r.port == real.port());
    let Some(r) = found else {
        return RealConns::default();
    };
    let (active, inactive) = (r.active_conns as usize, r.inactive_conns as usize);
    match service.protocol {
        Protocol::Udp => RealConns {
            active: active + inactive,
            inactive: 0,
        },
        Protocol::Tcp => RealConns { active, inactive },
    }
}

/// `drain --wait`: polls the connection table pinned at `pin_path` until real server
/// `real` of `service` has no active connection (Ok with how long it took) or `timeout`
/// passes (Err with what is left). `progress` is told each change.
pub fn wait_drained(
    pin_path: &Path,
    service: ServiceRef,
    real: RealRef,
    timeout: Duration,
    mut progress: impl FnMut(RealConns),
) -> anyhow::Result<Result<Duration, RealConns>> {
    let start = Instant::now();
    let mut last = None;
    loop {
        let status = crate::cli::status::from_maps(&Maps::from_pins(pin_path)?)?;
        let now = conns_of(&status, service, real);
        if last != Some(now) {
            progress(now);
            last = Some(now);
        }
        if now.active == 0 {
            return Ok(Ok(start.elapsed()));
        }
        if start.elapsed() >= timeout {
            return Ok(Err(now));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::status::{RealStatus, ServiceStatus};

    /// Real server `ip:port` with `active` / `inactive` connections (ipvsadm's counts).
    fn real(ip: &str, port: u16, active: u64, inactive: u64) -> RealStatus {
        RealStatus {
            ip: ip.parse().unwrap(),
            port,
            weight: 1,
            alive: true,
            mac: None,
            ifindex: 2,
            packets: 0,
            bytes: 0,
            new_flows: 0,
            active_conns: active,
            inactive_conns: inactive,
        }
    }

    fn service(port: u16, protocol: &'static str, real_servers: Vec<RealStatus>) -> ServiceStatus {
        ServiceStatus {
            vip: "198.18.0.100".parse().unwrap(),
            port,
            protocol,
            scheduler: "wrr",
            active: true,
            table_len: 0,
            persistence_timeout: 0,
            lb_kind: "DR",
            packets: 0,
            bytes: 0,
            new_flows: 0,
            real_servers,
            also: Vec::new(),
        }
    }

    #[test]
    fn a_real_server_s_connections_are_counted_as_a_drain_waits_for_them() {
        // Two established and two closing or half-open on .21:80; others elsewhere; one
        // UDP flow (InActConn to ipvsadm) on the UDP service.
        let status = Status {
            services: vec![
                service(
                    80,
                    "TCP",
                    vec![real("198.18.0.21", 80, 2, 2), real("198.18.0.22", 80, 1, 0)],
                ),
                service(81, "TCP", vec![real("198.18.0.21", 80, 1, 0)]),
                service(80, "UDP", vec![real("198.18.0.21", 80, 0, 1)]),
            ],
            ..Status::default()
        };
        let s: ServiceRef = "198.18.0.100:80".parse().unwrap();
        let r: RealRef = "198.18.0.21:80".parse().unwrap();
        assert_eq!(
            conns_of(&status, s, r),
            RealConns {
                active: 2,
                inactive: 2
            }
        );
        let u: ServiceRef = "198.18.0.100:80/udp".parse().unwrap();
        assert_eq!(
            conns_of(&status, u, r),
            RealConns {
                active: 1,
                inactive: 0
            },
            "a UDP flow is active until it expires"
        );
    }

    #[test]
    fn replies_of_another_version_or_none_are_clear_errors() {
        let p = Path::new("/run/xlb/xlb.sock");
        assert_eq!(
            parse_reply(
                p,
                "{\"version\":1,\"result\":\"done\",\"message\":\"ok\"}\n"
            )
            .unwrap(),
            Reply::Done {
                message: "ok".into()
            }
        );
        let e =
            parse_reply(p, "{\"version\":9,\"result\":\"done\",\"message\":\"ok\"}").unwrap_err();
        assert!(e.to_string().contains("protocol version 9"), "{e}");
        let e = parse_reply(p, "").unwrap_err();
        assert!(e.to_string().contains("closed without a reply"), "{e}");
    }

    #[test]
    fn no_daemon_names_the_socket() {
        let p = std::env::temp_dir().join(format!("xlb-none-{}.sock", std::process::id()));
        let e = call(&p, &Request::Reload).unwrap_err();
        assert!(e.no_daemon());
        assert!(
            e.to_string()
                .starts_with(&format!("no xlb daemon answers on {}", p.display())),
            "{e}"
        );
    }
}

//! `--log-facility`: the log sent to the local syslog socket, as keepalived's `-S` does.
//!
//! One datagram per line, in the format glibc's syslog(3) sends to `/dev/log` (RFC 3164
//! as local daemons read it): `<PRI>Mmm dd hh:mm:ss xlb[PID]: message`, PRI being
//! facility * 8 + severity, the time local. Written here rather than through libc's
//! `syslog(3)` because that cannot be pointed at another socket, and tests (and a chroot)
//! need to: `XLB_SYSLOG_SOCKET` names the socket, `/dev/log` by default.
//!
//! Logging never stalls the daemon on a slow syslog: the socket is non-blocking, a full
//! receive queue (`net.unix.max_dgram_qlen`, 10 by default) is waited for at most
//! [`FULL_WAIT`], and not at all again until a line gets through. A line that cannot be
//! sent goes to stderr with the reason (as `LOG_CONS` would; journald keeps it under
//! systemd), never nowhere. A refused or vanished socket (syslog restarted) is connected
//! again for the next line.

use std::{
    fmt,
    io::{self, Write},
    os::{fd::AsRawFd, unix::net::UnixDatagram},
    path::{Path, PathBuf},
    str::FromStr,
    sync::Mutex,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tracing::Level;

use super::line::{Sink, severity};

/// Names the syslog socket instead of `/dev/log`.
pub const SYSLOG_SOCKET_ENV: &str = "XLB_SYSLOG_SOCKET";
const DEFAULT_SOCKET: &str = "/dev/log";
/// How long a line waits for room in a full syslog queue (once; see the module doc).
pub const FULL_WAIT: Duration = Duration::from_millis(100);

/// The facilities keepalived offers (`-S 0..7` are local0..local7), plus daemon and user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facility {
    User,
    Daemon,
    /// local0..local7.
    Local(u8),
}

impl Facility {
    /// The facility's code (RFC 5424 table 1).
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Local(n) => 16 + n,
        }
    }
}

impl FromStr for Facility {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let local = |n: &str| n.parse::<u8>().ok().filter(|n| *n <= 7);
        match s {
            "user" => Ok(Facility::User),
            "daemon" => Ok(Facility::Daemon),
            _ => s
                .strip_prefix("local")
                .map_or_else(|| local(s), local)
                .map(Facility::Local)
                .ok_or_else(|| {
                    format!("{s:?}: expected local0..local7 (or 0..7, as keepalived's -S), daemon or user")
                }),
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Facility::User => f.write_str("user"),
            Facility::Daemon => f.write_str("daemon"),
            Facility::Local(n) => write!(f, "local{n}"),
        }
    }
}

/// The syslog sink.
#[derive(Debug)]
pub struct Syslog {
    facility: Facility,
    path: PathBuf,
    pid: u32,
    conn: Mutex<Conn>,
}

/// The connection to the syslog socket.
#[derive(Debug, Default)]
struct Conn {
    /// Connected and non-blocking; None until the next line connects.
    socket: Option<UnixDatagram>,
    /// The last line found the queue full and was not sent: the next ones do not wait.
    stuck: bool,
}

impl Syslog {
    /// To `$XLB_SYSLOG_SOCKET` or `/dev/log`, which must accept a connection.
    pub fn new(facility: Facility) -> Result<Self> {
        let path = std::env::var_os(SYSLOG_SOCKET_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        if !path.exists() {
            bail!(
                "no syslog socket at {} (is a syslog daemon or journald running? \
                 {SYSLOG_SOCKET_ENV} names another)",
                path.display()
            );
        }
        let sink = Self::at(facility, path);
        sink.conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connect(&sink.path)
            .with_context(|| format!("connecting to {}", sink.path.display()))?;
        Ok(sink)
    }

    fn at(facility: Facility, path: PathBuf) -> Self {
        Self {
            facility,
            path,
            pid: std::process::id(),
            conn: Mutex::new(Conn::default()),
        }
    }

    fn send(&self, level: Level, message: &str) -> io::Result<()> {
        let datagram = format_line(self.facility, level, &local_timestamp(), self.pid, message);
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match conn.send(&self.path, datagram.as_bytes()) {
            // Syslog restarted (a new socket at the same path): connect again, once.
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                conn.socket = None;
                conn.send(&self.path, datagram.as_bytes())
            }
            other => other,
        }
    }
}

impl Conn {
    fn connect(&mut self, path: &Path) -> io::Result<&UnixDatagram> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.connect(path)?;
            socket.set_nonblocking(true)?;
            self.socket = Some(socket);
        }
        Ok(self.socket.as_ref().expect("just connected"))
    }

    fn send(&mut self, path: &Path, datagram: &[u8]) -> io::Result<()> {
        let stuck = self.stuck;
        let socket = self.connect(path)?;
        let full =
            |r: &io::Result<usize>| matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        let mut result = socket.send(datagram);
        if !stuck && full(&result) {
            let mut pfd = libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one pollfd of our own, for a socket we hold.
            unsafe { libc::poll(&mut pfd, 1, FULL_WAIT.as_millis() as libc::c_int) };
            result = socket.send(datagram);
        }
        self.stuck = full(&result);
        result.map(drop)
    }
}

impl Sink for Syslog {
    fn emit(&self, level: Level, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        for message in text.lines().filter(|l| !l.is_empty()) {
            if let Err(e) = self.send(level, message) {
                let _ = writeln!(
                    io::stderr().lock(),
                    "xlb: not sent to syslog ({}: {e}): {message}",
                    self.path.display()
                );
            }
        }
    }
}

/// One datagram: `<PRI>TIMESTAMP xlb[PID]: MESSAGE`.
pub fn format_line(
    facility: Facility,
    level: Level,
    timestamp: &str,
    pid: u32,
    message: &str,
) -> String {
    let pri = u32::from(facility.code()) * 8 + u32::from(severity(level));
    format!("<{pri}>{timestamp} xlb[{pid}]: {message}")
}

/// RFC 3164's `Mmm dd hh:mm:ss` (day space-padded), in local time as syslog(3) sends it.
fn local_timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) and localtime_r into a zeroed tm of our own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return "Jan  1 00:00:00".into();
    }
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_parse_as_keepalived_users_write_them() {
        assert_eq!("local0".parse(), Ok(Facility::Local(0)));
        assert_eq!("local7".parse(), Ok(Facility::Local(7)));
        assert_eq!("3".parse(), Ok(Facility::Local(3)), "keepalived's -S 3");
        assert_eq!("daemon".parse(), Ok(Facility::Daemon));
        assert_eq!("user".parse(), Ok(Facility::User));
        for bad in ["local8", "8", "kern", "", "local"] {
            assert!(bad.parse::<Facility>().is_err(), "{bad}");
        }
        assert_eq!(Facility::Local(5).to_string(), "local5");
    }

    #[test]
    fn the_priority_is_facility_times_8_plus_severity() {
        // RFC 5424 6.2.1: local4.err is 163; daemon.info 30; user.debug 15.
        assert_eq!(
            format_line(
                Facility::Local(4),
                Level::ERROR,
                "Dec  5 21:07:03",
                42,
                "boom"
            ),
            "<163>Dec  5 21:07:03 xlb[42]: boom"
        );
        assert!(format_line(Facility::Daemon, Level::INFO, "t", 1, "m").starts_with("<30>"));
        assert!(format_line(Facility::User, Level::TRACE, "t", 1, "m").starts_with("<15>"));
        assert!(format_line(Facility::Local(0), Level::WARN, "t", 1, "m").starts_with("<132>"));
    }

    #[test]
    fn the_timestamp_has_rfc3164s_shape() {
        let t = local_timestamp();
        assert_eq!(t.len(), 15, "{t:?}");
        assert_eq!(&t[6..7], " ");
        assert_eq!(&t[9..10], ":");
    }

    #[test]
    fn lines_arrive_at_the_socket_one_datagram_each() {
        let path = std::env::temp_dir().join(format!("xlb-syslog-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut sink = Syslog::at(Facility::Local(1), path.clone());
        sink.pid = 7;
        sink.emit(Level::WARN, b"first\nsecond\n");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            first.starts_with("<140>") && first.ends_with(" xlb[7]: first"),
            "{first}"
        );
        let n = server.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("xlb[7]: second"));

        // A syslog that stops reading never blocks the logger: the queue fills, lines are
        // refused (to stderr), and a restarted syslog at the same path gets the next one.
        let start = std::time::Instant::now();
        let mut refused = 0;
        for n in 0..1000 {
            if sink.send(Level::INFO, &format!("line {n}")).is_err() {
                refused += 1;
            }
        }
        assert!(refused > 0, "no queue holds 1000 datagrams");
        assert!(
            start.elapsed() < FULL_WAIT * 10,
            "waited once, not for every refused line: {:?}",
            start.elapsed()
        );
        drop(server);
        std::fs::remove_file(&path).unwrap();
        let server = UnixDatagram::bind(&path).unwrap();
        sink.send(Level::INFO, "after the restart").unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("after the restart"));
        std::fs::remove_file(&path).unwrap();
    }
}

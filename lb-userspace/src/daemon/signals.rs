//! Signals, with keepalived's meanings, caught from the first moment of `xlb run`.
//!
//! - SIGHUP reloads the config; SIGTERM, SIGINT (and SIGQUIT) shut down. One that comes
//!   while the daemon starts waits in the loop's queue and is handled right after start-up.
//! - keepalived's dump signals write files under `/run/xlb/` (0600, never `/tmp`), named
//!   after the pin path like the status file, and the log says where: SIGUSR1
//!   (keepalived's DATA) the running config and the VRRP instances' state to `.data`;
//!   SIGUSR2 (STATS) what `xlb status --json` shows to `.stats`; SIGRTMIN+2 (JSON) the
//!   `.data` dump to `.json`; SIGRTMAX-1 (STATS_CLEAR) the `.stats` dump (the counters are
//!   the kernel's and are not cleared).
//! - Every other signal whose default would stop or kill the process, or that a user may
//!   send for nothing (SIGWINCH, SIGPIPE, SIGALRM, SIGTSTP, the other real-time signals,
//!   ...), is logged and ignored. The faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
//!   SIGTRAP) keep their default, and SIGCHLD stays the child reaper's.
//!
//! Ignoring is done with a handler, never `SIG_IGN`: a handler is reset by `exec`, so
//! scripts xlb runs start with default dispositions (and std's spawn clears the mask).

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{StreamExt, stream::BoxStream};
use serde::Serialize;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing::{error, info};

use super::{
    Daemon,
    event::{Event, Inputs},
    state_file::run_file,
};
use crate::{cli::status, config::Config, vrrp::status::InstanceStatus};

/// What a signal asks of the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    Reload,
    Shutdown,
    Dump(Dump),
    /// Logged, nothing else.
    Ignore,
}

/// keepalived's dumps (`keepalived --signum=DATA|STATS|JSON|STATS_CLEAR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dump {
    /// SIGUSR1: the running config and the VRRP instances.
    Data,
    /// SIGUSR2: what `xlb status --json` shows.
    Stats,
    /// SIGRTMIN+2: the data dump, to `.json`.
    Json,
    /// SIGRTMAX-1: the stats dump; nothing is cleared.
    StatsClear,
}

impl Dump {
    /// The file's suffix after `/run/xlb/<pin path>.`.
    fn suffix(self) -> &'static str {
        match self {
            Dump::Data => "data",
            Dump::Json => "json",
            Dump::Stats | Dump::StatsClear => "stats",
        }
    }
}

/// What xlb does with signal `signo`; None: the default action is kept (faults, SIGCHLD,
/// and the signals no process can catch).
pub fn meaning(signo: i32) -> Option<Meaning> {
    use libc::*;
    let rt = SIGRTMIN()..=SIGRTMAX();
    Some(match signo {
        SIGHUP => Meaning::Reload,
        SIGTERM | SIGINT | SIGQUIT => Meaning::Shutdown,
        SIGUSR1 => Meaning::Dump(Dump::Data),
        SIGUSR2 => Meaning::Dump(Dump::Stats),
        s if s == SIGRTMIN() + 2 => Meaning::Dump(Dump::Json),
        s if s == SIGRTMAX() - 1 => Meaning::Dump(Dump::StatsClear),
        SIGPIPE | SIGALRM | SIGWINCH | SIGURG | SIGCONT | SIGTSTP | SIGTTIN | SIGTTOU
        | SIGVTALRM | SIGPROF | SIGIO | SIGPWR | SIGSTKFLT | SIGXCPU | SIGXFSZ | SIGSYS => {
            Meaning::Ignore
        }
        s if rt.contains(&s) => Meaning::Ignore,
        _ => return None,
    })
}

/// The signal's name as `kill -l` prints it (SIGRTMIN+n for the real-time ones).
pub fn name(signo: i32) -> String {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if (min..=max).contains(&signo) {
        return match (signo - min, max - signo) {
            (0, _) => "SIGRTMIN".to_string(),
            (_, 0) => "SIGRTMAX".to_string(),
            (up, down) if up <= down => format!("SIGRTMIN+{up}"),
            (_, down) => format!("SIGRTMAX-{down}"),
        };
    }
    signal_abbrev(signo).map_or_else(|| format!("signal {signo}"), |a| format!("SIG{a}"))
}

fn signal_abbrev(signo: i32) -> Option<&'static str> {
    use libc::*;
    Some(match signo {
        SIGHUP => "HUP",
        SIGINT => "INT",
        SIGQUIT => "QUIT",
        SIGTERM => "TERM",
        SIGUSR1 => "USR1",
        SIGUSR2 => "USR2",
        SIGPIPE => "PIPE",
        SIGALRM => "ALRM",
        SIGWINCH => "WINCH",
        SIGURG => "URG",
        SIGCONT => "CONT",
        SIGTSTP => "TSTP",
        SIGTTIN => "TTIN",
        SIGTTOU => "TTOU",
        SIGVTALRM => "VTALRM",
        SIGPROF => "PROF",
        SIGIO => "IO",
        SIGPWR => "PWR",
        SIGSTKFLT => "STKFLT",
        SIGXCPU => "XCPU",
        SIGXFSZ => "XFSZ",
        SIGSYS => "SYS",
        _ => return None,
    })
}

/// What the log says on receipt.
fn receipt(m: Meaning, starting: bool) -> &'static str {
    match (m, starting) {
        (Meaning::Reload, true) => "the config is reloaded once start-up is over",
        (Meaning::Reload, false) => "reloading the config",
        (Meaning::Shutdown, true) => "shutting down once start-up is over",
        (Meaning::Shutdown, false) => "shutting down",
        (Meaning::Dump(_), _) => "writing a dump",
        (Meaning::Ignore, _) => "ignored",
    }
}

/// Every signal xlb catches, each caught since [`listen`] returned.
pub struct Listener {
    signals: Vec<BoxStream<'static, (i32, Meaning)>>,
}

/// Set once start-up is over (for the log only: the events wait in the queue anyway).
#[derive(Clone, Default)]
pub struct Started(Arc<AtomicBool>);

impl Started {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Catches every signal [`meaning`] gives a meaning to, from now on.
pub fn listen() -> std::io::Result<Listener> {
    let mut signals = Vec::new();
    // tokio takes signals below SIGRTMAX only.
    for signo in 1..libc::SIGRTMAX() {
        let Some(m) = meaning(signo) else { continue };
        let s = signal(SignalKind::from_raw(signo))
            .map_err(|e| std::io::Error::new(e.kind(), format!("catching {}: {e}", name(signo))))?;
        let received =
            futures::stream::unfold(s, |mut s| async { s.recv().await.map(|()| ((), s)) });
        signals.push(received.map(move |()| (signo, m)).boxed());
    }
    let rtmax = libc::SIGRTMAX();
    if let Some(m) = meaning(rtmax) {
        signals.push(rtmax::catch()?.map(move |()| (rtmax, m)).boxed());
    }
    Ok(Listener { signals })
}

impl Listener {
    /// Logs every signal as it comes and posts those with a meaning to the loop.
    pub fn forward(self, to: &mpsc::Sender<Event>, inputs: &mut Inputs) -> Started {
        let started = Started::default();
        let streams = self.signals;
        let flag = started.clone();
        let received = futures::stream::select_all(streams).filter_map(move |(signo, m)| {
            let starting = !flag.0.load(Ordering::Relaxed);
            info!("{} received: {}", name(signo), receipt(m, starting));
            std::future::ready(match m {
                Meaning::Reload => Some(Event::Reload),
                Meaning::Shutdown => Some(Event::Shutdown),
                Meaning::Dump(d) => Some(Event::Dump(d)),
                Meaning::Ignore => None,
            })
        });
        inputs.forward(to, received, |e| e);
        started
    }
}

/// SIGRTMAX, which tokio does not take: a handler of our own writes a byte to a socket
/// pair whose other end is read as a stream. Once per process.
mod rtmax {
    use std::{
        io,
        os::fd::IntoRawFd,
        sync::atomic::{AtomicI32, Ordering},
    };

    use futures::{Stream, StreamExt};

    /// The writing end, for the handler; -1 until [`catch`].
    static WRITER: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_signal(_: libc::c_int) {
        // write(2) only (async-signal-safe), and errno left as the interrupted code had it.
        let fd = WRITER.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: errno is this thread's; the buffer is live for the call.
            unsafe {
                let errno = *libc::__errno_location();
                libc::write(fd, [0u8].as_ptr().cast(), 1);
                *libc::__errno_location() = errno;
            }
        }
    }

    /// Installs the handler; yields once per delivery (deliveries close together may
    /// come as one). A second call in the same process yields nothing.
    pub fn catch() -> io::Result<futures::stream::BoxStream<'static, ()>> {
        let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        // Never block in the handler: a full buffer drops the byte, not the signal's log.
        writer.set_nonblocking(true)?;
        let fd = writer.into_raw_fd();
        if WRITER
            .compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // SAFETY: our own fd, not shared.
            unsafe { libc::close(fd) };
            return Ok(futures::stream::pending().boxed());
        }
        // SAFETY: all-zero is a valid sigaction; the handler only calls write(2).
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGRTMAX(), &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(deliveries(tokio::net::UnixStream::from_std(reader)?).boxed())
    }

    fn deliveries(reader: tokio::net::UnixStream) -> impl Stream<Item = ()> {
        futures::stream::unfold(reader, |reader| async move {
            let mut buf = [0u8; 64];
            loop {
                reader.readable().await.ok()?;
                match reader.try_read(&mut buf) {
                    Ok(0) => return None,
                    Ok(_) => return Some(((), reader)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => return None,
                }
            }
        })
    }
}

/// The `.data` / `.json` dump.
#[derive(Serialize)]
struct Data<'a> {
    config_path: &'a Path,
    config: &'a Config,
    vrrp: Vec<InstanceStatus>,
}

impl Daemon {
    /// Writes the dump `what` asks for and logs where.
    pub(super) fn dump(&self, what: Dump) {
        let path = run_file(&self.pin_path, what.suffix());
        let text = match what {
            Dump::Data | Dump::Json => {
                let vrrp = self
                    .instances
                    .board()
                    .lock()
                    .map(|b| b.values().cloned().collect())
                    .unwrap_or_default();
                serde_json::to_string_pretty(&Data {
                    config_path: &self.config_path,
                    config: &self.config,
                    vrrp,
                })
                .map_err(|e| e.to_string())
            }
            Dump::Stats | Dump::StatsClear => {
                // The instances as they are now, not as of the last publish tick.
                self.write_state();
                status::read(&self.pin_path, &self.state_file)
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|s| serde_json::to_string_pretty(&s).map_err(|e| e.to_string()))
            }
        };
        match text.and_then(|t| write_private(&path, &t).map_err(|e| e.to_string())) {
            Ok(()) if what == Dump::StatsClear => info!(
                "stats written to {} (not cleared: the counters are the kernel's)",
                path.display()
            ),
            Ok(()) => info!("{what:?} dump written to {}", path.display()),
            Err(e) => error!("{what:?} dump to {}: {e}", path.display()),
        }
    }
}

/// Replaces `path` with `text`, readable by root only, atomically: a fresh 0600 file
/// beside it (never one someone prepared, nor a symlink's target), then renamed.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keepalived_s_signals_mean_what_they_mean_there() {
        // `keepalived --signum=X` of 2.2.7 on Linux: STOP 15, RELOAD 1, DATA 10, STATS 12,
        // STATS_CLEAR 63, JSON 36.
        assert_eq!(meaning(libc::SIGHUP), Some(Meaning::Reload));
        assert_eq!(meaning(libc::SIGTERM), Some(Meaning::Shutdown));
        assert_eq!(meaning(libc::SIGINT), Some(Meaning::Shutdown));
        assert_eq!(meaning(10), Some(Meaning::Dump(Dump::Data)));
        assert_eq!(meaning(12), Some(Meaning::Dump(Dump::Stats)));
        assert_eq!(meaning(36), Some(Meaning::Dump(Dump::Json)));
        assert_eq!(meaning(63), Some(Meaning::Dump(Dump::StatsClear)));
    }

    #[test]
    fn no_catchable_signal_keeps_a_default_that_ends_or_stops_xlb_but_faults() {
        let kept: Vec<String> = (1..=libc::SIGRTMAX())
            .filter(|&s| meaning(s).is_none())
            .map(name)
            .collect();
        // 9 and 19 (SIGKILL, SIGSTOP) cannot be caught; 32 and 33 are glibc's own.
        assert_eq!(
            kept,
            [
                "signal 4",
                "signal 5",
                "signal 6",
                "signal 7",
                "signal 8",
                "signal 9",
                "signal 11",
                "signal 17",
                "signal 19",
                "signal 32",
                "signal 33"
            ],
            "SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGSEGV, SIGCHLD, SIGSTOP"
        );
        assert_eq!(meaning(libc::SIGWINCH), Some(Meaning::Ignore));
        assert_eq!(meaning(libc::SIGRTMIN() + 5), Some(Meaning::Ignore));
        assert_eq!(meaning(libc::SIGRTMAX()), Some(Meaning::Ignore));
    }

    #[test]
    fn names_as_kill_prints_them() {
        assert_eq!(name(libc::SIGUSR1), "SIGUSR1");
        assert_eq!(name(libc::SIGRTMIN()), "SIGRTMIN");
        assert_eq!(name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
        assert_eq!(name(libc::SIGRTMAX() - 1), "SIGRTMAX-1");
        assert_eq!(name(libc::SIGRTMAX()), "SIGRTMAX");
    }

    #[test]
    fn dumps_are_root_s_only_and_replace_what_was_there() {
        let dir = std::env::temp_dir().join(format!("xlb-dump-{}", std::process::id()));
        let path = dir.join("x.stats");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

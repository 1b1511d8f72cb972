//! keepalived's notify FIFOs: every VRRP and checker event as one line on a named pipe,
//! read by a long-running program instead of a script started per event.
//!
//! - `notify_fifo` gets every event, `vrrp_notify_fifo` the VRRP ones, `lvs_notify_fifo`
//!   the checker ones. Lines are keepalived's: `INSTANCE "VI_1" MASTER 150`,
//!   `VS [198.18.1.100]:tcp:80 DOWN`, `RS [198.18.0.21]:tcp:80 [198.18.1.100]:tcp:80 UP`.
//! - A FIFO that does not exist is created (mode 0600, owned by its reader's user) and
//!   removed at exit; a path that exists and is not a FIFO (a symbolic link included),
//!   or a FIFO owned by neither root nor the reader's user, is refused.
//! - xlb holds each FIFO open for reading and writing, so a write never waits for a
//!   reader: lines queue in the pipe (64 KiB) until the reader comes. When the pipe is full
//!   the line is dropped with a warning; the director never blocks on a slow reader.
//! - An instance name is written between double quotes as keepalived does; a `"`, a `\`
//!   or a control character in it is escaped C-style (`\"`, `\\`, `\n`, `\x1b`), so a
//!   name can never end its line early or forge another one. Plain names give
//!   keepalived's lines byte for byte.
//! - The `*_notify_fifo_script` is started once, with the FIFO's path as its last
//!   argument (split into words and run as `global_defs.script_user`, no shell, like every
//!   command: [`crate::process`]), in its own process group, and that group is ended
//!   (SIGTERM) when xlb stops or the setting changes. One that is refused (script
//!   security, missing) is not started, and that is logged.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write as _},
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use tracing::{info, warn};

use super::notification::Notification;
use crate::{
    config::GlobalDefs,
    process::{self, Policy, Reader},
};

/// Which events a FIFO receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    All,
    Vrrp,
    Lvs,
}

/// One FIFO, open, and the program reading it.
struct Fifo {
    kind: Kind,
    path: PathBuf,
    script: Option<String>,
    /// The rules `script` was started under (a change restarts it).
    policy: Policy,
    pipe: File,
    /// Whether xlb made the FIFO (and removes it at exit).
    created: bool,
    reader: Option<Reader>,
}

impl Fifo {
    fn open(kind: Kind, path: &str, script: Option<&str>, policy: &Policy) -> Result<Self> {
        let path = PathBuf::from(path);
        // Who reads it: a FIFO xlb makes is theirs (keepalived does the same).
        let reader_ids = script
            .and_then(|_| policy.run_as(None).ok())
            .and_then(|r| r.ids());
        let created = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_fifo() => false,
            Ok(_) => bail!("{} exists and is not a FIFO", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                mkfifo(&path).with_context(|| format!("creating the FIFO {}", path.display()))?;
                if let Some((uid, gid)) = reader_ids {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).with_context(|| {
                        format!("handing the FIFO {} to its reader", path.display())
                    })?;
                }
                true
            }
            Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
        };
        // Read and write: opening never waits for a reader, and writes never fail for
        // want of one. Never through a symbolic link someone put there.
        let pipe = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("opening the FIFO {}", path.display()))?;
        // One that was there already must be root's or the reader's: another user's
        // could be one they read (or fill) themselves.
        let owner = std::os::unix::fs::MetadataExt::uid(&pipe.metadata()?);
        if owner != 0 && Some(owner) != reader_ids.map(|(uid, _)| uid) {
            bail!(
                "{} is a FIFO of uid {owner}, neither root's nor its reader's: not used",
                path.display()
            );
        }
        let reader = match script {
            Some(s) => start_reader(kind, s, &path, policy)?,
            None => None,
        };
        Ok(Self {
            kind,
            path,
            script: script.map(str::to_owned),
            policy: policy.clone(),
            pipe,
            created,
            reader,
        })
    }

    fn wants(&self, kind: Kind) -> bool {
        self.kind == Kind::All || self.kind == kind
    }

    fn write_line(&mut self, line: &str) {
        let bytes = format!("{line}\n");
        match self.pipe.write(bytes.as_bytes()) {
            Ok(n) if n == bytes.len() => {}
            Ok(_) => warn!(fifo = %self.path.display(), %line, "notify FIFO: line cut short"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                warn!(fifo = %self.path.display(), %line, "notify FIFO full (its reader is behind): line dropped")
            }
            Err(e) => warn!(fifo = %self.path.display(), %line, "notify FIFO: {e}"),
        }
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        // The reader's group is ended first (dropping it), then the FIFO goes.
        self.reader.take();
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn mkfifo(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The FIFO's reader: the script's words and the FIFO's path, in its own process group.
/// None when the script is refused (logged).
fn start_reader(kind: Kind, script: &str, fifo: &Path, policy: &Policy) -> Result<Option<Reader>> {
    let what = match kind {
        Kind::All => "notify_fifo_script",
        Kind::Vrrp => "vrrp_notify_fifo_script",
        Kind::Lvs => "lvs_notify_fifo_script",
    };
    let prepared = match policy.prepare(script, None, &[]) {
        Ok(p) => p,
        Err(refused) => {
            process::log_refusal(what, script, &refused);
            return Ok(None);
        }
    };
    let reader = Reader::start(&prepared, fifo)
        .with_context(|| format!("starting the FIFO reader {script:?}"))?;
    info!(fifo = %fifo.display(), %script, pid = reader.id(), "notify FIFO reader started");
    Ok(Some(reader))
}

/// The FIFOs of one config.
#[derive(Default)]
pub struct Fifos {
    fifos: Vec<Fifo>,
}

impl Fifos {
    /// Opens (and creates) the FIFOs `g` names and starts their readers. FIFOs and readers
    /// whose settings did not change are kept from `old`, so a reload does not restart a
    /// reader. A FIFO that cannot be opened is left out with an error in the result.
    pub fn configure(g: &GlobalDefs, mut old: Fifos) -> (Self, Vec<anyhow::Error>) {
        let wanted = [
            (Kind::All, &g.notify_fifo, &g.notify_fifo_script),
            (Kind::Vrrp, &g.vrrp_notify_fifo, &g.vrrp_notify_fifo_script),
            (Kind::Lvs, &g.lvs_notify_fifo, &g.lvs_notify_fifo_script),
        ];
        let policy = Policy::of(g);
        let mut fifos = Vec::new();
        let mut errors = Vec::new();
        for (kind, path, script) in wanted {
            let Some(path) = path else { continue };
            let same = old.fifos.iter().position(|f| {
                f.kind == kind
                    && f.path == Path::new(path)
                    && f.script == *script
                    && f.policy == policy
            });
            match same {
                Some(i) => fifos.push(old.fifos.swap_remove(i)),
                None => match Fifo::open(kind, path, script.as_deref(), &policy) {
                    Ok(f) => fifos.push(f),
                    Err(e) => errors.push(e),
                },
            }
        }
        // What is left of `old` closes here: readers end, FIFOs we made go.
        drop(old);
        (Self { fifos }, errors)
    }

    /// Writes `notice`'s line to every FIFO that wants its kind.
    pub fn write(&mut self, notice: &Notification) {
        let kind = match notice {
            Notification::Vrrp { .. } | Notification::VrrpGroup { .. } => Kind::Vrrp,
            Notification::RealServer { .. } | Notification::Quorum { .. } => Kind::Lvs,
        };
        let line = notice.to_string();
        for f in self.fifos.iter_mut().filter(|f| f.wants(kind)) {
            f.write_line(&line);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::{config::Protocol, health::RealKey, notify::VrrpState};

    fn vrrp(instance: &str, state: VrrpState, priority: u8) -> Notification<'_> {
        Notification::Vrrp {
            instance,
            state,
            priority,
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xlb-fifo-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// What a reader opening the FIFO now would read.
    pub(in crate::notify) fn drain(path: &Path) -> String {
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .unwrap();
        // Until EAGAIN: xlb holds the write end, so there is no end of file.
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn events_queue_as_keepalived_lines_until_a_reader_comes() {
        let dir = tmp("lines");
        let all = dir.join("all.fifo");
        let lvs = dir.join("lvs.fifo");
        let g = GlobalDefs {
            notify_fifo: Some(all.display().to_string()),
            lvs_notify_fifo: Some(lvs.display().to_string()),
            ..GlobalDefs::default()
        };
        let (mut n, errors) = Fifos::configure(&g, Fifos::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert!(std::fs::metadata(&all).unwrap().file_type().is_fifo());
        n.write(&vrrp("VI_1", VrrpState::Master, 150));
        let key = RealKey {
            vip: "2001:db8::100".parse().unwrap(),
            vport: 53,
            protocol: Protocol::Udp,
            rip: "2001:db8::21".parse().unwrap(),
            rport: 5353,
        };
        n.write(&Notification::RealServer {
            key: &key,
            up: false,
            reason: "",
        });
        n.write(&Notification::Quorum {
            vip: "198.18.1.100".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            up: true,
        });
        assert_eq!(
            drain(&all),
            "INSTANCE \"VI_1\" MASTER 150\n\
             RS [2001:db8::21]:udp:5353 [2001:db8::100]:udp:53 DOWN\n\
             VS [198.18.1.100]:tcp:80 UP\n"
        );
        // The LVS FIFO got only the checker events.
        assert_eq!(
            drain(&lvs),
            "RS [2001:db8::21]:udp:5353 [2001:db8::100]:udp:53 DOWN\nVS [198.18.1.100]:tcp:80 UP\n"
        );
        drop(n);
        assert!(!all.exists(), "a FIFO xlb made is removed at exit");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_that_is_not_a_fifo_is_refused_and_left_alone() {
        let dir = tmp("notfifo");
        let file = dir.join("plain");
        std::fs::write(&file, "keep me").unwrap();
        let g = GlobalDefs {
            notify_fifo: Some(file.display().to_string()),
            ..GlobalDefs::default()
        };
        let (n, errors) = Fifos::configure(&g, Fifos::default());
        assert!(n.fifos.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().contains("is not a FIFO"),
            "{}",
            errors[0]
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_pipe_drops_lines_instead_of_blocking() {
        let dir = tmp("full");
        let path = dir.join("f");
        let g = GlobalDefs {
            vrrp_notify_fifo: Some(path.display().to_string()),
            ..GlobalDefs::default()
        };
        let (mut n, _) = Fifos::configure(&g, Fifos::default());
        // 64 KiB of pipe, no reader: this returns, and the pipe holds whole lines only.
        for i in 0..5000 {
            n.write(&vrrp(&format!("VI_{i}"), VrrpState::Backup, 100));
        }
        let got = drain(&path);
        assert!(got.len() <= 65536 && got.len() > 60000, "{}", got.len());
        assert!(got.ends_with('\n'));
        drop(n);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reload_keeps_an_unchanged_reader_and_ends_a_removed_one() {
        let dir = tmp("reload");
        let path = dir.join("f");
        let out = dir.join("out");
        let g = GlobalDefs {
            notify_fifo: Some(path.display().to_string()),
            notify_fifo_script: Some(format!("/bin/sh -c 'cat \"$0\" > {}'", out.display())),
            ..GlobalDefs::default()
        };
        let (n, _) = Fifos::configure(&g, Fifos::default());
        let pid = n.fifos[0].reader.as_ref().unwrap().id();
        let (mut n, _) = Fifos::configure(&g, n);
        assert_eq!(n.fifos[0].reader.as_ref().unwrap().id(), pid);
        n.write(&vrrp("VI_1", VrrpState::Fault, 0));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&out).unwrap_or_default().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader got nothing"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "INSTANCE \"VI_1\" FAULT 0\n"
        );
        // The setting goes: the reader's group is ended, the FIFO removed.
        let (n, _) = Fifos::configure(&GlobalDefs::default(), n);
        assert!(n.fifos.is_empty());
        // SAFETY: signal 0 only asks whether the process exists.
        assert_ne!(
            unsafe { libc::kill(pid as i32, 0) },
            0,
            "reader {pid} still runs"
        );
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

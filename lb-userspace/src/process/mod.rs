//! Every external command xlb runs goes through here: `misc_check`, `vrrp_script`
//! trackers, notify commands (`notify_master`, `notify`, `notify_up`, `quorum_up`, ...)
//! and the notify FIFO readers. keepalived 2.x's rules apply to all of them:
//!
//! - a command line is split into words ([`words`]) and executed directly, never
//!   through a shell: what xlb appends (an instance name, a state) is one argument each,
//!   and only a command that names a shell itself (`/bin/sh -c '...'`) gets one;
//! - it runs as its block's `user`, else `global_defs.script_user`, else
//!   `keepalived_script` if that user exists, else root ([`Policy`]); supplementary
//!   groups are dropped, and a non-root user keeps no capability;
//! - one that runs as root is refused under `enable_script_security` when a user other
//!   than root could change it or a directory on its way ([`security`]);
//! - in its own process group, which is killed whole (SIGKILL) when its timeout expires
//!   or its run is dropped (reload, shutdown), so helpers it started die too;
//! - with stdin, stdout and stderr on /dev/null, `IFS`, `LD_PRELOAD` and
//!   `LD_LIBRARY_PATH` removed from its environment, under tokio's child reaper.
//!
//! Notify commands run in the background ([`spawn_notify`]), never waited for.
//! A long-running reader ([`Reader`]) also gets its own process group, ended with
//! SIGTERM (then SIGKILL) when it is dropped. A refused command is logged once per
//! reason ([`log_refusal`]); [`audit`] reports on every command of a config at load.
//!
//! `identity` tells whether a recorded PID still names the same process.

pub mod audit;
pub mod identity;
mod policy;
pub mod security;
mod user;
pub mod words;

use std::{
    collections::HashSet,
    fmt, io,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Child, ExitStatus, Stdio},
    sync::Mutex,
    time::Duration,
};

use tracing::{Instrument as _, error, warn};

pub use policy::{Policy, Refused, Script};
pub use user::RunAs;

/// Why a command did not run to an exit status.
#[derive(Debug)]
pub enum RunError {
    /// The user, the command line or the program was refused.
    Refused(Refused),
    Spawn {
        program: String,
        source: io::Error,
    },
    Wait(io::Error),
    /// The timeout expired and the process group was killed.
    TimedOut(Duration),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(reason) => reason.fmt(f),
            Self::Spawn { program, source } => write!(f, "cannot run {program:?}: {source}"),
            Self::Wait(e) => write!(f, "waiting for the command: {e}"),
            Self::TimedOut(t) => write!(f, "timeout after {t:?}: process group killed"),
        }
    }
}

impl std::error::Error for RunError {}

/// Logs `refused` for the command `what` (`vrrp_script chk`, `notify_master of
/// vrrp_instance VI_1`), once per command line and reason: a check refused every second,
/// or a command the start-up audit already named, logs no second line.
pub fn log_refusal(what: &str, line: &str, refused: &Refused) {
    static LOGGED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let key = format!("{line}\0{refused}");
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.get_or_insert_with(HashSet::new).insert(key) {
        error!(command = %line, "{what} not run: {refused}");
    }
}

/// The process of `script`: its own group, its user, stdio on /dev/null, a cleaned
/// environment.
fn command(script: &Script) -> std::process::Command {
    let mut cmd = std::process::Command::new(&script.argv[0]);
    cmd.args(&script.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("IFS")
        .env_remove("LD_PRELOAD")
        .env_remove("LD_LIBRARY_PATH")
        .process_group(0);
    if let RunAs::User { uid, gid, .. } = script.run_as {
        // std calls setgid, then setgroups(0) (we are root), then setuid: no
        // supplementary group is kept, and the kernel clears the capabilities of a
        // process whose uids all leave 0.
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Kills a process group when dropped, unless disarmed: a run dropped midway
/// (reload, shutdown) leaves nothing behind.
struct GroupKiller(Option<i32>);

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: plain syscall; a stale group only yields ESRCH.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `script` to its exit, killing its process group after `timeout`.
pub async fn run(script: &Script, timeout: Duration) -> Result<ExitStatus, RunError> {
    let mut child = tokio::process::Command::from(command(script))
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: script.argv[0].clone(),
            source,
        })?;
    let mut killer = GroupKiller(child.id().and_then(|p| i32::try_from(p).ok()));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // The leader is reaped: its group id may be reused, do not kill it now.
            killer.0 = None;
            Ok(status)
        }
        Ok(Err(e)) => Err(RunError::Wait(e)),
        Err(_) => {
            killer.kill();
            let _ = child.wait().await;
            Err(RunError::TimedOut(timeout))
        }
    }
}

/// How long a notify command may run before its group is killed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a notify command (`notify_master`, `notify`, `notify_up`, `quorum_up`, ...) in
/// the background, within the caller's span: nothing waits for it, as in keepalived.
/// `extra` are appended as arguments (keepalived's `INSTANCE name state priority`).
/// `what` names it in the log; a refusal or a failure is logged.
/// `user` is the command's own `user [group]` (else the policy's default).
pub fn spawn_notify(policy: &Policy, what: &str, line: &str, user: Option<&str>, extra: &[&str]) {
    let script = match policy.prepare(line, user, extra) {
        Ok(s) => s,
        Err(refused) => return log_refusal(what, line, &refused),
    };
    let (what, line) = (what.to_owned(), line.to_owned());
    let run = async move {
        match run(&script, NOTIFY_TIMEOUT).await {
            Ok(status) if status.success() => {}
            Ok(status) => warn!(command = %line, %status, "{what} failed"),
            Err(e) => warn!(command = %line, "{what} failed: {e}"),
        }
    };
    tokio::spawn(run.in_current_span());
}

/// A long-running program reading something xlb hands it (a notify FIFO's
/// `*_notify_fifo_script`); its process group is ended when this is dropped.
pub struct Reader {
    child: Child,
}

impl Reader {
    /// `script` with `arg` appended, as its user, in its own process group, stdin on
    /// /dev/null (stdout and stderr too: a reader writes where it means to).
    pub fn start(script: &Script, arg: &Path) -> io::Result<Self> {
        let child = command(script).arg(arg).spawn()?;
        Ok(Self { child })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: signals the process group `start` created for the reader.
        unsafe { libc::kill(group, libc::SIGTERM) };
        // A reader that ignores SIGTERM gets a second, then SIGKILL.
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above; harmless if the group is gone.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `line` prepared to run as whoever runs the tests.
    fn script(line: &str) -> Script {
        Policy::default().prepare(line, None, &[]).unwrap()
    }

    async fn succeeds(line: &str, timeout: Duration) -> bool {
        run(&script(line), timeout).await.is_ok_and(|s| s.success())
    }

    #[tokio::test]
    async fn scripts_report_success_and_time_out_as_a_group() {
        assert!(succeeds("/bin/sh -c 'exit 0'", Duration::from_secs(5)).await);
        assert!(!succeeds("/bin/sh -c 'exit 3'", Duration::from_secs(5)).await);
        let marker = std::env::temp_dir().join(format!("xlb-track-{}", std::process::id()));
        let cmd = format!(
            "/bin/sh -c '(sleep 30; touch {}) & sleep 30'",
            marker.display()
        );
        let t = std::time::Instant::now();
        assert!(!succeeds(&cmd, Duration::from_millis(200)).await);
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!marker.exists());
        // The background grandchild was in the group: it is gone, not orphaned.
        let out = std::process::Command::new("pgrep")
            .args(["-f", &format!("touch {}", marker.display())])
            .output()
            .unwrap();
        assert!(
            out.stdout.is_empty(),
            "a grandchild survived the group kill"
        );
    }

    #[tokio::test]
    async fn no_shell_sees_the_words() {
        let dir = std::env::temp_dir().join(format!("xlb-argv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pwned = dir.join("pwned");
        let out = dir.join("out");
        // Shell syntax in the line and in appended arguments stays plain words.
        let line = format!(
            "/bin/sh -c 'printf \"%s|\" \"$@\" > {}' sh a;b $(touch {})",
            out.display(),
            pwned.display()
        );
        let hostile = format!("x;touch {}", pwned.display());
        let s = Policy::default()
            .prepare(&line, None, &[&hostile, "`id`"])
            .unwrap();
        assert!(run(&s, Duration::from_secs(5)).await.unwrap().success());
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("a;b|$(touch|{})|{hostile}|`id`|", pwned.display())
        );
        assert!(!pwned.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dropped_reader_ends_its_whole_group() {
        let dir = std::env::temp_dir().join(format!("xlb-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        // The reader's own child records its pid; the group kill must reach it.
        let reader = Reader::start(
            &script("sh -c 'sleep 1000 & echo $! > \"$0\"; wait'"),
            &pidfile,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&pidfile)
            .unwrap_or_default()
            .trim()
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        drop(reader);
        let gone = || {
            std::fs::read_to_string(format!("/proc/{child}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader's child {child} survived"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

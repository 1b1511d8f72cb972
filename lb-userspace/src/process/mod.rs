//! Every external command xlb runs goes through here: `misc_check`, `vrrp_script`
//! trackers, notify commands (`notify_master`, `notify`, `notify_up`, `quorum_up`, ...)
//! and the notify FIFO readers.
//!
//! A command that runs to completion ([`run`]):
//! - runs as the configured user ([`RunAs`]), no change of user when that is who we are;
//! - in its own process group, which is killed whole (SIGKILL) when its timeout expires
//!   or its run is dropped (reload, shutdown), so helpers it started die too;
//! - with stdin, stdout and stderr on /dev/null, under tokio's child reaper: nothing
//!   blocks a thread while it runs.
//!
//! Notify commands run in the background ([`spawn_notify`]), never waited for.
//! A long-running reader ([`Reader`]) also gets its own process group, ended with
//! SIGTERM (then SIGKILL) when it is dropped.
//!
//! keepalived's script security (`enable_script_security`, refusing scripts that a
//! non-root user could change, argv instead of `sh -c`) belongs here, so that every
//! command passes the same rules.
//!
//! `identity` tells whether a recorded PID still names the same process.

pub mod identity;
mod user;
mod words;

use std::{
    fmt, io,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Child, ExitStatus, Stdio},
    time::Duration,
};

use tracing::{Instrument as _, debug, warn};

pub use user::RunAs;
pub use words::{shell, split_command};

/// Why a command did not run to an exit status.
#[derive(Debug)]
pub enum RunError {
    /// The user or the command line was refused when the command was prepared.
    Refused(String),
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
            Self::Refused(reason) => f.write_str(reason),
            Self::Spawn { program, source } => write!(f, "cannot run {program:?}: {source}"),
            Self::Wait(e) => write!(f, "waiting for the command: {e}"),
            Self::TimedOut(t) => write!(f, "timeout after {t:?}: process group killed"),
        }
    }
}

impl std::error::Error for RunError {}

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

/// Runs `argv` as `run_as` to its exit, killing its process group after `timeout`.
pub async fn run(
    argv: &[String],
    run_as: &RunAs,
    timeout: Duration,
) -> Result<ExitStatus, RunError> {
    if let RunAs::Invalid(reason) = run_as {
        return Err(RunError::Refused(reason.clone()));
    }
    let Some((program, args)) = argv.split_first() else {
        return Err(RunError::Refused("empty command".to_owned()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let RunAs::User { uid, gid, .. } = *run_as {
        // std drops supplementary groups (setgroups 0) when root changes uid.
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
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

/// Runs `sh -c command` as `user` (see [`run`]). Returns whether it exited 0.
pub async fn run_shell(command: &str, timeout: Duration, user: Option<&str>) -> bool {
    match run(&shell(command), &RunAs::of(user), timeout).await {
        Ok(status) if status.success() => true,
        Ok(status) => {
            debug!(command, %status, "script failed");
            false
        }
        Err(e) => {
            debug!(command, reason = %e, "script failed");
            false
        }
    }
}

/// How long a notify command may run before its group is killed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a notify command (`notify_master`, `notify`, `notify_up`, `quorum_up`, ...)
/// through `sh -c` in the background, within the caller's span: nothing waits for it,
/// as in keepalived. A failure is logged.
pub fn spawn_notify(command: String) {
    let run = async move {
        if !run_shell(&command, NOTIFY_TIMEOUT, None).await {
            warn!(%command, "notify command failed");
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
    /// `sh -c '<script> "$1"' sh <arg>`, in its own process group, stdin on /dev/null.
    pub fn start(script: &str, arg: &Path) -> io::Result<Self> {
        let child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{script} \"$1\""))
            .arg("sh")
            .arg(arg)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()?;
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

    #[tokio::test]
    async fn scripts_report_success_and_time_out_as_a_group() {
        assert!(run_shell("exit 0", Duration::from_secs(5), None).await);
        assert!(!run_shell("exit 3", Duration::from_secs(5), None).await);
        let marker = std::env::temp_dir().join(format!("xlb-track-{}", std::process::id()));
        let cmd = format!("(sleep 30; touch {}) & sleep 30", marker.display());
        let t = std::time::Instant::now();
        assert!(!run_shell(&cmd, Duration::from_millis(200), None).await);
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
    async fn refused_and_missing_commands_do_not_run() {
        let refused = run(
            &shell("exit 0"),
            &RunAs::Invalid("unknown user".into()),
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(refused.unwrap_err().to_string(), "unknown user");
        let empty = run(&[], &RunAs::Current, Duration::from_secs(1)).await;
        assert_eq!(empty.unwrap_err().to_string(), "empty command");
    }

    #[test]
    fn a_dropped_reader_ends_its_whole_group() {
        let dir = std::env::temp_dir().join(format!("xlb-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        // The reader's own child records its pid; the group kill must reach it.
        let reader =
            Reader::start("sh -c 'sleep 1000 & echo $! > \"$0\"; wait'", &pidfile).unwrap();
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

//! `misc_check`: runs a command; exit status 0 is up, anything else down, except with
//! `misc_dynamic`, where 2..=255 is up with weight status - 2 (and 0 restores the
//! configured weight), as keepalived.
//!
//! The command line is split into words as keepalived does (quotes and backslashes,
//! no shell) and executed directly, as the configured user (`user`, else
//! `global_defs.script_user`, else keepalived's default), by [`crate::process`]: its own
//! process group, killed whole when `misc_timeout` expires or the check is dropped,
//! stdio on /dev/null. It is prepared again at each run, so a script refused by script
//! security (or missing) makes the check fail with that reason, logged once.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use super::socket::fmt_duration;
use super::state::Outcome;
use crate::process::{self, Policy, RunError};

/// What a `misc_check` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscSpec {
    /// `misc_path` as written.
    pub command: String,
    pub timeout: Duration,
    /// `misc_dynamic`.
    pub dynamic: bool,
    /// The checker's `user [group]`, if it has one.
    pub user: Option<String>,
    /// `global_defs`' rules (default user, script security).
    pub policy: Policy,
}

impl MiscSpec {
    pub fn new(
        command: &str,
        timeout: Duration,
        dynamic: bool,
        user: Option<&str>,
        policy: &Policy,
    ) -> Self {
        Self {
            command: command.to_owned(),
            timeout,
            dynamic,
            user: user.map(str::to_owned),
            policy: policy.clone(),
        }
    }
}

/// Runs one check.
pub async fn check(spec: &MiscSpec) -> Outcome {
    let script = match spec
        .policy
        .prepare(&spec.command, spec.user.as_deref(), &[])
    {
        Ok(s) => s,
        Err(refused) => {
            process::log_refusal("misc_check", &spec.command, &refused);
            return Outcome::down(refused.to_string());
        }
    };
    match process::run(&script, spec.timeout).await {
        Ok(status) => judge(status, spec.dynamic),
        Err(RunError::TimedOut(t)) => Outcome::down(format!(
            "timeout after {}: process group killed",
            fmt_duration(t)
        )),
        Err(e) => Outcome::down(e.to_string()),
    }
}

/// The outcome of an exit status.
fn judge(status: ExitStatus, dynamic: bool) -> Outcome {
    match status.code() {
        Some(0) => Outcome::up(),
        Some(code @ 2..=255) if dynamic => Outcome::Success {
            weight: Some(code as u32 - 2),
        },
        Some(code) => Outcome::down(format!("exit code {code}")),
        None => Outcome::down(format!(
            "killed by signal {}",
            status.signal().unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, dynamic: bool, timeout_ms: u64) -> MiscSpec {
        let line = format!("/bin/sh -c '{script}'");
        let timeout = Duration::from_millis(timeout_ms);
        MiscSpec::new(&line, timeout, dynamic, None, &Policy::default())
    }

    #[tokio::test]
    async fn check_misc_empty_command_lines_are_refused() {
        let spec = MiscSpec::new(
            "  ",
            Duration::from_secs(1),
            false,
            None,
            &Policy::default(),
        );
        assert_eq!(
            check(&spec).await,
            Outcome::down("Unable to parse script: empty command")
        );
    }

    #[tokio::test]
    async fn check_misc_exit_codes() {
        assert_eq!(check(&sh("exit 0", false, 5000)).await, Outcome::up());
        assert_eq!(
            check(&sh("exit 1", false, 5000)).await,
            Outcome::down("exit code 1")
        );
        assert_eq!(
            check(&sh("exit 7", false, 5000)).await,
            Outcome::down("exit code 7")
        );
        // misc_dynamic: 7 is up with weight 5; 1 is still down; 0 is up, configured weight.
        assert_eq!(
            check(&sh("exit 7", true, 5000)).await,
            Outcome::Success { weight: Some(5) }
        );
        assert_eq!(
            check(&sh("exit 1", true, 5000)).await,
            Outcome::down("exit code 1")
        );
        assert_eq!(check(&sh("exit 0", true, 5000)).await, Outcome::up());
        assert_eq!(
            check(&sh("kill -TERM $$", false, 5000)).await,
            Outcome::down("killed by signal 15")
        );
        let missing = MiscSpec::new(
            "/no/such/xlb-script",
            Duration::from_secs(1),
            false,
            None,
            &Policy::default(),
        );
        assert_eq!(
            check(&missing).await,
            Outcome::down(
                "Script /no/such/xlb-script cannot be accessed - No such file or directory \
                 - disabling"
            )
        );
    }

    #[tokio::test]
    async fn check_misc_runs_as_the_configured_user() {
        let dir = std::env::temp_dir().join(format!("xlb-misc-user-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("uid");
        // World-writable so that nobody can write its uid there.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let line = format!("/bin/sh -c 'id -u > {}'", out.display());
        let policy = Policy::default();
        let spec = MiscSpec::new(
            &line,
            Duration::from_secs(5),
            false,
            Some("nobody"),
            &policy,
        );
        let Ok(process::RunAs::User { uid, .. }) = policy.run_as(Some("nobody")) else {
            panic!("nobody does not resolve to another user");
        };
        assert_eq!(check(&spec).await, Outcome::up());
        let written = std::fs::read_to_string(&out).unwrap();
        assert_eq!(written.trim(), uid.to_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn check_misc_an_unsafe_root_script_is_down_with_the_path_named() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("xlb-misc-unsafe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let marker = dir.join("ran");
        let script = dir.join("chk.sh");
        std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let policy = Policy {
            script_user: Some("root".into()),
            security: true,
        };
        let line = script.display().to_string();
        let spec = MiscSpec::new(&line, Duration::from_secs(5), false, None, &policy);
        let Outcome::Failure { reason } = check(&spec).await else {
            panic!("an unsafe script passed");
        };
        assert_eq!(
            reason,
            format!(
                "Unsafe permissions found for script path '{}' (a user other than root can \
                 change it) - disabling",
                dir.display()
            )
        );
        assert!(!marker.exists(), "the unsafe script ran");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks for existence.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    #[tokio::test]
    async fn check_misc_timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("xlb-misc-kill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        // The script starts a child that sleeps, records its pid, and waits forever.
        let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
        let spec = sh(&script, false, 500);
        let started = std::time::Instant::now();
        let out = check(&spec).await;
        assert_eq!(
            out,
            Outcome::down("timeout after 500ms: process group killed")
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL is delivered at once; the orphan is reaped by init shortly after.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(child) && !is_zombie(child) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !alive(child) || is_zombie(child),
            "the script's child {child} survived the timeout"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A killed process whose parent has not reaped it yet is gone for our purpose.
    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn check_misc_dropped_check_kills_its_group() {
        let dir = std::env::temp_dir().join(format!("xlb-misc-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let spec = sh(
            &format!("echo $$ > {}; sleep 1000", pidfile.display()),
            false,
            60_000,
        );
        let run = tokio::spawn(async move { check(&spec).await });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !pidfile.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        run.abort();
        let _ = run.await;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) && !is_zombie(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !alive(pid) || is_zombie(pid),
            "script {pid} survived its check"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

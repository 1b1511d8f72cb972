//! `misc_check`: runs a command; exit status 0 is up, anything else down, except with
//! `misc_dynamic`, where 2..=255 is up with weight status - 2 (and 0 restores the
//! configured weight), as keepalived.
//!
//! The command line is split into words as keepalived does (quotes and backslashes,
//! no shell) and executed directly. It runs:
//! - as the configured user (`user`, else `global_defs.script_user`), resolved once
//!   from the user database; no change of user when that is who we already are;
//! - in its own process group, which is killed whole (SIGKILL) when `misc_timeout`
//!   expires or the check is dropped (reload, shutdown), so helpers it started die too;
//! - with stdin, stdout and stderr on /dev/null, under tokio's child reaper: nothing
//!   blocks a thread while it runs.

use std::ffi::CString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use super::net::fmt_duration;
use super::state::Outcome;

/// What a `misc_check` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscSpec {
    /// `misc_path` as written.
    pub command: String,
    /// The command split into words; empty if it could not be (see `error`).
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// `misc_dynamic`.
    pub dynamic: bool,
    pub run_as: RunAs,
}

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// Whoever runs xlb (no `user` nor `script_user`, or already that user).
    Current,
    User {
        name: String,
        uid: u32,
        gid: u32,
    },
    /// The user or group does not exist (or the command line is malformed): every
    /// check fails with this reason.
    Invalid(String),
}

impl MiscSpec {
    /// `user`: keepalived's `user [group]`. Looks the names up in the user database.
    pub fn new(command: &str, timeout: Duration, dynamic: bool, user: Option<&str>) -> Self {
        Self::with_argv(command, split_command(command), timeout, dynamic, user)
    }

    /// `command` run through `sh -c`, as keepalived runs `vrrp_script` and notify
    /// commands: pipes, `&&` and redirections work.
    pub fn shell(command: &str, timeout: Duration, user: Option<&str>) -> Self {
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()];
        Self::with_argv(command, Ok(argv), timeout, false, user)
    }

    fn with_argv(
        command: &str,
        argv: Result<Vec<String>, String>,
        timeout: Duration,
        dynamic: bool,
        user: Option<&str>,
    ) -> Self {
        let mut run_as = match user {
            None => RunAs::Current,
            Some(u) => resolve_user(u).unwrap_or_else(RunAs::Invalid),
        };
        let argv = match argv {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => {
                run_as = RunAs::Invalid("empty command".to_owned());
                Vec::new()
            }
            Err(e) => {
                run_as = RunAs::Invalid(e);
                Vec::new()
            }
        };
        Self {
            command: command.to_owned(),
            argv,
            timeout,
            dynamic,
            run_as,
        }
    }
}

/// Splits a command line into words: whitespace separates, `'...'` is literal,
/// `"..."` allows `\"` and `\\`, a backslash outside quotes escapes the next
/// character.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated ' in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated \" in {line:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated \" in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `user [group]` to ids, with `getpwnam_r` / `getgrnam_r`. [`RunAs::Current`] when
/// that is already who we are.
fn resolve_user(spec: &str) -> Result<RunAs, String> {
    let mut words = spec.split_whitespace();
    let name = words
        .next()
        .ok_or_else(|| "empty user".to_owned())?
        .to_owned();
    let (uid, user_gid) = lookup_user(&name)?.ok_or_else(|| format!("unknown user {name:?}"))?;
    let gid = match words.next() {
        Some(group) => lookup_group(group)?.ok_or_else(|| format!("unknown group {group:?}"))?,
        None => user_gid,
    };
    // SAFETY: geteuid/getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == euid && gid == egid {
        return Ok(RunAs::Current);
    }
    Ok(RunAs::User { name, uid, gid })
}

fn lookup_user(name: &str) -> Result<Option<(u32, u32)>, String> {
    let c = CString::new(name).map_err(|_| format!("bad user name {name:?}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all pointers are valid for the call; `pwd` is filled by getpwnam_r
        // and only read when `result` is non-null.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "looking up user {name:?}: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        return Ok((!result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid)));
    }
}

fn lookup_group(name: &str) -> Result<Option<u32>, String> {
    let c = CString::new(name).map_err(|_| format!("bad group name {name:?}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: as in `lookup_user`.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "looking up group {name:?}: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        return Ok((!result.is_null()).then_some(grp.gr_gid));
    }
}

/// Kills a process group when dropped, unless disarmed: a check dropped mid-run
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

/// Runs one check.
pub async fn check(spec: &MiscSpec) -> Outcome {
    if let RunAs::Invalid(reason) = &spec.run_as {
        return Outcome::down(reason.clone());
    }
    let mut cmd = tokio::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let RunAs::User { uid, gid, .. } = spec.run_as {
        // std drops supplementary groups (setgroups 0) when root changes uid.
        cmd.uid(uid).gid(gid);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::down(format!("cannot run {:?}: {e}", spec.argv[0])),
    };
    let mut killer = GroupKiller(child.id().and_then(|p| i32::try_from(p).ok()));
    match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // The leader is reaped: its group id may be reused, do not kill it now.
            killer.0 = None;
            judge(status, spec.dynamic)
        }
        Ok(Err(e)) => Outcome::down(format!("waiting for the command: {e}")),
        Err(_) => {
            killer.kill();
            let _ = child.wait().await;
            Outcome::down(format!(
                "timeout after {}: process group killed",
                fmt_duration(spec.timeout)
            ))
        }
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
        MiscSpec::new(&line, Duration::from_millis(timeout_ms), dynamic, None)
    }

    #[test]
    fn check_misc_command_lines_split_like_keepalived() {
        assert_eq!(
            split_command(r#"/usr/bin/curl -s 'http://a b/' "x\"y" z\ w"#).unwrap(),
            vec!["/usr/bin/curl", "-s", "http://a b/", "x\"y", "z w"]
        );
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert!(split_command("echo 'oops").is_err());
        let spec = MiscSpec::new("  ", Duration::from_secs(1), false, None);
        assert_eq!(spec.run_as, RunAs::Invalid("empty command".to_owned()));
    }

    #[test]
    fn check_misc_users_resolve() {
        assert_eq!(resolve_user("root"), Ok(RunAs::Current));
        assert!(matches!(
            resolve_user("nobody"),
            Ok(RunAs::User { uid, .. }) if uid != 0
        ));
        assert_eq!(
            resolve_user("no-such-user-xlb"),
            Err("unknown user \"no-such-user-xlb\"".to_owned())
        );
        assert!(resolve_user("root no-such-group-xlb").is_err());
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
        let missing = MiscSpec::new("/no/such/xlb-script", Duration::from_secs(1), false, None);
        let Outcome::Failure { reason } = check(&missing).await else {
            panic!("a missing script passed");
        };
        assert!(
            reason.starts_with("cannot run \"/no/such/xlb-script\""),
            "{reason}"
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
        let spec = MiscSpec::new(&line, Duration::from_secs(5), false, Some("nobody"));
        let RunAs::User { uid, .. } = spec.run_as else {
            panic!("nobody resolves to another user: {:?}", spec.run_as);
        };
        assert_eq!(check(&spec).await, Outcome::up());
        let written = std::fs::read_to_string(&out).unwrap();
        assert_eq!(written.trim(), uid.to_string());
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

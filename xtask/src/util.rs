//! Small helpers shared by the subcommands: step lines, running commands, privileges.

use std::{
    ffi::OsStr,
    fmt::{self, Write as _},
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicI32, Ordering},
};

use anyhow::{Context as _, Result};

/// A child process that ran and failed. `main` exits with the same code.
#[derive(Debug)]
pub struct CommandFailed {
    pub code: i32,
    pub what: String,
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command failed (exit code {}): {}", self.code, self.what)
    }
}

impl std::error::Error for CommandFailed {}

/// One line saying what the current subcommand is doing.
pub fn step(task: &str, what: impl fmt::Display) {
    println!("[{task}] {what}");
}

/// The workspace root (this crate lives in `<root>/xtask`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// Where cargo puts build output for this workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The `cargo` that runs this xtask (same toolchain), or the one on PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cmd` as a shell-like line, with the variables it sets (PATH is left out: too long).
pub fn display(cmd: &Command) -> String {
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) if key != "PATH" => {
                let _ = write!(line, "{}={} ", key.display(), quote(value));
            }
            _ => {}
        }
    }
    // The cargo running this xtask is shown by name: its toolchain path is noise.
    let program = cmd.get_program();
    if std::env::var_os("CARGO").is_some_and(|cargo| cargo == program) {
        line.push_str("cargo");
    } else {
        line.push_str(&quote(program));
    }
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Fails with `cmd`'s exit code (or 128 + its signal) unless it succeeded.
pub fn check(cmd: &Command, status: ExitStatus) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    Err(CommandFailed {
        code,
        what: display(cmd),
    }
    .into())
}

/// Prints the command, runs it with inherited stdio, fails with its exit code.
pub fn run(cmd: &mut Command) -> Result<()> {
    println!("  $ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start: {}", display(cmd)))?;
    check(cmd, status)
}

/// Runs a query command quietly and returns its stdout; fails (with its stderr) when it fails.
pub fn output(cmd: &mut Command) -> Result<String> {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start: {}", display(cmd)))?;
    if !status.success() {
        eprint!("{}", String::from_utf8_lossy(&stderr));
    }
    check(cmd, status)?;
    String::from_utf8(stdout).with_context(|| format!("output is not UTF-8: {}", display(cmd)))
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(signal: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; the PID is our child's.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Runs a driver of the tests crate (the demo, the benchmark) with SIGINT / SIGTERM /
/// SIGHUP forwarded to it rather than ending this task, so that it can clean up; then
/// calls `after` with its PID, however it ended.
pub fn run_forwarding_signals(cmd: &mut Command, after: impl FnOnce(u32)) -> Result<ExitStatus> {
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start: {}", display(cmd)))?;
    let pid = child.id();
    CHILD.store(pid as i32, Ordering::SeqCst);
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    let mut old: Vec<libc::sigaction> = Vec::new();
    for signal in signals {
        // SAFETY: installs a handler that only calls kill(2); the old action is kept.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction =
                forward_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            let mut prev: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, &action, &mut prev);
            old.push(prev);
        }
    }
    let status = child.wait();
    CHILD.store(0, Ordering::SeqCst);
    for (signal, prev) in signals.iter().zip(&old) {
        // SAFETY: restores the action saved above.
        unsafe { libc::sigaction(*signal, prev, std::ptr::null_mut()) };
    }
    after(pid);
    Ok(status?)
}

/// Whether `program` is an executable file somewhere on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| {
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

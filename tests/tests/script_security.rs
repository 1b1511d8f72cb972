//! The commands xlb runs, against an attacker and an unlucky operator, in network
//! namespaces with a real daemon: each command runs as its user (with no supplementary
//! group and no capability), config strings never reach a shell, and with
//! `enable_script_security` a root script that another user can change never runs.
//!
//! An unprivileged user is created for each test (`xlbt<pid>`) and removed when the test
//! ends, passed or not.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use integration_tests::netns::{LAB_VIP, Lab, ha_lab, start_xlb_in, wait_for, wait_vip};

/// An unprivileged system user, removed on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(tag: &str) -> Self {
        let name = format!("xlbt{tag}{}", std::process::id());
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name)
            .output()
            .expect("useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Removed from here on, whatever happens below.
        let mut user = Self {
            name,
            uid: 0,
            gid: 0,
        };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .arg(flag)
                .arg(&user.name)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        (user.uid, user.gid) = (id("-u"), id("-g"));
        assert_ne!(user.uid, 0);
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// A file a test may leave behind when it fails, removed on drop.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A root-owned executable script at `path` (mode 0755).
fn script(path: &Path, body: &str) -> PathBuf {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_owned()
}

fn mkdir(path: &Path, mode: u32) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_owned()
}

/// One instance on dir1's eth0, alone in its group: MASTER after about 3 s.
fn vrrp_config(global: &str, name: &str, extra: &str) -> String {
    format!(
        r#"[global_defs]
{global}

[[vrrp_instance]]
name = "{name}"
interface = "eth0"
virtual_router_id = 61
priority = 100
advert_int = 1
virtual_ipaddress = ["{LAB_VIP}/32"]
{extra}
"#
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits for `path` to hold `lines` lines or more.
fn wait_lines(path: &Path, lines: usize) -> String {
    wait_until(path, |got| got.lines().count() >= lines)
}

/// Waits for the text of `path` to satisfy `done`.
fn wait_until(path: &Path, done: impl Fn(&str) -> bool) -> String {
    wait_for(Duration::from_secs(15), &path.display().to_string(), || {
        let got = read(path);
        (done(&got).then(|| got.clone()), format!("{got:?}"))
    })
}

#[test]
fn commands_run_as_their_user_and_config_strings_never_reach_a_shell() {
    let user = TestUser::create("a");
    let mut lab = ha_lab("scra", 0);
    let bin = mkdir(&lab.tmp.join("bin"), 0o755);
    // Where the scripts (running as the test user or nobody) write.
    let out = mkdir(&lab.tmp.join("out"), 0o777);
    // Writes who runs it, its groups, its capabilities, then each argument on a line.
    let whoami = script(
        &bin.join("whoami.sh"),
        "to=$1; shift\n{ id -u; id -G; grep CapEff /proc/self/status | cut -f2; \
         printf '%s\\n' \"$@\"; } > \"$to\"",
    );
    let reader = script(
        &bin.join("reader.sh"),
        "id -u > \"$1.uid\"\nexec cat \"$2\" > \"$1\"",
    );
    let pwned = RemovedOnDrop(PathBuf::from(format!("/tmp/pwned-{}", std::process::id())));
    let _ = std::fs::remove_file(&pwned.0);
    // `;true` keeps a shell that would run it from making files of the next words.
    let hostile = format!("x;touch {};true", pwned.0.display());
    let w = whoami.display();
    let o = out.display();
    let text = vrrp_config(
        &format!(
            "script_user = \"{u}\"\nrouter_id = \"{hostile}\"\n\
             notify_fifo = \"{o}/events.fifo\"\nnotify_fifo_script = \"{r} {o}/fifo\"\n\
             [vrrp_script.chk]\nscript = \"{w} {o}/track\"\ninterval = 1\nweight = 10\n\
             user = \"nobody\"",
            u = user.name,
            r = reader.display(),
        ),
        &hostile,
        &format!(
            "track_script = [\"chk\"]\nnotify_master = \"{w} {o}/master\"\n\
             notify = \"{w} {o}/notify\""
        ),
    );
    let config = lab.tmp.join("xlb.toml");
    std::fs::write(&config, text).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &config);
    wait_vip(&lab, "dir1", true, Duration::from_secs(10));

    // `notify` gets keepalived's arguments, the hostile name as one of them, and no
    // shell ever sees it.
    let notify = wait_until(&out.join("notify"), |t| t.contains("MASTER"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!pwned.0.exists(), "a config string reached a shell");
    let args: Vec<&str> = notify.lines().skip(3).collect();
    assert_eq!(
        args,
        ["INSTANCE", hostile.as_str(), "MASTER", "110"],
        "{notify}"
    );

    // notify_master and the FIFO reader run as script_user, with no supplementary group
    // and no capability.
    let master = wait_lines(&out.join("master"), 3);
    let lines: Vec<&str> = master.lines().collect();
    assert_eq!(
        lines[0],
        user.uid.to_string(),
        "notify_master's uid: {master}"
    );
    assert_eq!(
        lines[1],
        user.gid.to_string(),
        "only the user's group: {master}"
    );
    assert_eq!(lines[2], "0000000000000000", "no capability left: {master}");
    let reader_uid = wait_lines(&out.join("fifo.uid"), 1);
    assert_eq!(
        reader_uid.trim(),
        user.uid.to_string(),
        "the FIFO reader's uid"
    );
    // The vrrp_script's own user wins over script_user.
    let track = wait_lines(&out.join("track"), 1);
    assert_eq!(
        track.lines().next(),
        Some("65534"),
        "vrrp_script as nobody: {track}"
    );

    // The FIFO line carries the name quoted, on one line.
    let line = format!("INSTANCE \"{hostile}\" MASTER 110");
    wait_until(&out.join("fifo"), |t| t.lines().any(|l| l == line));
    // Nothing ran as root: no SECURITY VIOLATION warning.
    let log = lab.log("xlb");
    assert!(!log.contains("SECURITY VIOLATION"), "{log}");
    drop(lab);
    drop(user);
}

#[test]
fn script_security_refuses_a_root_script_another_user_can_change() {
    let user = TestUser::create("b");
    let mut lab = ha_lab("scrb", 0);
    let out = mkdir(&lab.tmp.join("out"), 0o755);
    // A root-owned script in a directory the test user owns: the user could swap it.
    let theirs = mkdir(&lab.tmp.join("theirs"), 0o755);
    let ran = out.join("ran");
    let unsafe_script = script(
        &theirs.join("notify.sh"),
        &format!("echo \"$0\" >> {}", ran.display()),
    );
    std::os::unix::fs::chown(&theirs, Some(user.uid), Some(user.gid)).unwrap();
    let safe = out.join("safe");
    let u = unsafe_script.display();
    let text = vrrp_config(
        &format!(
            "script_user = \"root\"\nenable_script_security = true\n\
             [vrrp_script.chk]\nscript = \"{u} track\"\ninterval = 1\nweight = -10"
        ),
        "VI_1",
        &format!(
            "track_script = [\"chk\"]\nnotify_master = \"{u} master\"\n\
             notify_backup = \"/bin/sh -c 'id -u >> {s}'\"\n\
             notify = \"/bin/sh -c 'echo \\\"$@\\\" >> {s}' sh\"",
            s = safe.display()
        ),
    );
    let config = lab.tmp.join("xlb.toml");
    std::fs::write(&config, &text).unwrap();

    // `xlb check` reports it, naming the directory.
    let check = Command::new(integration_tests::netns::xlb_bin())
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "xlb check accepted it: {stderr}");
    let unsafe_dir = format!(
        "Unsafe permissions found for script path '{}'",
        theirs.display()
    );
    assert!(stderr.contains(&unsafe_dir), "{stderr}");

    start_xlb_in(&mut lab, "dir1", "xlb", &config);
    wait_vip(&lab, "dir1", true, Duration::from_secs(10));
    // The safe root commands run (BACKUP then MASTER through `notify`)...
    let got = wait_until(&safe, |t| t.contains("INSTANCE VI_1 MASTER"));
    assert!(
        got.lines().any(|l| l == "0"),
        "notify_backup as root: {got}"
    );
    std::thread::sleep(Duration::from_secs(2));
    // ...the unsafe one never does, not as notify_master nor as the tracker.
    assert!(!ran.exists(), "the unsafe script ran: {}", read(&ran));
    let log = lab.log("xlb");
    for what in ["notify_master of vrrp_instance VI_1", "vrrp_script chk"] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{what} not run")))
            .unwrap_or_else(|| panic!("no refusal of {what} in the log:\n{log}"));
        assert!(line.contains(&unsafe_dir), "{line}");
    }
    // Logged once each, though the tracker is due every second.
    assert_eq!(log.matches("vrrp_script chk not run").count(), 1, "{log}");
    // Disabled as keepalived disables it: left out of the instance, so its weight (-10)
    // does not count against the priority.
    assert!(
        log.contains("Disabling track script chk due to insecure"),
        "{log}"
    );
    let status = integration_tests::netns::xlb_status_json(&lab.pins.0.join("dir1"));
    assert_eq!(status["vrrp"][0]["priority"], 100, "{status}");
    assert!(!log.contains("SECURITY VIOLATION"), "{log}");
    drop(lab);
    drop(user);
}

#[test]
fn root_scripts_without_script_security_get_keepalived_s_warning_once() {
    let mut lab: Lab = ha_lab("scrc", 0);
    let out = mkdir(&lab.tmp.join("out"), 0o755);
    let text = vrrp_config(
        "script_user = \"root\"",
        "VI_1",
        &format!(
            "notify_master = \"/bin/sh -c 'id -u > {}'\"",
            out.join("master").display()
        ),
    );
    let config = lab.tmp.join("xlb.toml");
    std::fs::write(&config, text).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &config);
    wait_vip(&lab, "dir1", true, Duration::from_secs(10));
    assert_eq!(wait_lines(&out.join("master"), 1).trim(), "0");
    let log = lab.log("xlb");
    assert_eq!(
        log.matches(
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
        )
        .count(),
        1,
        "{log}"
    );
}

//! Every command of the config (`vrrp_script`, notify commands, `misc_path`, FIFO
//! readers) is split into words as `xlb run` will split it ([`crate::process::words`]):
//! a line that cannot be split is refused, and so is shell syntax written outside
//! quotes (`|`, `;`, `&`, `<`, `>`, a backquote, `$NAME`, `$(`): no shell runs the
//! command, so such a word would reach the program as a plain argument, which is
//! never what the writer meant. A shell is asked for by naming it:
//! `/bin/sh -c '...'`.

use super::super::Config;
use super::super::locate::KeyPath;
use super::{Invalid, invalid};
use crate::process::words;

/// Checks every command line of `cfg`.
pub(super) fn validate_commands(cfg: &Config) -> Result<(), Invalid> {
    for (path, line) in command_lines(cfg) {
        check_line(line).map_err(|m| invalid(path, m))?;
    }
    Ok(())
}

/// Why `line` is refused.
fn check_line(line: &str) -> Result<(), String> {
    let split = words::split(line).map_err(|e| format!("cannot split the command: {e}"))?;
    match split.shell_syntax {
        Some(op) => Err(format!(
            "`{op}` outside quotes: commands run without a shell (as in keepalived 2), so \
             it would be a plain argument; write /bin/sh -c '...' to use a shell, or quote \
             it to pass it as is"
        )),
        None => Ok(()),
    }
}

/// (key path, command line) of every command of `cfg`.
fn command_lines<'a>(cfg: &'a Config) -> Vec<(KeyPath, &'a str)> {
    let root = KeyPath::root();
    let mut out = Vec::new();
    let mut push = |path: KeyPath, line: Option<&'a String>| {
        if let Some(l) = line {
            out.push((path, l.as_str()));
        }
    };
    let g = &cfg.global_defs;
    let global = root.key("global_defs");
    push(
        global.key("notify_fifo_script"),
        g.notify_fifo_script.as_ref(),
    );
    push(
        global.key("vrrp_notify_fifo_script"),
        g.vrrp_notify_fifo_script.as_ref(),
    );
    push(
        global.key("lvs_notify_fifo_script"),
        g.lvs_notify_fifo_script.as_ref(),
    );
    for (name, s) in &cfg.vrrp_script {
        push(
            root.key("vrrp_script").key(name).key("script"),
            Some(&s.script),
        );
    }
    for (i, vi) in cfg.vrrp_instance.iter().enumerate() {
        let p = root.key("vrrp_instance").index(i);
        push(p.key("notify_master"), vi.notify_master.as_ref());
        push(p.key("notify_backup"), vi.notify_backup.as_ref());
        push(p.key("notify_fault"), vi.notify_fault.as_ref());
        push(p.key("notify_stop"), vi.notify_stop.as_ref());
        push(p.key("notify"), vi.notify.as_ref());
    }
    for (i, g) in cfg.vrrp_sync_group.iter().enumerate() {
        let p = root.key("vrrp_sync_group").index(i);
        push(p.key("notify_master"), g.notify_master.as_ref());
        push(p.key("notify_backup"), g.notify_backup.as_ref());
        push(p.key("notify_fault"), g.notify_fault.as_ref());
        push(p.key("notify_stop"), g.notify_stop.as_ref());
        push(p.key("notify"), g.notify.as_ref());
    }
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        let p = root.key("virtual_server").index(i);
        push(p.key("quorum_up"), vs.quorum_up.as_ref());
        push(p.key("quorum_down"), vs.quorum_down.as_ref());
        for (j, rs) in vs.real_server.iter().enumerate() {
            let q = p.key("real_server").index(j);
            push(q.key("notify_up"), rs.notify_up.as_ref());
            push(q.key("notify_down"), rs.notify_down.as_ref());
            push(
                q.key("misc_check").key("misc_path"),
                rs.misc_check.as_ref().map(|m| &m.misc_path),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_shell_syntax_outside_quotes_or_unsplittable_are_refused() {
        assert_eq!(check_line("/etc/xlb/notify.sh master"), Ok(()));
        assert_eq!(check_line("/bin/sh -c 'echo a | tee b; id > $F'"), Ok(()));
        let e = check_line("/bin/echo up >> /var/log/x").unwrap_err();
        assert!(e.starts_with("`>` outside quotes"), "{e}");
        assert!(e.contains("write /bin/sh -c '...' to use a shell"), "{e}");
        assert_eq!(
            check_line("/bin/echo 'oops"),
            Err("cannot split the command: missing terminating '".to_owned())
        );
    }
}

#[cfg(test)]
mod located {
    use super::super::super::Config;

    #[test]
    fn xlb_check_names_the_key_of_a_command_with_shell_syntax() {
        let e = Config::parse(
            "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 1\n\
             priority = 100\nvirtual_ipaddress = [\"198.18.1.100\"]\n\
             notify_master = \"/bin/echo MASTER >> /tmp/x\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("t.toml:7:17: vrrp_instance[0].notify_master: `>` outside quotes"),
            "{e}"
        );
    }
}

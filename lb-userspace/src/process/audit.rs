//! Every command a config would run, prepared on this host as it would be run
//! ([`Policy::prepare`]): what `xlb check` reports, and what `xlb run` logs at start and
//! on reload (refusals, PATH searches, and keepalived's "SECURITY VIOLATION" warning when
//! commands run as root without `enable_script_security`).

use std::collections::BTreeSet;

use tracing::{info, warn};

use super::{Policy, Refused, Script, log_refusal};
use crate::config::Config;

/// One command of the config and what became of it.
#[derive(Debug)]
pub struct Finding {
    /// What it is, as the log says it: `notify_master of vrrp_instance VI_1`.
    pub what: String,
    pub line: String,
    pub outcome: Result<Script, Refused>,
}

/// The commands of one config.
#[derive(Debug)]
pub struct Audit {
    pub findings: Vec<Finding>,
    security: bool,
}

/// What `xlb check` prints.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub warnings: Vec<String>,
    /// Commands `enable_script_security` refuses.
    pub errors: Vec<String>,
}

impl Audit {
    pub fn of(cfg: &Config) -> Self {
        let policy = Policy::of(&cfg.global_defs);
        let findings = commands(cfg)
            .into_iter()
            .map(|(what, line, user)| Finding {
                outcome: policy.prepare(&line, user.as_deref(), &[]),
                what,
                line,
            })
            .collect();
        Self {
            findings,
            security: policy.security,
        }
    }

    /// The commands that run as root, by what and line.
    fn as_root(&self) -> BTreeSet<(&str, &str)> {
        self.findings
            .iter()
            .filter(|f| f.outcome.as_ref().is_ok_and(|s| s.as_root))
            .map(|f| (f.what.as_str(), f.line.as_str()))
            .collect()
    }

    /// keepalived's warning, when commands run as root without script security.
    pub fn violation(&self) -> Option<String> {
        if self.security || self.as_root().is_empty() {
            return None;
        }
        let insecure = self
            .findings
            .iter()
            .any(|f| f.outcome.as_ref().is_ok_and(|s| s.insecure.is_some()));
        Some(format!(
            "SECURITY VIOLATION - scripts are being executed but script_security not \
             enabled.{}",
            if insecure {
                " There are insecure scripts."
            } else {
                ""
            }
        ))
    }

    /// Logs what the daemon should say about this config: each refusal, each PATH
    /// search, each insecure root command, and the violation warning, at start
    /// (`previous` None) or after a reload that adds a command run as root.
    pub fn log(&self, previous: Option<&Audit>) {
        for f in &self.findings {
            match &f.outcome {
                Err(refused) => log_refusal(&f.what, &f.line, refused),
                Ok(s) => {
                    if s.searched {
                        info!(
                            "WARNING - script `{}` ({}) resolved by path search to `{}`. \
                             Please specify full path.",
                            f.line, f.what, s.argv[0]
                        );
                    }
                    if let Some(i) = &s.insecure {
                        warn!(command = %f.line, "{}: {i}", f.what);
                    }
                }
            }
        }
        if let Some(v) = self.violation_since(previous) {
            warn!("{v}");
        }
    }

    /// [`Audit::violation`] at start (`previous` None), or after a reload from
    /// `previous` only when the reload adds a command run as root: said once, not at
    /// every SIGHUP.
    fn violation_since(&self, previous: Option<&Audit>) -> Option<String> {
        match previous {
            Some(p) if self.as_root().is_subset(&p.as_root()) => None,
            _ => self.violation(),
        }
    }

    /// `xlb check`'s view: every finding a line; refusals by script security are
    /// errors (the operator asked for them: the command would never run).
    pub fn check_report(&self) -> CheckReport {
        let mut r = CheckReport::default();
        for f in &self.findings {
            match &f.outcome {
                Err(refused @ Refused::Insecure(_)) => r
                    .errors
                    .push(format!("{} ({:?}): {refused}", f.what, f.line)),
                Err(refused) => r
                    .warnings
                    .push(format!("{} ({:?}) will not run: {refused}", f.what, f.line)),
                Ok(s) => {
                    if let Some(i) = &s.insecure {
                        r.warnings.push(format!("{} ({:?}): {i}", f.what, f.line));
                    }
                }
            }
        }
        r.warnings.extend(self.violation());
        r
    }
}

/// (what, command line, the block's own user) of every command `cfg` may run.
fn commands(cfg: &Config) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    let mut push = |what: String, line: &Option<String>, user: Option<&String>| {
        if let Some(line) = line {
            out.push((what, line.clone(), user.cloned()));
        }
    };
    let g = &cfg.global_defs;
    for (fifo, key, script) in [
        (&g.notify_fifo, "notify_fifo_script", &g.notify_fifo_script),
        (
            &g.vrrp_notify_fifo,
            "vrrp_notify_fifo_script",
            &g.vrrp_notify_fifo_script,
        ),
        (
            &g.lvs_notify_fifo,
            "lvs_notify_fifo_script",
            &g.lvs_notify_fifo_script,
        ),
    ] {
        if fifo.is_some() {
            push(key.to_owned(), script, None);
        }
    }
    let tracked: BTreeSet<String> = cfg
        .vrrp_instance
        .iter()
        .flat_map(|i| cfg.tracked_scripts(i))
        .map(|e| e.name)
        .collect();
    for (name, s) in cfg.vrrp_script.iter().filter(|(n, _)| tracked.contains(*n)) {
        push(
            format!("vrrp_script {name}"),
            &Some(s.script.clone()),
            s.user.as_ref(),
        );
    }
    for i in &cfg.vrrp_instance {
        for (key, line, user) in [
            ("notify_master", &i.notify_master, &i.notify_master_user),
            ("notify_backup", &i.notify_backup, &i.notify_backup_user),
            ("notify_fault", &i.notify_fault, &i.notify_fault_user),
            ("notify_stop", &i.notify_stop, &i.notify_stop_user),
            ("notify", &i.notify, &i.notify_user),
        ] {
            push(
                format!("{key} of vrrp_instance {}", i.name),
                line,
                user.as_ref(),
            );
        }
    }
    for g in &cfg.vrrp_sync_group {
        for (key, line, user) in [
            ("notify_master", &g.notify_master, &g.notify_master_user),
            ("notify_backup", &g.notify_backup, &g.notify_backup_user),
            ("notify_fault", &g.notify_fault, &g.notify_fault_user),
            ("notify_stop", &g.notify_stop, &g.notify_stop_user),
            ("notify", &g.notify, &g.notify_user),
        ] {
            push(
                format!("{key} of vrrp_sync_group {}", g.name),
                line,
                user.as_ref(),
            );
        }
    }
    for vs in &cfg.virtual_server {
        let name = vs.service_name();
        push(format!("quorum_up of {name}"), &vs.quorum_up, None);
        push(format!("quorum_down of {name}"), &vs.quorum_down, None);
        for r in &vs.real_server {
            let rs = format!("real_server {} of {name}", r.ip);
            push(format!("notify_up of {rs}"), &r.notify_up, None);
            push(format!("notify_down of {rs}"), &r.notify_down, None);
            if let Some(m) = &r.misc_check {
                push(
                    format!("misc_check of {rs}"),
                    &Some(m.misc_path.clone()),
                    m.user.as_ref(),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_commands_without_security_are_a_violation_once_per_addition() {
        let cfg = |extra: &str| {
            Config::parse(
                &format!(
                    "[global_defs]\nscript_user = \"root\"\n\
                     [[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
                     virtual_router_id = 1\npriority = 100\n\
                     virtual_ipaddress = [\"198.18.1.100\"]\n{extra}"
                ),
                "t.toml",
            )
            .unwrap()
        };
        let none = Audit::of(&cfg(""));
        assert_eq!(none.violation(), None);
        let one = Audit::of(&cfg("notify_master = \"/bin/true\""));
        assert_eq!(
            one.violation().as_deref(),
            Some(
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
            )
        );
        assert_eq!(one.check_report().warnings.len(), 1);
        // At start it is said; a reload keeping the same root commands says nothing,
        // one adding a root command says it again.
        assert!(one.violation_since(None).is_some());
        assert_eq!(one.violation_since(Some(&one)), None);
        assert_eq!(none.violation_since(Some(&one)), None);
        let two = Audit::of(&cfg(
            "notify_master = \"/bin/true\"\nnotify_backup = \"/bin/true x\"",
        ));
        assert!(two.violation_since(Some(&one)).is_some());
        let missing = Audit::of(&cfg("notify_master = \"/no/such/xlb\""));
        assert_eq!(
            missing.check_report().warnings,
            [
                "notify_master of vrrp_instance VI_1 (\"/no/such/xlb\") will not run: Script \
                 /no/such/xlb cannot be accessed - No such file or directory - disabling"
            ]
        );
    }
}

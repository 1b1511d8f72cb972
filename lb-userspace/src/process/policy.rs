//! From a command line to what is executed, with keepalived's rules: who runs it
//! (the block's `user`, else `global_defs.script_user`, else `keepalived_script` if that
//! user exists, else root), which program (an absolute path, or a PATH search as that
//! user would see it), and whether it may run (`enable_script_security`).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use super::{
    RunAs,
    security::{self, Insecure},
    user,
    words::{self, SplitError},
};
use crate::config::GlobalDefs;

/// keepalived's default script user, taken when it exists and nothing else is said.
const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// The search path when xlb has no `PATH` (glibc's `_CS_PATH`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The settings of `global_defs` that apply to every command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `script_user`.
    pub script_user: Option<String>,
    /// `enable_script_security`.
    pub security: bool,
}

/// A command ready to execute: never through a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// What is executed: the program's path, then its arguments (each one word).
    pub argv: Vec<String>,
    pub run_as: RunAs,
    /// It runs with root's rights (uid or gid 0, or a set-uid/gid root program).
    pub as_root: bool,
    /// Without `enable_script_security`: why it would have been refused with it.
    pub insecure: Option<Insecure>,
    /// The program was a bare name, found by PATH search (keepalived warns).
    pub searched: bool,
}

/// Why a command does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Split(SplitError),
    /// The user or group cannot be resolved.
    User(String),
    NotFound {
        program: String,
    },
    NotExecutable {
        program: PathBuf,
        uid: u32,
        gid: u32,
    },
    /// `enable_script_security` and a program a user other than root could change.
    Insecure(Insecure),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Split(e) => write!(f, "Unable to parse script: {e}"),
            Self::User(e) => f.write_str(e),
            Self::NotFound { program } if program.contains('/') => write!(
                f,
                "Script {program} cannot be accessed - No such file or directory - disabling"
            ),
            Self::NotFound { program } => {
                write!(f, "Cannot find script {program} in path - disabling")
            }
            Self::NotExecutable { program, uid, gid } => write!(
                f,
                "WARNING - script '{}' is not executable for uid:gid {uid}:{gid} - disabling.",
                program.display()
            ),
            Self::Insecure(i) => write!(f, "{i} - disabling"),
        }
    }
}

impl std::error::Error for Refused {}

impl Policy {
    pub fn of(g: &GlobalDefs) -> Self {
        Self {
            script_user: g.script_user.clone(),
            security: g.enable_script_security,
        }
    }

    /// Who runs a command whose block says `user` (keepalived's `user [group]`).
    pub fn run_as(&self, user: Option<&str>) -> Result<RunAs, Refused> {
        let resolved = match user.or(self.script_user.as_deref()) {
            Some(u) => RunAs::of(Some(u)),
            None if user::user_exists(DEFAULT_SCRIPT_USER) => RunAs::of(Some(DEFAULT_SCRIPT_USER)),
            // keepalived: with script security, root is never taken by default.
            None if self.security => {
                return Err(Refused::User(format!(
                    "Unable to set default user {DEFAULT_SCRIPT_USER} for script \
                     (enable_script_security needs global_defs.script_user, or that user)"
                )));
            }
            None => RunAs::Current,
        };
        match resolved {
            RunAs::Invalid(reason) => Err(Refused::User(reason)),
            ok => Ok(ok),
        }
    }

    /// `line` split into words, `extra` appended (each one argument), run as `user`
    /// (see [`Policy::run_as`]), its program resolved and checked on this host.
    pub fn prepare(
        &self,
        line: &str,
        user: Option<&str>,
        extra: &[&str],
    ) -> Result<Script, Refused> {
        let mut argv = words::split_command(line).map_err(Refused::Split)?;
        let run_as = self.run_as(user)?;
        let (uid, gid) = run_as.ids().unwrap_or((0, 0));
        let searched = !argv[0].contains('/');
        let program = if searched {
            search_path(&argv[0], uid, gid).ok_or_else(|| Refused::NotFound {
                program: argv[0].clone(),
            })?
        } else {
            PathBuf::from(&argv[0])
        };
        if !program.exists() {
            return Err(Refused::NotFound {
                program: argv[0].clone(),
            });
        }
        if !security::executable_by(&program, uid, gid) {
            return Err(Refused::NotExecutable { program, uid, gid });
        }
        let as_root = uid == 0 || gid == 0 || security::runs_as_root_anyway(&program);
        let absolute = std::path::absolute(&program).unwrap_or_else(|_| program.clone());
        let insecure = match as_root {
            true => security::check_host_path(&absolute).err(),
            false => None,
        };
        if let (true, Some(i)) = (self.security, &insecure) {
            return Err(Refused::Insecure(i.clone()));
        }
        argv[0] = program.display().to_string();
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        Ok(Script {
            argv,
            run_as,
            as_root,
            insecure,
            searched,
        })
    }
}

/// The first regular file named `name` in `PATH` that `uid`:`gid` may execute.
fn search_path(name: &str, uid: u32, gid: u32) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned());
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| security::executable_by(p, uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_words_with_the_appended_arguments_kept_whole() {
        let p = Policy::default();
        let s = p
            .prepare(
                "/bin/echo 'a b' c",
                Some("root"),
                &["x;touch /tmp/p", "$(id)"],
            )
            .unwrap();
        assert_eq!(s.argv, ["/bin/echo", "a b", "c", "x;touch /tmp/p", "$(id)"]);
        assert!(s.as_root && !s.searched);
        // A bare name is searched for in PATH.
        let s = p.prepare("sh -c true", Some("root"), &[]).unwrap();
        assert!(s.searched && s.argv[0].ends_with("/sh"), "{:?}", s.argv);
        assert_eq!(
            p.prepare("no-such-xlb-program", None, &[]),
            Err(Refused::NotFound {
                program: "no-such-xlb-program".into()
            })
        );
        let plain = std::env::temp_dir().join(format!("xlb-plain-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        assert!(matches!(
            p.prepare(&plain.display().to_string(), Some("root"), &[]),
            Err(Refused::NotExecutable { .. })
        ));
        std::fs::remove_file(&plain).unwrap();
        assert!(matches!(
            p.prepare("/bin/true", Some("no-such-user-xlb"), &[]),
            Err(Refused::User(_))
        ));
        assert!(matches!(p.prepare("'", None, &[]), Err(Refused::Split(_))));
    }

    #[test]
    fn script_security_refuses_what_others_could_change() {
        let dir = std::env::temp_dir().join(format!("xlb-policy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let line = script.display().to_string();
        let secure = Policy {
            script_user: Some("root".into()),
            security: true,
        };
        assert_eq!(
            secure.prepare(&line, None, &[]),
            Err(Refused::Insecure(Insecure::Writable { path: dir.clone() }))
        );
        // Without it, the command runs and is marked.
        let lax = Policy {
            security: false,
            ..secure.clone()
        };
        let s = lax.prepare(&line, None, &[]).unwrap();
        assert_eq!(s.insecure, Some(Insecure::Writable { path: dir.clone() }));
        // A safe program is taken either way.
        assert_eq!(
            secure.prepare("/bin/true", None, &[]).unwrap().insecure,
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

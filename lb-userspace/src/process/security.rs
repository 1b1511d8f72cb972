//! keepalived's script security: whether a program that runs as root could have been
//! changed by a user other than root (`check_security` in keepalived's `notify.c`).
//!
//! Every entry on the way to the program is looked at without following it (lstat):
//! the program and each directory above it must be root's; a directory (unless it has
//! the sticky bit, as `/tmp`) and the program must not be writable by others, nor by a
//! group other than root's. A symbolic link on the way must be root's too; then the
//! path it resolves to is walked with the same rules, since that is what runs (keepalived
//! walks both with `use_symlinks`; xlb always does, and takes a symlinked directory such
//! as `/bin -> usr/bin` on merged-/usr systems when it is root's).

use std::{
    fmt, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// What is needed of one entry on the way to a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl Entry {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
        }
    }

    fn is_dir(self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    fn is_file(self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    fn is_symlink(self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
}

/// Why a program that would run as root is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insecure {
    /// `path` (the program or a directory on the way) could be changed by a user other
    /// than root.
    Writable { path: PathBuf },
    /// `path` is on the way to the program but is not a directory, or the program is
    /// not a regular file.
    WrongType { path: PathBuf },
    /// `path` cannot be looked at.
    Unreadable { path: PathBuf, error: String },
}

impl fmt::Display for Insecure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Writable { path } => write!(
                f,
                "Unsafe permissions found for script path '{}' (a user other than root \
                 can change it)",
                path.display()
            ),
            Self::WrongType { path } => {
                write!(
                    f,
                    "Wrong file type found in script path '{}'",
                    path.display()
                )
            }
            Self::Unreadable { path, error } => write!(
                f,
                "check_script_secure could not find script '{}': {error}",
                path.display()
            ),
        }
    }
}

/// keepalived's rule for one entry: true when a user other than root could change it.
/// `last`: the program itself (else a directory on the way).
fn writable_by_others(e: Entry, last: bool) -> bool {
    if e.uid != 0 {
        return true;
    }
    let sticky_dir = e.is_dir() && e.mode & libc::S_ISVTX != 0;
    let checked = (e.is_dir() && !sticky_dir) || (last && e.is_file());
    let group_writes = e.gid != 0 && e.mode & libc::S_IWGRP != 0;
    let others_write = e.mode & libc::S_IWOTH != 0;
    checked && (group_writes || others_write)
}

/// Checks `program` (an absolute path) and the way to it, then the path its symbolic
/// links lead to. `lstat` looks an entry up without following it.
fn check_path(
    program: &Path,
    lstat: &dyn Fn(&Path) -> io::Result<Entry>,
    canonical: &dyn Fn(&Path) -> io::Result<PathBuf>,
) -> Result<(), Insecure> {
    let mut saw_link = false;
    walk(program, lstat, &mut saw_link)?;
    if saw_link {
        let real = canonical(program).map_err(|e| Insecure::Unreadable {
            path: program.to_owned(),
            error: e.to_string(),
        })?;
        walk(&real, lstat, &mut false)?;
    }
    Ok(())
}

fn walk(
    program: &Path,
    lstat: &dyn Fn(&Path) -> io::Result<Entry>,
    saw_link: &mut bool,
) -> Result<(), Insecure> {
    let ancestors: Vec<&Path> = program.ancestors().collect();
    // From `/` down to the program.
    for (i, path) in ancestors.iter().rev().enumerate() {
        let last = i + 1 == ancestors.len();
        let e = lstat(path).map_err(|e| Insecure::Unreadable {
            path: path.to_path_buf(),
            error: e.to_string(),
        })?;
        if !e.is_symlink() && !(if last { e.is_file() } else { e.is_dir() }) {
            return Err(Insecure::WrongType {
                path: path.to_path_buf(),
            });
        }
        if writable_by_others(e, last) {
            return Err(Insecure::Writable {
                path: path.to_path_buf(),
            });
        }
        if e.is_symlink() {
            // What lies beyond is walked on the resolved path.
            *saw_link = true;
            break;
        }
    }
    Ok(())
}

/// [`check_path`] on this host's file system.
pub(super) fn check_host_path(program: &Path) -> Result<(), Insecure> {
    check_path(
        program,
        &|p| std::fs::symlink_metadata(p).map(|m| Entry::of(&m)),
        &|p| std::fs::canonicalize(p),
    )
}

/// Whether the file at `path` is one that `uid`:`gid` may execute: a regular file with
/// an execute bit for them (root: any execute bit), after following links.
pub(super) fn executable_by(path: &Path, uid: u32, gid: u32) -> bool {
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let mode = m.mode();
    if !m.is_file() {
        return false;
    }
    if uid == 0 {
        return mode & 0o111 != 0;
    }
    if m.uid() == uid {
        mode & 0o100 != 0
    } else if m.gid() == gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Whether running the file at `path` gives root anyway (set-uid root or set-gid root).
pub(super) fn runs_as_root_anyway(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| {
        let mode = m.mode();
        (m.uid() == 0 && mode & libc::S_ISUID != 0 && mode & 0o100 != 0)
            || (m.gid() == 0 && mode & libc::S_ISGID != 0 && mode & 0o010 != 0)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const DIR: u32 = libc::S_IFDIR;
    const FILE: u32 = libc::S_IFREG;
    const LINK: u32 = libc::S_IFLNK;

    fn e(uid: u32, gid: u32, mode: u32) -> Entry {
        Entry { uid, gid, mode }
    }

    #[test]
    fn keepalived_s_rule_per_entry() {
        // root's, not writable by others: safe.
        assert!(!writable_by_others(e(0, 0, DIR | 0o755), false));
        assert!(!writable_by_others(e(0, 0, FILE | 0o755), true));
        // Root's group may write; another group may not.
        assert!(!writable_by_others(e(0, 0, DIR | 0o775), false));
        assert!(writable_by_others(e(0, 1000, DIR | 0o775), false));
        assert!(writable_by_others(e(0, 1000, FILE | 0o775), true));
        // World-writable: refused, unless a sticky directory (as /tmp).
        assert!(writable_by_others(e(0, 0, DIR | 0o777), false));
        assert!(!writable_by_others(e(0, 0, DIR | 0o1777), false));
        assert!(writable_by_others(e(0, 0, FILE | 0o757), true));
        // Owned by another user: refused whatever the mode.
        assert!(writable_by_others(e(1000, 0, FILE | 0o500), true));
        assert!(writable_by_others(e(1000, 0, DIR | 0o1755), false));
        // A root's symbolic link's own mode means nothing.
        assert!(!writable_by_others(e(0, 0, LINK | 0o777), true));
        assert!(writable_by_others(e(1000, 1000, LINK | 0o777), false));
    }

    /// A file system of (path -> entry), and symbolic links (path -> target).
    struct Fs {
        entries: HashMap<PathBuf, Entry>,
        links: HashMap<PathBuf, PathBuf>,
    }

    impl Fs {
        fn new(entries: &[(&str, Entry)], links: &[(&str, &str)]) -> Self {
            Self {
                entries: entries.iter().map(|(p, e)| (p.into(), *e)).collect(),
                links: links.iter().map(|(a, b)| (a.into(), b.into())).collect(),
            }
        }

        fn check(&self, program: &str) -> Result<(), Insecure> {
            let lstat = |p: &Path| {
                self.entries
                    .get(p)
                    .copied()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
            };
            let canonical = |p: &Path| {
                let mut out = PathBuf::from("/");
                for c in p.components().skip(1) {
                    out.push(c);
                    if let Some(t) = self.links.get(&out) {
                        out = t.clone();
                    }
                }
                Ok(out)
            };
            check_path(Path::new(program), &lstat, &canonical)
        }
    }

    #[test]
    fn the_whole_way_to_the_program_is_checked() {
        let root_dir = e(0, 0, DIR | 0o755);
        let fs = Fs::new(
            &[
                ("/", root_dir),
                ("/etc", root_dir),
                ("/etc/xlb", root_dir),
                ("/etc/xlb/ok.sh", e(0, 0, FILE | 0o755)),
                ("/etc/xlb/theirs.sh", e(1000, 1000, FILE | 0o755)),
                ("/home", root_dir),
                ("/home/u", e(1000, 1000, DIR | 0o755)),
                ("/home/u/s.sh", e(0, 0, FILE | 0o755)),
                ("/srv", e(0, 1000, DIR | 0o775)),
                ("/srv/s.sh", e(0, 0, FILE | 0o755)),
                ("/tmp", e(0, 0, DIR | 0o1777)),
                ("/tmp/s.sh", e(0, 0, FILE | 0o755)),
                ("/tmp/w.sh", e(0, 0, FILE | 0o777)),
                ("/bin", e(0, 0, LINK | 0o777)),
                ("/usr", root_dir),
                ("/usr/bin", root_dir),
                ("/usr/bin/sh", e(0, 0, FILE | 0o755)),
                ("/opt", root_dir),
                ("/opt/l.sh", e(1000, 1000, LINK | 0o777)),
                ("/opt/r.sh", e(0, 0, LINK | 0o777)),
                ("/opt/evil", e(0, 0, DIR | 0o777)),
                ("/opt/evil/x.sh", e(0, 0, FILE | 0o755)),
                ("/etc/dir.sh", root_dir),
            ],
            &[
                ("/bin", "/usr/bin"),
                ("/opt/l.sh", "/etc/xlb/ok.sh"),
                ("/opt/r.sh", "/opt/evil/x.sh"),
            ],
        );
        assert_eq!(fs.check("/etc/xlb/ok.sh"), Ok(()));
        let writable = |p: &str| {
            Err(Insecure::Writable {
                path: PathBuf::from(p),
            })
        };
        assert_eq!(
            fs.check("/etc/xlb/theirs.sh"),
            writable("/etc/xlb/theirs.sh")
        );
        assert_eq!(fs.check("/home/u/s.sh"), writable("/home/u"));
        assert_eq!(fs.check("/srv/s.sh"), writable("/srv"));
        // /tmp is sticky: a root file there is safe, a world-writable one is not.
        assert_eq!(fs.check("/tmp/s.sh"), Ok(()));
        assert_eq!(fs.check("/tmp/w.sh"), writable("/tmp/w.sh"));
        // Merged /usr: /bin is root's link to /usr/bin, which is walked too.
        assert_eq!(fs.check("/bin/sh"), Ok(()));
        // A link someone else owns could be re-pointed; a root's link to an unsafe
        // place leads there.
        assert_eq!(fs.check("/opt/l.sh"), writable("/opt/l.sh"));
        assert_eq!(fs.check("/opt/r.sh"), writable("/opt/evil"));
        assert_eq!(
            fs.check("/etc/dir.sh"),
            Err(Insecure::WrongType {
                path: "/etc/dir.sh".into()
            })
        );
        assert!(matches!(
            fs.check("/etc/xlb/missing.sh"),
            Err(Insecure::Unreadable { .. })
        ));
    }
}

//! Who a command runs as: keepalived's `user [group]` (a checker's `user`, else
//! `global_defs.script_user`), resolved once from the user database.

use std::ffi::CString;

/// Who a command runs as.
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
    /// run fails with this reason.
    Invalid(String),
}

impl RunAs {
    /// `user`: keepalived's `user [group]`, looked up in the user database; none is
    /// whoever runs xlb.
    pub fn of(user: Option<&str>) -> Self {
        match user {
            None => Self::Current,
            Some(u) => resolve_user(u).unwrap_or_else(Self::Invalid),
        }
    }

    /// The user and group ids the command gets (None: invalid).
    pub fn ids(&self) -> Option<(u32, u32)> {
        match *self {
            // SAFETY: geteuid/getegid cannot fail.
            Self::Current => Some(unsafe { (libc::geteuid(), libc::getegid()) }),
            Self::User { uid, gid, .. } => Some((uid, gid)),
            Self::Invalid(_) => None,
        }
    }
}

/// Whether the user `name` exists.
pub fn user_exists(name: &str) -> bool {
    matches!(lookup_user(name), Ok(Some(_)))
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
    lookup("user", name, libc::getpwnam_r, |pwd| {
        (pwd.pw_uid, pwd.pw_gid)
    })
}

fn lookup_group(name: &str) -> Result<Option<u32>, String> {
    lookup("group", name, libc::getgrnam_r, |grp| grp.gr_gid)
}

/// The signature of `getpwnam_r` and `getgrnam_r`.
type GetEntry<T> = unsafe extern "C" fn(
    *const libc::c_char,
    *mut T,
    *mut libc::c_char,
    libc::size_t,
    *mut *mut T,
) -> libc::c_int;

/// Looks `name` up with `get` (a buffer that grows while it is too small) and reads
/// what is needed from the entry before its buffer goes. `T` is a plain C struct,
/// valid when zeroed.
fn lookup<T, R>(
    kind: &str,
    name: &str,
    get: GetEntry<T>,
    read: impl Fn(&T) -> R,
) -> Result<Option<R>, String> {
    let c = CString::new(name).map_err(|_| format!("bad {kind} name {name:?}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `T` is `passwd` or `group`, plain C structs for which zero is a
        // valid value; all pointers are valid for the call; `entry` is filled by `get`
        // and only read when `result` is non-null, while `buf` still lives.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut result: *mut T = std::ptr::null_mut();
        let rc = unsafe {
            get(
                c.as_ptr(),
                &mut entry,
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
                "looking up {kind} {name:?}: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        return Ok((!result.is_null()).then(|| read(&entry)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

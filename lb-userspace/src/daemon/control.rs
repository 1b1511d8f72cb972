//! The control socket: a Unix stream socket, root's only, that `xlb reload`, `xlb status`,
//! `xlb weight|drain|enable|disable` and `xlb log` talk to (protocol: `crate::control`).
//!
//! - Path: `/run/xlb/xlb.sock` for the default pin path, `/run/xlb/<pin path>.sock` for
//!   another ([`default_socket`]), or `xlb run --socket`. Bound under umask 077 and
//!   chmod'ed 0600 before `listen`, so no other user can connect even for a moment.
//!   A socket file where a live daemon answers is refused (start-up fails, naming it); a
//!   stale one (nobody answers) is replaced. The file is removed on exit, if it is still
//!   ours.
//! - Every connection is a task of its own: the loop is never blocked by a client. The
//!   peer's credentials (`SO_PEERCRED`) are checked first: only uid 0 and the daemon's own
//!   uid are served; others get an error reply and a log line. A request line is read with
//!   a cap ([`MAX_REQUEST`]) and a time limit; garbage gets an error reply (the connection
//!   goes on), an oversized line an error reply and the end of the connection.
//! - A request becomes [`Event::Control`] with a oneshot for the reply: the daemon's loop
//!   handles it between its other events (`commands`), and the connection task writes the
//!   reply. A connection may carry several requests, one after the other.

use std::{
    io,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{Semaphore, mpsc, oneshot},
    task::JoinHandle,
};
use tracing::{debug, warn};

use super::event::Event;
use crate::{
    control::{MAX_REQUEST, Peer, Reply, ReplyLine, Request, RequestError, parse_request},
    dataplane::DEFAULT_PIN_PATH,
};

/// How long a client may take to send a request line (and between requests).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply may take to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are answered "busy" and closed.
const MAX_CONNECTIONS: usize = 32;

/// A request from a peer, as the loop gets it.
#[derive(Debug)]
pub struct Call {
    pub peer: Peer,
    pub request: Request,
}

/// The control socket of the daemon whose maps are pinned at `pin_path`.
pub fn default_socket(pin_path: &Path) -> PathBuf {
    if pin_path == Path::new(DEFAULT_PIN_PATH) {
        PathBuf::from("/run/xlb/xlb.sock")
    } else {
        super::state_file::run_file(pin_path, "sock")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {}: a daemon already answers there (another xlb run; give this one --socket)", .0.display())]
    InUse(PathBuf),
    #[error("control socket {}: {err}", .path.display())]
    Io { path: PathBuf, err: io::Error },
}

/// The listening socket; dropping it stops accepting and removes the file if it is still
/// the one this daemon bound.
pub struct ControlSocket {
    path: PathBuf,
    /// (device, inode) of the file bound, to never remove another daemon's.
    file: (u64, u64),
    accept: Option<JoinHandle<()>>,
    listener: Option<UnixListener>,
}

impl ControlSocket {
    /// Binds `path` (0600, root's), replacing a stale socket file and refusing one where a
    /// daemon answers. Nothing is accepted until [`serve`](Self::serve).
    pub async fn bind(path: &Path) -> Result<Self, ControlError> {
        let io_err = |err| ControlError::Io {
            path: path.to_path_buf(),
            err,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                use std::os::unix::fs::FileTypeExt;
                if !meta.file_type().is_socket() {
                    return Err(io_err(io::Error::other(
                        "exists and is not a socket; remove it or choose another --socket",
                    )));
                }
                if UnixStream::connect(path).await.is_ok() {
                    return Err(ControlError::InUse(path.to_path_buf()));
                }
                // Nobody answers: a socket left by a daemon that died.
                warn!(socket = %path.display(), "removing a stale control socket");
                std::fs::remove_file(path).map_err(io_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        // umask 077 while binding: the file is born 0600, never briefly world-connectable.
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0o077) };
        let bound = std::os::unix::net::UnixListener::bind(path);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let std_listener = bound.map_err(io_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        let meta = std::fs::metadata(path).map_err(io_err)?;
        std_listener.set_nonblocking(true).map_err(io_err)?;
        let listener = UnixListener::from_std(std_listener).map_err(io_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: (meta.dev(), meta.ino()),
            accept: None,
            listener: Some(listener),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts accepting: each connection's requests are posted to `events`.
    pub fn serve(&mut self, events: &mpsc::Sender<Event>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let events = events.clone();
        // SAFETY: geteuid cannot fail.
        let own_uid = unsafe { libc::geteuid() };
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        self.accept = Some(tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        warn!("control socket: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tokio::spawn(async move {
                        let mut stream = stream;
                        let _ = send(
                            &mut stream,
                            Reply::error(format!(
                                "busy: {MAX_CONNECTIONS} control connections open; try again"
                            )),
                        )
                        .await;
                    });
                    continue;
                };
                let events = events.clone();
                tokio::spawn(async move {
                    connection(stream, own_uid, &events).await;
                    drop(slot);
                });
            }
        }));
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
        }
        // Only the file this daemon bound: a newer daemon may have replaced it.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.file {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Whether a peer with `uid` is served by a daemon running as `own_uid`.
pub fn allowed(uid: u32, own_uid: u32) -> bool {
    uid == 0 || uid == own_uid
}

/// One client: its credentials checked, then request after request until it closes.
async fn connection(stream: UnixStream, own_uid: u32, events: &mpsc::Sender<Event>) {
    let peer = match stream.peer_cred() {
        Ok(c) => Peer {
            uid: c.uid(),
            pid: c.pid(),
        },
        Err(e) => {
            warn!("control socket: no peer credentials: {e}");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if !allowed(peer.uid, own_uid) {
        warn!(%peer, "control socket: refused a client that is not root");
        // Its request is read (capped, briefly) and dropped, so that the refusal is what
        // the client reads rather than a reset for unread data.
        let _ = tokio::time::timeout(Duration::from_secs(1), read_line(&mut reader)).await;
        let _ = send(
            &mut write,
            Reply::error(format!(
                "permission denied: uid {} may not use the control socket (root only)",
                peer.uid
            )),
        )
        .await;
        return;
    }
    loop {
        let line = match read_line(&mut reader).await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                // Too long, or too slow: answer once and close (the stream cannot resync).
                debug!(%peer, "control socket: {e}");
                let _ = send(&mut write, Reply::error(e.to_string())).await;
                return;
            }
        };
        let request = match parse_request(&line) {
            Ok(r) => r,
            Err(e) => {
                warn!(%peer, "control socket: {e}");
                if send(&mut write, Reply::error(e.to_string())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let (tx, rx) = oneshot::channel();
        let call = Call { peer, request };
        let reply = if events.send(Event::Control(call, tx)).await.is_err() {
            Reply::error("the daemon is stopping")
        } else {
            rx.await
                .unwrap_or_else(|_| Reply::error("the daemon is shutting down; request not served"))
        };
        if send(&mut write, reply).await.is_err() {
            return;
        }
    }
}

/// Why a request line could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("no complete request line within {} s", READ_TIMEOUT.as_secs())]
    Timeout,
    #[error("reading: {0}")]
    Io(#[from] io::Error),
}

/// The next line (without its newline), None at a clean end of stream.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    // One byte over the cap tells an oversized line from one that fits exactly.
    let mut limited = reader.take(MAX_REQUEST as u64 + 1);
    let n = tokio::time::timeout(READ_TIMEOUT, limited.read_until(b'\n', &mut line))
        .await
        .map_err(|_| ReadError::Timeout)??;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > MAX_REQUEST {
        return Err(RequestError::TooLong.into());
    }
    // A last line without newline is still a request.
    Ok(Some(line))
}

/// Writes one reply line.
async fn send<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, reply: Reply) -> io::Result<()> {
    let line = ReplyLine::new(reply).to_line();
    tokio::time::timeout(WRITE_TIMEOUT, w.write_all(line.as_bytes()))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "writing the reply"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_socket_per_pin_path_and_the_usual_name_for_the_default() {
        assert_eq!(
            default_socket(Path::new(DEFAULT_PIN_PATH)),
            Path::new("/run/xlb/xlb.sock")
        );
        assert_eq!(
            default_socket(Path::new("/sys/fs/bpf/xlb-a")),
            Path::new("/run/xlb/sys_fs_bpf_xlb-a.sock")
        );
    }

    #[test]
    fn only_root_and_the_daemon_s_own_user_are_served() {
        assert!(allowed(0, 0));
        assert!(!allowed(65534, 0));
        assert!(
            allowed(1000, 1000),
            "a daemon run by a user serves that user"
        );
        assert!(allowed(0, 1000));
        assert!(!allowed(1001, 1000));
    }

    #[tokio::test]
    async fn lines_are_capped_and_a_last_line_without_newline_counts() {
        let mut r = BufReader::new(&b"{\"a\":1}\nlast"[..]);
        assert_eq!(
            read_line(&mut r).await.unwrap(),
            Some(b"{\"a\":1}".to_vec())
        );
        assert_eq!(read_line(&mut r).await.unwrap(), Some(b"last".to_vec()));
        assert_eq!(read_line(&mut r).await.unwrap(), None);

        let exact = vec![b'x'; MAX_REQUEST];
        let mut r = BufReader::new(&exact[..]);
        assert_eq!(
            read_line(&mut r).await.unwrap().map(|l| l.len()),
            Some(MAX_REQUEST)
        );

        let long = vec![b'x'; MAX_REQUEST + 10];
        let mut r = BufReader::new(&long[..]);
        assert!(matches!(
            read_line(&mut r).await,
            Err(ReadError::Request(RequestError::TooLong))
        ));
    }

    #[tokio::test]
    async fn a_socket_is_private_refused_while_answered_and_replaced_when_stale() {
        let dir = std::env::temp_dir().join(format!("xlb-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("x.sock");
        let first = ControlSocket::bind(&path).await.expect("bind");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Bound and listening (not accepting yet): a connect succeeds, so it is live.
        assert!(matches!(
            ControlSocket::bind(&path).await,
            Err(ControlError::InUse(_))
        ));
        // A stale file: the listener is gone but the file stays (as after kill -9).
        let stale = std::os::unix::net::UnixListener::bind(dir.join("y.sock")).unwrap();
        drop(stale);
        let second = ControlSocket::bind(&dir.join("y.sock")).await;
        assert!(
            second.is_ok(),
            "a stale socket is replaced: {:?}",
            second.err()
        );
        drop(second);
        assert!(!dir.join("y.sock").exists(), "removed on drop");
        drop(first);
        assert!(!path.exists(), "removed on drop");
        // A file that is not a socket is not ours to remove.
        std::fs::write(&path, "x").unwrap();
        assert!(ControlSocket::bind(&path).await.is_err());
        assert!(path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

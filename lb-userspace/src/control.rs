//! The control socket's protocol, shared by the daemon (`daemon::control` serves it) and
//! the commands that use it (`cli::control`): one JSON [`RequestLine`] per line in, one
//! JSON [`ReplyLine`] per line out, both carrying [`VERSION`]. Pure: parsing and the
//! wire shapes only, so every rule has a unit test.
//!
//! ```text
//! > {"version":1,"command":"weight","service":"198.18.0.100:80/tcp","real":"198.18.0.21:80","weight":0}
//! < {"version":1,"result":"done","message":"TCP 198.18.0.100:80 -> 198.18.0.21:80: weight 0 (file: 1)"}
//! ```
//!
//! A virtual service is written `IP:PORT[/tcp|udp]` (IPv6 in brackets, TCP by default),
//! a real server `IP:PORT`: [`ServiceRef`] and [`RealRef`] parse and print both forms.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{config::Protocol, health::RealKey};

/// The protocol's version: a request of another version gets an error reply naming both.
pub const VERSION: u32 = 1;

/// The longest request line the daemon reads (newline included); a longer one gets an
/// error reply and the connection is closed.
pub const MAX_REQUEST: usize = 64 * 1024;

/// A virtual service as the commands name it: `198.18.0.100:80/tcp`, `[2001:db8::1]:53/udp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceRef {
    pub addr: SocketAddr,
    pub protocol: Protocol,
}

/// A real server as the commands name it: `198.18.0.21:80`, `[2001:db8::11]:80`.
pub type RealRef = SocketAddr;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("{0:?}: not IP:PORT[/tcp|udp] (IPv6 as [2001:db8::1]:80)")]
    Service(String),
    #[error("{0:?}: unknown protocol (tcp or udp)")]
    Protocol(String),
    #[error("{0:?}: not IP:PORT (IPv6 as [2001:db8::11]:80)")]
    Real(String),
}

impl FromStr for ServiceRef {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, RefError> {
        let (addr, protocol) = match s.rsplit_once('/') {
            Some((a, p)) => {
                let protocol = match p.to_ascii_lowercase().as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    _ => return Err(RefError::Protocol(p.to_string())),
                };
                (a, protocol)
            }
            None => (s, Protocol::Tcp),
        };
        let addr = addr.parse().map_err(|_| RefError::Service(s.to_string()))?;
        Ok(Self { addr, protocol })
    }
}

impl fmt::Display for ServiceRef {
    /// `198.18.0.100:80/tcp`, as [`FromStr`] takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.addr,
            self.protocol.as_str().to_ascii_lowercase()
        )
    }
}

impl ServiceRef {
    /// The real server `real` of this service, as health verdicts name it.
    pub fn real_key(&self, real: RealRef) -> RealKey {
        RealKey {
            vip: self.addr.ip(),
            vport: self.addr.port(),
            protocol: self.protocol,
            rip: real.ip(),
            rport: real.port(),
        }
    }

    /// The service of `key`.
    pub fn of(key: &RealKey) -> Self {
        Self {
            addr: SocketAddr::new(key.vip, key.vport),
            protocol: key.protocol,
        }
    }
}

/// Parses a real server, with the error the commands print.
pub fn parse_real(s: &str) -> Result<RealRef, RefError> {
    // `SocketAddr` takes `[v6]:port` and `v4:port`; a bare address is refused.
    s.parse::<SocketAddr>()
        .map_err(|_| RefError::Real(s.to_string()))
}

impl Serialize for ServiceRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServiceRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a client asks the daemon. Every request is one `Event::Control` on the daemon's
/// loop, so it is serialised with everything else the daemon does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Load the config file again and apply it (as SIGHUP), answering with the outcome.
    Reload,
    /// Load the config file and say what a reload would change; change nothing.
    Plan,
    /// The daemon's own view: PID, uptime, config, runtime edits ([`DaemonInfo`]).
    Status,
    /// Set a real server's weight until the next reload.
    Weight {
        service: ServiceRef,
        real: RealRef,
        weight: u32,
    },
    /// Weight 0 until the next reload: existing flows stay, new ones go elsewhere.
    Drain { service: ServiceRef, real: RealRef },
    /// Undo `weight`, `drain` and `disable`: the file's weight, health checks rule again.
    Enable { service: ServiceRef, real: RealRef },
    /// Out of the table until `enable` or the next reload, whatever the checks say.
    Disable { service: ServiceRef, real: RealRef },
    /// Change the log filter (`debug`, `info,xlb::vrrp=trace`, ...).
    LogLevel { filter: String },
    /// Reopen the log file (after logrotate moved it).
    LogReopen,
}

impl Request {
    /// The request's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Reload => "reload",
            Request::Plan => "reload --plan",
            Request::Status => "status",
            Request::Weight { .. } => "weight",
            Request::Drain { .. } => "drain",
            Request::Enable { .. } => "enable",
            Request::Disable { .. } => "disable",
            Request::LogLevel { .. } => "log level",
            Request::LogReopen => "log reopen",
        }
    }
}

/// A request on the wire: `{"version":1,"command":...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    pub version: u32,
    #[serde(flatten)]
    pub request: Request,
}

/// What the daemon answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    /// Done; one line that says what was done.
    Done { message: String },
    /// A runtime edit done: what it changed, and where the maps are (for `drain --wait`).
    Edited { message: String, pin_path: PathBuf },
    /// The answer to [`Request::Status`].
    Status(Box<DaemonInfo>),
    /// The answer to [`Request::Plan`]: `xlb check --diff`'s text and JSON, against the
    /// running config.
    Plan {
        text: String,
        plan: serde_json::Value,
    },
    /// Refused or failed: why (a config error names file:line:column). Nothing changed.
    Error { message: String },
}

impl Reply {
    pub fn error(message: impl Into<String>) -> Self {
        Reply::Error {
            message: message.into(),
        }
    }

    /// The reply's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Done { .. } => "done",
            Reply::Edited { .. } => "edited",
            Reply::Status(_) => "status",
            Reply::Plan { .. } => "plan",
            Reply::Error { .. } => "error",
        }
    }
}

/// A reply on the wire: `{"version":1,"result":...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyLine {
    pub version: u32,
    #[serde(flatten)]
    pub reply: Reply,
}

impl ReplyLine {
    pub fn new(reply: Reply) -> Self {
        Self {
            version: VERSION,
            reply,
        }
    }

    /// The line to send, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"version":{VERSION},"result":"error","message":"{e}"}}"#)
        });
        s.push('\n');
        s
    }
}

/// Why a request line was not understood.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("request longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("request is not UTF-8")]
    NotUtf8,
    #[error("not a request: {0}")]
    Malformed(String),
    #[error("protocol version {got} not spoken here (this daemon speaks {VERSION})")]
    Version { got: u32 },
}

/// Parses one request line (without or with its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_REQUEST {
        return Err(RequestError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
    // The version first, so that a newer client's unknown command says "version".
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version =
        serde_json::from_str(text).map_err(|e| RequestError::Malformed(e.to_string()))?;
    if v.version != VERSION {
        return Err(RequestError::Version { got: v.version });
    }
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| RequestError::Malformed(e.to_string()))?;
    let r: RequestLine = serde_json::from_value(serde_json::Value::Object(fields.clone()))
        .map_err(|e| RequestError::Malformed(e.to_string()))?;
    // serde lets unknown fields through a flattened, tagged enum: a field the request does
    // not have is a client's mistake worth saying, not something to ignore.
    let known = serde_json::to_value(&r).map_err(|e| RequestError::Malformed(e.to_string()))?;
    if let Some(extra) = fields.keys().find(|k| known.get(k.as_str()).is_none()) {
        return Err(RequestError::Malformed(format!(
            "unknown field `{extra}` for command `{}`",
            r.request.name()
        )));
    }
    Ok(r.request)
}

/// The line a client sends for `request`, newline included.
pub fn request_line(request: &Request) -> String {
    let line = RequestLine {
        version: VERSION,
        request: request.clone(),
    };
    let mut s = serde_json::to_string(&line).expect("a request serialises");
    s.push('\n');
    s
}

/// Who sent a request (`SO_PEERCRED`), for the logs and the edits' record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "uid {} pid {pid}", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// The daemon's answer to `status`: what only it knows. The maps are read by the client
/// at [`DaemonInfo::pin_path`], as without a daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    /// Unix seconds.
    pub started_at: u64,
    pub uptime_s: u64,
    pub config_path: PathBuf,
    /// When the running config was loaded (start or last successful reload), Unix seconds.
    pub config_loaded_at: u64,
    /// How long ago that was (the daemon's monotonic clock, like `uptime_s`).
    pub config_age_s: u64,
    pub pin_path: PathBuf,
    pub state_file: PathBuf,
    /// The log filter in effect.
    pub log_filter: Option<String>,
    /// Runtime edits in effect, each differing from the file until the next reload.
    pub edits: Vec<EditInfo>,
    /// The connection tables' size, maximum and growths (None: no data plane).
    #[serde(default)]
    pub conn_table: Option<crate::dataplane::conn_grow::ConnTableInfo>,
}

/// One real server's runtime edits, as `xlb status` shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EditInfo {
    pub service: ServiceRef,
    pub real: RealRef,
    /// The weight the file gives it.
    pub file_weight: u32,
    /// The weight set at run time (`weight` or `drain`), if any.
    pub weight: Option<u32>,
    /// Set by `drain` (weight 0), not `weight 0`.
    pub drained: bool,
    /// When and by whom the weight was set (Unix seconds).
    pub weight_at: Option<u64>,
    pub weight_by: Option<Peer>,
    /// Taken out by `disable`: when and by whom.
    pub disabled_at: Option<u64>,
    pub disabled_by: Option<Peer>,
}

impl EditInfo {
    /// `weight 0 (file: 3, drained 42 s ago by uid 0 pid 7), disabled 3 s ago by uid 0`,
    /// with ages at `now` (Unix seconds).
    pub fn describe(&self, now: u64) -> String {
        let ago = |t: Option<u64>| now.saturating_sub(t.unwrap_or(now));
        let by = |p: Option<Peer>| p.map(|p| format!(" by {p}")).unwrap_or_default();
        let mut parts = Vec::new();
        if let Some(w) = self.weight {
            parts.push(format!(
                "weight {w} (file: {}, {} {} s ago{})",
                self.file_weight,
                if self.drained { "drained" } else { "set" },
                ago(self.weight_at),
                by(self.weight_by)
            ));
        }
        if self.disabled_at.is_some() {
            parts.push(format!(
                "disabled {} s ago{} (out of the table whatever the checks say)",
                ago(self.disabled_at),
                by(self.disabled_by)
            ));
        }
        parts.join(", ")
    }
}

/// `IP:PORT` of a real server with IPv6 in brackets, as the commands take it.
pub fn real_str(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

#[cfg(test)]
mod tests;

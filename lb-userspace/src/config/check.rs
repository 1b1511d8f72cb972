//! Health checkers of a real server: `tcp_check`, `http_get`, `ssl_get`, `misc_check`,
//! with keepalived's option names and defaults.
//!
//! The timing options (`connect_timeout`, `retry`, `delay_before_retry`, `warmup`,
//! `delay_loop`, `alpha`, `log_all_failures`) may also be set on the real server or the
//! virtual server as defaults for its checkers, as in keepalived;
//! [`Config::parse`](super::Config::parse) resolves them, so after parsing the
//! checker's fields hold the values in force.

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::de as cde;
use super::vrrp::string_enum_serde;

fn five() -> f64 {
    5.0
}
fn one_second() -> f64 {
    1.0
}
fn three_seconds() -> f64 {
    3.0
}
fn sixty() -> f64 {
    60.0
}
fn one() -> u32 {
    1
}

/// `tcp_check = { ... }`: up when a TCP connection to the server completes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// Address to connect to. Default: the real server's.
    pub connect_ip: Option<IpAddr>,
    /// Port to connect to. Default: the real server's (required when that is 0).
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub connect_port: Option<u16>,
    /// Source address of the check. Default: chosen by routing.
    pub bindto: Option<IpAddr>,
    /// Interface to bind to (needed for an IPv6 link-local `bindto`).
    pub bind_if: Option<String>,
    /// Source port. Default: ephemeral.
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub bind_port: Option<u16>,
    /// fwmark set on the check's packets. Default: none.
    pub fwmark: Option<u32>,
    /// Seconds to wait for the connection. Default 5.
    #[serde(default = "five", deserialize_with = "cde::seconds")]
    pub connect_timeout: f64,
    /// Extra attempts before a server that is up is declared down (keepalived's
    /// `retry`, formerly `nb_get_retry`). Default 1.
    #[serde(
        default = "one",
        alias = "nb_get_retry",
        deserialize_with = "cde::count"
    )]
    pub retry: u32,
    /// Seconds between those attempts. Default 1.
    #[serde(default = "one_second", deserialize_with = "cde::seconds")]
    pub delay_before_retry: f64,
    /// The first check starts after a random delay of up to this many seconds
    /// (0: at once). Default: `delay_loop`.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub warmup: Option<f64>,
    /// Seconds between checks. Default: the virtual server's `delay_loop`.
    #[serde(default = "sixty", deserialize_with = "cde::seconds")]
    pub delay_loop: f64,
    /// Start with the server considered down until a check passes. Default: the real
    /// server's `alpha`.
    #[serde(default)]
    pub alpha: bool,
    /// Log every failed attempt, not just transitions. Default:
    /// `global_defs.checker_log_all_failures` (false).
    #[serde(default)]
    pub log_all_failures: bool,
}

/// `http_get` / `ssl_get = { url = [...], ... }`: up when every `url` answers as
/// expected, over HTTP or HTTPS.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGet {
    /// As [`TcpCheck::connect_ip`].
    pub connect_ip: Option<IpAddr>,
    /// As [`TcpCheck::connect_port`].
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_if: Option<String>,
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub bind_port: Option<u16>,
    pub fwmark: Option<u32>,
    /// Seconds to wait for the connection and the answer. Default 5.
    #[serde(default = "five", deserialize_with = "cde::seconds")]
    pub connect_timeout: f64,
    /// As [`TcpCheck::retry`]. Default 1.
    #[serde(
        default = "one",
        alias = "nb_get_retry",
        deserialize_with = "cde::count"
    )]
    pub retry: u32,
    /// Seconds between attempts. Default 3 (keepalived's default for HTTP/SSL).
    #[serde(default = "three_seconds", deserialize_with = "cde::seconds")]
    pub delay_before_retry: f64,
    /// As [`TcpCheck::warmup`].
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub warmup: Option<f64>,
    /// As [`TcpCheck::delay_loop`].
    #[serde(default = "sixty", deserialize_with = "cde::seconds")]
    pub delay_loop: f64,
    #[serde(default)]
    pub alpha: bool,
    #[serde(default)]
    pub log_all_failures: bool,
    /// The URLs to fetch; at least one.
    #[serde(default)]
    pub url: Vec<UrlCheck>,
    /// `"1.0"` (default), `"1.0C"` (1.0 with `Connection: close`) or `"1.1"`.
    #[serde(default)]
    pub http_protocol: HttpProtocol,
    /// `Host:` header. Default: the real server's, else the virtual server's
    /// `virtualhost`, else the address.
    pub virtualhost: Option<String>,
    /// After a failure, check all URLs back to back instead of one per `delay_loop`.
    /// Default false.
    #[serde(default)]
    pub fast_recovery: bool,
    /// `ssl_get` only: send SNI (the virtualhost, or `sni_name`). Default false.
    #[serde(default)]
    pub enable_sni: bool,
    /// `ssl_get` only: the SNI name. Default: the virtualhost.
    pub sni_name: Option<String>,
    /// `ssl_get` only: send close_notify before closing. Default false.
    #[serde(default)]
    pub tls_compliant: bool,
}

/// One `url = [{ path = "/health", status_code = 200 }]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UrlCheck {
    /// Absolute path, starting with `/`.
    pub path: String,
    /// Accepted status codes: `200`, `"200-299 503"`, or `[200, "300-399"]`.
    /// Default 200-299.
    #[serde(default)]
    pub status_code: StatusCodes,
    /// MD5 of the body, 32 hex digits (keepalived's `genhash`). Default: not checked.
    pub digest: Option<String>,
    /// `Host:` header for this URL. Default: the checker's `virtualhost`.
    pub virtualhost: Option<String>,
    /// A regular expression the body must match. Default: not checked.
    pub regex: Option<String>,
    /// Fail when `regex` matches instead of when it does not. Default false.
    #[serde(default)]
    pub regex_no_match: bool,
}

/// HTTP version spoken by `http_get` / `ssl_get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpProtocol {
    /// HTTP/1.0, keepalived's default.
    #[default]
    Http10,
    /// HTTP/1.0 with `Connection: close`.
    Http10Close,
    /// HTTP/1.1 (sends `Connection: close`).
    Http11,
}

impl HttpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "1.0",
            Self::Http10Close => "1.0C",
            Self::Http11 => "1.1",
        }
    }
}

impl TryFrom<String> for HttpProtocol {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "1.0" => Ok(Self::Http10),
            "1.0C" | "1.0c" => Ok(Self::Http10Close),
            "1.1" => Ok(Self::Http11),
            _ => Err(format!(
                "unknown http_protocol {s:?}: expected \"1.0\", \"1.0C\" or \"1.1\""
            )),
        }
    }
}

string_enum_serde!(HttpProtocol);

/// Accepted HTTP status codes, as ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCodes(pub Vec<RangeInclusive<u16>>);

impl Default for StatusCodes {
    /// 200-299, as keepalived.
    fn default() -> Self {
        Self(vec![200..=299])
    }
}

impl StatusCodes {
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|r| r.contains(&code))
    }

    fn parse_word(word: &str) -> Result<RangeInclusive<u16>, String> {
        let code = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("{s:?} is not an HTTP status code (100..=599)"))
        };
        match word.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (code(a)?, code(b)?);
                if a > b {
                    return Err(format!("{word:?} is an empty range"));
                }
                Ok(a..=b)
            }
            None => code(word).map(|c| c..=c),
        }
    }
}

impl fmt::Display for StatusCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

impl Serialize for StatusCodes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct CodesVisitor;

impl<'de> Visitor<'de> for CodesVisitor {
    type Value = Vec<RangeInclusive<u16>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status code (200), ranges (\"200-299 503\") or an array of those")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        StatusCodes::parse_word(&v.to_string())
            .map(|r| vec![r])
            .map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        StatusCodes::parse_word(&v.to_string())
            .map(|r| vec![r])
            .map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let ranges = v
            .split_whitespace()
            .map(StatusCodes::parse_word)
            .collect::<Result<Vec<_>, _>>()
            .map_err(E::custom)?;
        if ranges.is_empty() {
            return Err(E::custom("no status code given"));
        }
        Ok(ranges)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut all = Vec::new();
        while let Some(Codes(mut ranges)) = seq.next_element::<Codes>()? {
            all.append(&mut ranges);
        }
        if all.is_empty() {
            return Err(de::Error::custom("no status code given"));
        }
        Ok(all)
    }
}

/// One element of a `status_code` array (a code or a string of ranges).
struct Codes(Vec<RangeInclusive<u16>>);

impl<'de> Deserialize<'de> for Codes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CodesVisitor).map(Codes)
    }
}

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CodesVisitor).map(StatusCodes)
    }
}

/// `misc_check = { misc_path = "...", ... }`: up when the command exits 0.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MiscCheck {
    /// Command line to run.
    pub misc_path: String,
    /// Seconds before the command is killed and the check fails. Default:
    /// `delay_loop` (after parsing, always set).
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub misc_timeout: Option<f64>,
    /// Exit status 2..=255 sets the weight to status - 2 (keepalived's misc_dynamic).
    /// Default false.
    #[serde(default)]
    pub misc_dynamic: bool,
    /// `user [group]` to run as. Default: global `script_user`, else root.
    pub user: Option<String>,
    /// As [`TcpCheck::retry`], but default 0 (keepalived's MISC_CHECK default).
    #[serde(default, alias = "nb_get_retry", deserialize_with = "cde::count")]
    pub retry: u32,
    /// Default 1.
    #[serde(default = "one_second", deserialize_with = "cde::seconds")]
    pub delay_before_retry: f64,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub warmup: Option<f64>,
    #[serde(default = "sixty", deserialize_with = "cde::seconds")]
    pub delay_loop: f64,
    #[serde(default)]
    pub alpha: bool,
    #[serde(default)]
    pub log_all_failures: bool,
}

/// The timing options every checker shares, borrowed for resolution of inherited
/// values.
pub(crate) struct Timing<'a> {
    pub connect_timeout: Option<&'a mut f64>,
    pub retry: &'a mut u32,
    pub delay_before_retry: &'a mut f64,
    pub warmup: &'a mut Option<f64>,
    pub delay_loop: &'a mut f64,
    pub alpha: &'a mut bool,
    pub log_all_failures: &'a mut bool,
}

impl TcpCheck {
    pub(crate) fn timing(&mut self) -> Timing<'_> {
        Timing {
            connect_timeout: Some(&mut self.connect_timeout),
            retry: &mut self.retry,
            delay_before_retry: &mut self.delay_before_retry,
            warmup: &mut self.warmup,
            delay_loop: &mut self.delay_loop,
            alpha: &mut self.alpha,
            log_all_failures: &mut self.log_all_failures,
        }
    }
}

impl HttpGet {
    pub(crate) fn timing(&mut self) -> Timing<'_> {
        Timing {
            connect_timeout: Some(&mut self.connect_timeout),
            retry: &mut self.retry,
            delay_before_retry: &mut self.delay_before_retry,
            warmup: &mut self.warmup,
            delay_loop: &mut self.delay_loop,
            alpha: &mut self.alpha,
            log_all_failures: &mut self.log_all_failures,
        }
    }
}

impl MiscCheck {
    pub(crate) fn timing(&mut self) -> Timing<'_> {
        Timing {
            connect_timeout: None,
            retry: &mut self.retry,
            delay_before_retry: &mut self.delay_before_retry,
            warmup: &mut self.warmup,
            delay_loop: &mut self.delay_loop,
            alpha: &mut self.alpha,
            log_all_failures: &mut self.log_all_failures,
        }
    }
}

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
    /// A regular expression the body must match (Rust `regex` syntax, close to the
    /// PCRE keepalived uses). Default: not checked.
    #[serde(default, deserialize_with = "regex_pattern")]
    pub regex: Option<String>,
    /// Fail when `regex` matches instead of when it does not. Default false.
    #[serde(default)]
    pub regex_no_match: bool,
}

/// A `regex` that compiles.
fn regex_pattern<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let pattern = String::deserialize(d)?;
    regex::bytes::Regex::new(&pattern).map_err(|e| {
        de::Error::custom(format_args!(
            "bad regex: {}",
            super::one_line(&e.to_string())
        ))
    })?;
    Ok(Some(pattern))
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

/// The timing options of one checker as in force: what the health monitor runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckTiming {
    /// Seconds a check may take (`misc_timeout` for `misc_check`).
    pub connect_timeout: f64,
    pub retry: u32,
    pub delay_before_retry: f64,
    /// Upper bound of the random delay before the first check, seconds.
    pub warmup: f64,
    pub delay_loop: f64,
    pub alpha: bool,
    pub log_all_failures: bool,
}

impl TcpCheck {
    /// The timing in force (resolved by [`Config::parse`](super::Config::parse)).
    pub fn timing_in_force(&self) -> CheckTiming {
        CheckTiming {
            connect_timeout: self.connect_timeout,
            retry: self.retry,
            delay_before_retry: self.delay_before_retry,
            warmup: self.warmup.unwrap_or(self.delay_loop),
            delay_loop: self.delay_loop,
            alpha: self.alpha,
            log_all_failures: self.log_all_failures,
        }
    }
}

impl HttpGet {
    /// The timing in force (resolved by [`Config::parse`](super::Config::parse)).
    pub fn timing_in_force(&self) -> CheckTiming {
        CheckTiming {
            connect_timeout: self.connect_timeout,
            retry: self.retry,
            delay_before_retry: self.delay_before_retry,
            warmup: self.warmup.unwrap_or(self.delay_loop),
            delay_loop: self.delay_loop,
            alpha: self.alpha,
            log_all_failures: self.log_all_failures,
        }
    }
}

impl MiscCheck {
    /// The timing in force (resolved by [`Config::parse`](super::Config::parse));
    /// `connect_timeout` is `misc_timeout`.
    pub fn timing_in_force(&self) -> CheckTiming {
        CheckTiming {
            connect_timeout: self.misc_timeout.unwrap_or(self.delay_loop),
            retry: self.retry,
            delay_before_retry: self.delay_before_retry,
            warmup: self.warmup.unwrap_or(self.delay_loop),
            delay_loop: self.delay_loop,
            alpha: self.alpha,
            log_all_failures: self.log_all_failures,
        }
    }
}

// ------------------------------------------------------------------------------------
// dns_check, udp_check, ping_check, smtp_check.
//
// Their timing options are `Option`s that stay as written: the values in force (the
// checker's, else the real server's, else the virtual server's, else the checker's
// default) come from `timing_in_force` with the real server's [`CheckerDefaults`].

/// What a real server (with its virtual server's values folded in) hands down to its
/// checkers: see [`RealServerConfig::checker_defaults`](super::RealServerConfig::checker_defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckerDefaults {
    pub connect_timeout: Option<f64>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<f64>,
    pub warmup: Option<f64>,
    pub delay_loop: f64,
    pub alpha: bool,
    pub log_all_failures: bool,
}

/// The timing options as written on a checker of the newer kinds.
struct WrittenTiming {
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    warmup: Option<f64>,
    delay_loop: Option<f64>,
    alpha: Option<bool>,
    log_all_failures: Option<bool>,
}

impl WrittenTiming {
    /// keepalived's resolution: the checker's value, else the inherited one, else the
    /// kind's default (`default_dbr` None: `delay_loop`, as keepalived's DNS_CHECK).
    fn in_force(
        &self,
        d: &CheckerDefaults,
        default_retry: u32,
        default_dbr: Option<f64>,
    ) -> CheckTiming {
        let delay_loop = self.delay_loop.unwrap_or(d.delay_loop);
        CheckTiming {
            connect_timeout: self.connect_timeout.or(d.connect_timeout).unwrap_or(5.0),
            retry: self.retry.or(d.retry).unwrap_or(default_retry),
            delay_before_retry: self
                .delay_before_retry
                .or(d.delay_before_retry)
                .or(default_dbr)
                .unwrap_or(delay_loop),
            warmup: self.warmup.or(d.warmup).unwrap_or(delay_loop),
            delay_loop,
            alpha: self.alpha.unwrap_or(d.alpha),
            log_all_failures: self.log_all_failures.unwrap_or(d.log_all_failures),
        }
    }
}

macro_rules! written_timing {
    ($($t:ty),*) => {$(
        impl $t {
            fn written(&self) -> WrittenTiming {
                WrittenTiming {
                    connect_timeout: self.connect_timeout,
                    retry: self.retry,
                    delay_before_retry: self.delay_before_retry,
                    warmup: self.warmup,
                    delay_loop: self.delay_loop,
                    alpha: self.alpha,
                    log_all_failures: self.log_all_failures,
                }
            }
        }
    )*};
}

/// DNS record type asked by `dns_check` (keepalived's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsType {
    A,
    Ns,
    Cname,
    /// keepalived's default.
    #[default]
    Soa,
    Mx,
    Txt,
    Aaaa,
    Rrsig,
    Dnskey,
}

impl DnsType {
    const ALL: [DnsType; 9] = [
        Self::A,
        Self::Ns,
        Self::Cname,
        Self::Soa,
        Self::Mx,
        Self::Txt,
        Self::Aaaa,
        Self::Rrsig,
        Self::Dnskey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Ns => "NS",
            Self::Cname => "CNAME",
            Self::Soa => "SOA",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Aaaa => "AAAA",
            Self::Rrsig => "RRSIG",
            Self::Dnskey => "DNSKEY",
        }
    }

    /// The QTYPE on the wire (RFC 1035 3.2.2, RFC 3596, RFC 4034).
    pub fn code(self) -> u16 {
        match self {
            Self::A => 1,
            Self::Ns => 2,
            Self::Cname => 5,
            Self::Soa => 6,
            Self::Mx => 15,
            Self::Txt => 16,
            Self::Aaaa => 28,
            Self::Rrsig => 46,
            Self::Dnskey => 48,
        }
    }
}

impl TryFrom<String> for DnsType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(&s))
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "unknown DNS type {s:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

string_enum_serde!(DnsType);

fn root_name() -> String {
    ".".to_owned()
}

/// A DNS name as keepalived accepts it: `.` (the root) or labels of 1..=63 characters
/// separated by dots, with an optional final dot, 253 characters at most.
fn dns_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    check_dns_name(&name).map_err(de::Error::custom)?;
    Ok(name)
}

pub(crate) fn check_dns_name(name: &str) -> Result<(), String> {
    if name == "." {
        return Ok(());
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() || body.len() > 253 || !body.is_ascii() {
        return Err(format!(
            "{name:?} is not a DNS name (\".\" or ASCII labels, 253 characters at most)"
        ));
    }
    if let Some(bad) = body.split('.').find(|l| l.is_empty() || l.len() > 63) {
        return Err(format!(
            "{name:?} is not a DNS name: label {bad:?} must be 1 to 63 characters"
        ));
    }
    Ok(())
}

/// `dns_check = { type = "A", name = "www.example.org" }`: up when the server answers
/// the query with RCODE 0 (NOERROR), as keepalived's DNS_CHECK.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// Address to query. Default: the real server's.
    pub connect_ip: Option<IpAddr>,
    /// UDP port to query. Default: the real server's (53 when that is 0).
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_if: Option<String>,
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub bind_port: Option<u16>,
    pub fwmark: Option<u32>,
    /// Record type asked. Default `"SOA"`.
    #[serde(rename = "type", default)]
    pub query_type: DnsType,
    /// Name asked. Default `"."` (the root).
    #[serde(default = "root_name", deserialize_with = "dns_name")]
    pub name: String,
    /// Seconds to wait for the answer. Default: inherited, else 5.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub connect_timeout: Option<f64>,
    /// Default: inherited, else 3 (keepalived's DNS_CHECK default).
    #[serde(default, alias = "nb_get_retry", deserialize_with = "cde::opt_count")]
    pub retry: Option<u32>,
    /// Default: inherited, else `delay_loop` (keepalived's DNS_CHECK default).
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_before_retry: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub warmup: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_loop: Option<f64>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

impl DnsCheck {
    pub fn timing_in_force(&self, d: &CheckerDefaults) -> CheckTiming {
        self.written().in_force(d, 3, None)
    }
}

/// Bytes written as hexadecimal digits (`"0a1b2c"`, spaces allowed between bytes),
/// as keepalived's `payload` and `require_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    fn parse(s: &str) -> Result<Self, String> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let bad = || format!("{s:?} is not hexadecimal bytes (pairs of 0-9a-f, e.g. \"0a1b\")");
        if digits.is_empty() || !digits.len().is_multiple_of(2) {
            return Err(bad());
        }
        digits
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<u8>, String>>()
            .map(HexBytes)
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HexBytes::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// `require_reply`: `false` (default), `true` (any answer) or the hexadecimal bytes the
/// answer must start with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RequireReply {
    /// Up unless an ICMP error (port unreachable) comes back within the timeout.
    #[default]
    No,
    /// Up only when an answer comes back.
    Any,
    /// Up only when an answer starting with these bytes comes back.
    Data(Vec<u8>),
}

impl RequireReply {
    /// Whether an answer must come back.
    pub fn is_required(&self) -> bool {
        !matches!(self, Self::No)
    }

    /// The bytes the answer must start with, if given.
    pub fn data(&self) -> Option<&[u8]> {
        match self {
            Self::Data(d) => Some(d),
            _ => None,
        }
    }
}

impl Serialize for RequireReply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::No => s.serialize_bool(false),
            Self::Any => s.serialize_bool(true),
            Self::Data(d) => s.collect_str(&HexBytes(d.clone())),
        }
    }
}

struct RequireReplyVisitor;

impl Visitor<'_> for RequireReplyVisitor {
    type Value = RequireReply;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false or the expected answer in hexadecimal (\"0a1b\")")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RequireReply, E> {
        Ok(if v {
            RequireReply::Any
        } else {
            RequireReply::No
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RequireReply, E> {
        HexBytes::parse(v)
            .map(|h| RequireReply::Data(h.0))
            .map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for RequireReply {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RequireReplyVisitor)
    }
}

fn max_u16() -> u16 {
    u16::MAX
}

fn u16_value<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v = i64::deserialize(d)?;
    u16::try_from(v).map_err(|_| de::Error::custom(format_args!("{v} is out of range (0..=65535)")))
}

/// `udp_check = { payload = "...", require_reply = ... }`: sends one datagram; up unless
/// an ICMP error answers it (or, with `require_reply`, when the expected answer comes
/// back), as keepalived's UDP_CHECK.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UdpCheck {
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
    /// The datagram, in hexadecimal. Default: 32 bytes of filler.
    pub payload: Option<HexBytes>,
    /// See [`RequireReply`]. Default false.
    #[serde(default)]
    pub require_reply: RequireReply,
    /// Shortest acceptable answer, bytes (only with `require_reply`). Default 0.
    #[serde(default, deserialize_with = "u16_value")]
    pub min_reply_length: u16,
    /// Longest acceptable answer, bytes (only with `require_reply`). Default 65535
    /// (keepalived: 255, and only checked when `require_reply` gives data).
    #[serde(default = "max_u16", deserialize_with = "u16_value")]
    pub max_reply_length: u16,
    /// Seconds to wait for an error or the answer. Default: inherited, else 5.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub connect_timeout: Option<f64>,
    /// Default: inherited, else 1.
    #[serde(default, alias = "nb_get_retry", deserialize_with = "cde::opt_count")]
    pub retry: Option<u32>,
    /// Default: inherited, else 1.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_before_retry: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub warmup: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_loop: Option<f64>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

impl UdpCheck {
    pub fn timing_in_force(&self, d: &CheckerDefaults) -> CheckTiming {
        self.written().in_force(d, 1, Some(1.0))
    }
}

/// `ping_check = { ... }`: up when the server answers an ICMP (v6) echo request, as
/// keepalived's PING_CHECK.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PingCheck {
    /// Address to ping. Default: the real server's.
    pub connect_ip: Option<IpAddr>,
    pub bindto: Option<IpAddr>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    /// Seconds to wait for the echo reply. Default: inherited, else 5.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub connect_timeout: Option<f64>,
    /// Default: inherited, else 1.
    #[serde(default, alias = "nb_get_retry", deserialize_with = "cde::opt_count")]
    pub retry: Option<u32>,
    /// Default: inherited, else 1.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_before_retry: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub warmup: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_loop: Option<f64>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

impl PingCheck {
    pub fn timing_in_force(&self, d: &CheckerDefaults) -> CheckTiming {
        self.written().in_force(d, 1, Some(1.0))
    }
}

/// `smtp_check = { helo_name = "..." }`: up when the server greets with 220, answers
/// `HELO` with 250, as keepalived's SMTP_CHECK (which then says `QUIT`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpCheck {
    /// As [`TcpCheck::connect_ip`].
    pub connect_ip: Option<IpAddr>,
    /// Port to connect to. Default 25 (keepalived's SMTP_CHECK default).
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_if: Option<String>,
    #[serde(default, deserialize_with = "cde::opt_port")]
    pub bind_port: Option<u16>,
    pub fwmark: Option<u32>,
    /// Name given in `HELO`. Default: `global_defs.smtp_helo_name`, else the host name.
    pub helo_name: Option<String>,
    /// Seconds for the connection and the whole exchange. Default: inherited, else 5.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub connect_timeout: Option<f64>,
    /// Default: inherited, else 1.
    #[serde(default, alias = "nb_get_retry", deserialize_with = "cde::opt_count")]
    pub retry: Option<u32>,
    /// Default: inherited, else 1.
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_before_retry: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub warmup: Option<f64>,
    #[serde(default, deserialize_with = "cde::opt_seconds")]
    pub delay_loop: Option<f64>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

impl SmtpCheck {
    pub fn timing_in_force(&self, d: &CheckerDefaults) -> CheckTiming {
        self.written().in_force(d, 1, Some(1.0))
    }
}

written_timing!(DnsCheck, UdpCheck, PingCheck, SmtpCheck);

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::{DnsType, HexBytes, RequireReply};

    const VS: &str = "\
[[virtual_server]]
ip = \"198.18.0.100\"
port = 53
protocol = \"UDP\"
interface = \"eth0\"
delay_loop = 10
";

    fn parse(text: &str) -> Config {
        Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[track_caller]
    fn refused(text: &str, at: &str, fragment: &str) {
        let msg = match Config::parse(text, "t.toml") {
            Ok(_) => panic!("accepted, expected {at}: ...{fragment}..."),
            Err(e) => e.to_string(),
        };
        assert!(msg.starts_with(&format!("t.toml:{at}")), "{msg}");
        assert!(
            msg.contains(fragment),
            "{msg}\n  does not mention\n{fragment}"
        );
    }

    #[test]
    fn config_check_new_checkers_take_keepalived_defaults() {
        let cfg = parse(&format!(
            "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
             dns_check = {{}}\n\
             udp_check = {{}}\n\
             ping_check = {{}}\n\
             smtp_check = {{}}\n"
        ));
        let vs = &cfg.virtual_server[0];
        let rs = &vs.real_server[0];
        assert!(rs.has_checker());
        let d = rs.checker_defaults(vs, &cfg.global_defs);

        let dns = rs.dns_check.as_ref().unwrap();
        assert_eq!((dns.query_type, dns.name.as_str()), (DnsType::Soa, "."));
        let t = dns.timing_in_force(&d);
        // keepalived's DNS_CHECK: retry 3, delay_before_retry = delay_loop.
        assert_eq!(
            (t.retry, t.delay_before_retry, t.delay_loop),
            (3, 10.0, 10.0)
        );
        assert_eq!((t.connect_timeout, t.warmup, t.alpha), (5.0, 10.0, false));

        let udp = rs.udp_check.as_ref().unwrap();
        assert_eq!(udp.require_reply, RequireReply::No);
        assert_eq!((udp.min_reply_length, udp.max_reply_length), (0, 65535));
        let t = udp.timing_in_force(&d);
        assert_eq!((t.retry, t.delay_before_retry), (1, 1.0));

        for t in [
            rs.ping_check.as_ref().unwrap().timing_in_force(&d),
            rs.smtp_check.as_ref().unwrap().timing_in_force(&d),
        ] {
            assert_eq!(
                (t.retry, t.delay_before_retry, t.delay_loop),
                (1, 1.0, 10.0)
            );
        }
        assert_eq!(rs.smtp_check.as_ref().unwrap().helo_name, None);
    }

    #[test]
    fn config_check_new_checkers_inherit_like_the_others() {
        let cfg = parse(&format!(
            "{VS}retry = 4\nconnect_timeout = 2\nalpha = true\n\
             [[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
             delay_loop = 3\ndelay_before_retry = 0.5\n\
             dns_check = {{ type = \"aaaa\", name = \"www.example.org.\", retry = 1 }}\n\
             ping_check = {{ alpha = false, warmup = 0, nb_get_retry = 2 }}\n\
             tcp_check = {{ connect_port = 53 }}\n"
        ));
        let vs = &cfg.virtual_server[0];
        let rs = &vs.real_server[0];
        let d = rs.checker_defaults(vs, &cfg.global_defs);
        let dns = rs.dns_check.as_ref().unwrap();
        assert_eq!(
            (dns.query_type.code(), dns.query_type.as_str()),
            (28, "AAAA")
        );
        let t = dns.timing_in_force(&d);
        assert_eq!(
            (
                t.retry,
                t.connect_timeout,
                t.delay_before_retry,
                t.delay_loop,
                t.warmup
            ),
            (1, 2.0, 0.5, 3.0, 3.0)
        );
        assert!(t.alpha, "from the virtual server, through the real server");
        let t = rs.ping_check.as_ref().unwrap().timing_in_force(&d);
        assert_eq!((t.retry, t.warmup, t.alpha), (2, 0.0, false));
        // The older checkers resolve the same values at parse time.
        let tcp = rs.tcp_check.as_ref().unwrap().timing_in_force();
        assert_eq!(
            (
                tcp.retry,
                tcp.connect_timeout,
                tcp.delay_before_retry,
                tcp.delay_loop
            ),
            (4, 2.0, 0.5, 3.0)
        );
    }

    #[test]
    fn config_check_udp_payload_and_reply() {
        let cfg = parse(&format!(
            "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
             udp_check = {{ payload = \"de ad BE EF\", require_reply = \"0a0b\", \
             min_reply_length = 2, max_reply_length = 512 }}\n\
             [[virtual_server.real_server]]\nip = \"198.18.0.22\"\n\
             udp_check = {{ require_reply = true }}\n"
        ));
        let rs = &cfg.virtual_server[0].real_server;
        let udp = rs[0].udp_check.as_ref().unwrap();
        assert_eq!(udp.payload, Some(HexBytes(vec![0xde, 0xad, 0xbe, 0xef])));
        assert_eq!(udp.require_reply, RequireReply::Data(vec![0x0a, 0x0b]));
        assert_eq!(udp.require_reply.data(), Some(&[0x0a, 0x0b][..]));
        assert_eq!((udp.min_reply_length, udp.max_reply_length), (2, 512));
        let any = rs[1].udp_check.as_ref().unwrap();
        assert!(any.require_reply.is_required() && any.require_reply.data().is_none());
    }

    #[test]
    fn config_check_new_checkers_round_trip() {
        let cfg = parse(&format!(
            "{VS}retry = 2\n[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
             dns_check = {{ type = \"MX\", name = \"example.org\", connect_port = 5353 }}\n\
             udp_check = {{ payload = \"00ff\", require_reply = true }}\n\
             ping_check = {{ connect_timeout = 1.5, fwmark = 7 }}\n\
             smtp_check = {{ helo_name = \"lb1.example.org\", connect_ip = \"198.18.0.25\" }}\n\
             [[virtual_server.real_server]]\nip = \"198.18.0.22\"\n\
             udp_check = {{ require_reply = \"abcd\" }}\n\
             http_get = {{ url = [{{ path = \"/\", regex = \"^ok$\" }}] }}\n"
        ));
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(parse(&text), cfg, "{text}");
    }

    #[test]
    fn config_check_bad_values_are_located() {
        let rs = "[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n";
        refused(
            &format!("{VS}{rs}dns_check = {{ type = \"PTR\" }}\n"),
            "9:",
            "unknown DNS type \"PTR\": expected one of A, NS, CNAME, SOA",
        );
        refused(
            &format!("{VS}{rs}dns_check = {{ name = \"a..b\" }}\n"),
            "9:",
            "label \"\" must be 1 to 63 characters",
        );
        refused(
            &format!("{VS}{rs}dns_check = {{ qtype = \"A\" }}\n"),
            "9:",
            "real_server[0].dns_check.qtype",
        );
        refused(
            &format!("{VS}{rs}udp_check = {{ payload = \"abc\" }}\n"),
            "9:",
            "is not hexadecimal bytes",
        );
        refused(
            &format!("{VS}{rs}udp_check = {{ max_reply_length = 70000 }}\n"),
            "9:",
            "70000 is out of range (0..=65535)",
        );
        refused(
            &format!("{VS}{rs}ping_check = {{ connect_port = 7 }}\n"),
            "9:",
            "ping_check.connect_port",
        );
        refused(
            &format!(
                "{VS}{rs}http_get = {{ url = [{{ path = \"/\", regex = \"(unclosed\" }}] }}\n"
            ),
            "9:",
            "bad regex",
        );
    }

    #[test]
    fn config_check_dns_names() {
        for good in [".", "example.org", "example.org.", "a.b-c.d"] {
            assert_eq!(super::check_dns_name(good), Ok(()), "{good}");
        }
        let long_label = "a".repeat(64);
        for bad in ["", "..", ".example", "a..b", long_label.as_str(), "é.org"] {
            assert!(super::check_dns_name(bad).is_err(), "{bad:?}");
        }
    }
}

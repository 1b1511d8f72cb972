//! `http_get` / `ssl_get`: the URLs to fetch and what their answers must be.

use std::fmt;
use std::ops::RangeInclusive;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::super::vrrp::string_enum_serde;
use super::checker_table;

checker_table! {
    /// `http_get` / `ssl_get = { url = [...], ... }`: up when every `url` answers as
    /// expected, over HTTP or HTTPS. `connect_timeout` bounds the connection and the
    /// answer; `delay_before_retry` defaults to 3 (keepalived's default for HTTP/SSL).
    pub struct HttpGet {
        connection,
        timing(HTTP),
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
            super::super::one_line(&e.to_string())
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

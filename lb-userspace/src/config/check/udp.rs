//! `udp_check`: the datagram sent and the answer required.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::checker_table;

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

checker_table! {
    /// `udp_check = { payload = "...", require_reply = ... }`: sends one datagram; up
    /// unless an ICMP error answers it within `connect_timeout` (or, with
    /// `require_reply`, when the expected answer comes back), as keepalived's
    /// UDP_CHECK.
    pub struct UdpCheck {
        connection,
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
        timing(PLAIN),
    }
}

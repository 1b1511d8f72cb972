//! `dns_check`: the query asked and the names it may ask for.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::super::vrrp::string_enum_serde;
use super::checker_table;

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

pub(super) fn check_dns_name(name: &str) -> Result<(), String> {
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

checker_table! {
    /// `dns_check = { type = "A", name = "www.example.org" }`: up when the server
    /// answers the query with RCODE 0 (NOERROR) within `connect_timeout`, as
    /// keepalived's DNS_CHECK. `connect_port` defaults to 53 when the real server's
    /// port is 0; `retry` to 3 and `delay_before_retry` to `delay_loop` (keepalived's
    /// DNS_CHECK defaults).
    pub struct DnsCheck {
        connection,
        /// Record type asked. Default `"SOA"`.
        #[serde(rename = "type", default)]
        pub query_type: DnsType,
        /// Name asked. Default `"."` (the root).
        #[serde(default = "root_name", deserialize_with = "dns_name")]
        pub name: String,
        timing(DNS),
    }
}

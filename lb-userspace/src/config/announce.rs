//! Active-active directors: `announce = "bgp"` on a `[[virtual_server]]` and the global
//! `[announce]` table. Such a VIP is not held by VRRP: every director forwards it, and
//! xlb tells the routing daemon (BIRD) whether this one can, through a blackhole host
//! route in a kernel table of its own that BIRD's `kernel` protocol learns and BGP
//! exports (see `crate::bgp`). The upstream routers spread flows over the directors with
//! ECMP; identical `mh` tables make every director pick the same real server.

use serde::{Deserialize, Serialize};

use super::vrrp::string_enum_serde;

/// xlb's kernel routing table for announced VIPs unless `[announce] table` says otherwise.
pub const DEFAULT_ANNOUNCE_TABLE: u32 = 201;

/// How a virtual server's VIP reaches the routers, TOML `announce = "bgp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceMode {
    /// A host route in `[announce] table` while this director can serve the VIP.
    Bgp,
}

impl AnnounceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bgp => "bgp",
        }
    }
}

impl TryFrom<String> for AnnounceMode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "bgp" => Ok(Self::Bgp),
            _ => Err(format!(
                "unknown announce mode {s:?}: expected \"bgp\" (or no `announce`: the VIP \
                 is on an interface, by VRRP or by hand)"
            )),
        }
    }
}

string_enum_serde!(AnnounceMode);

/// `[announce]`: where announced VIPs go. Every key optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnounceDefs {
    /// The kernel routing table (1..=252 or above 255) xlb puts its blackhole host
    /// routes in, protocol 201; BIRD's `kernel` protocol learns that table. Default 201.
    pub table: u32,
    /// An absolute path where the daemon writes the BIRD include for this table (the
    /// text of `xlb bird-config`) at start and on reload; `include` it from bird.conf.
    /// Default: none (run `xlb bird-config` yourself).
    pub bird_include: Option<String>,
}

impl Default for AnnounceDefs {
    fn default() -> Self {
        Self {
            table: DEFAULT_ANNOUNCE_TABLE,
            bird_include: None,
        }
    }
}

impl AnnounceDefs {
    /// Whether this is the default, so that an emitted config leaves it out.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

//! The ABI shared by the XDP program (`lb-ebpf`) and the controller (`lb-userspace`).
//!
//! Every map key and value is `#[repr(C)]`, has explicit padding fields (so no byte is
//! left uninitialised when userspace writes it) and uses `u32` flags instead of `bool`.
//! Sizes are asserted at compile time: a change here is a change of the pinned maps'
//! layout, and `xlb run` refuses to adopt pinned maps of another [`ABI_VERSION`].
//!
//! Here: map names, capacities, keys and values of services, real servers, persistence,
//! counters and the reasons they count. [`conn`]: the connection tables' layout and clock;
//! [`hash`]: the flow and Maglev hash both sides compute; [`bench`]: the config of the
//! benchmark programs in the same object.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod bench;
pub mod conn;
pub mod hash;
pub mod sched;

pub use conn::*;
pub use hash::{flow_hash, murmur3_32};
pub use sched::{COUNTED_ENTRY, MAX_COUNTED, RealConns};

/// Bumped whenever a map's key or value layout changes.
pub const ABI_VERSION: u32 = 9;

/// Map names: also the file names under the pin directory (bpffs rejects '.').
pub mod map_names {
    pub const SERVICES: &str = "xlb_services";
    pub const REALS: &str = "xlb_reals";
    pub const TABLE: &str = "xlb_table";
    /// IPv4 connections (`conn` module).
    pub const CONNS4: &str = "xlb_conns4";
    /// IPv6 connections.
    pub const CONNS6: &str = "xlb_conns6";
    pub const PERSIST: &str = "xlb_persist";
    pub const CURSORS: &str = "xlb_cursors";
    pub const SVC_STATE: &str = "xlb_svc_state";
    pub const SERVICE_STATS: &str = "xlb_svc_stats";
    pub const REAL_STATS: &str = "xlb_real_stats";
    pub const DROPS: &str = "xlb_drops";
    pub const PASSES: &str = "xlb_passes";
    pub const META: &str = "xlb_meta";
    /// What new flows did in full connection-table buckets (`conn::CONN_EVICTED_*`).
    pub const CONN_EVICTIONS: &str = "xlb_conn_evictions";
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" forwarded to the real server
    /// of the flow they are about, by family ([`super::ICMP_FWD_KINDS`]).
    pub const ICMP_FORWARDED: &str = "xlb_icmp_fwd";
    /// ActiveConn / InActConn per real-server index (`sched::RealConns`), for the
    /// connection-counting schedulers.
    pub const REAL_CONNS: &str = "xlb_real_conns";
    /// NAT flows by their reply tuple (`lb_kind = "NAT"`): what a real server's reply is
    /// translated back to.
    pub const NAT_REPLIES: &str = "xlb_nat_rev";
    /// NAT replies by what became of them ([`super::NatEvent`]).
    pub const NAT_STATS: &str = "xlb_nat_stats";
    /// The NAT real servers' endpoints (`ServiceKey`: address, port, protocol), so that a
    /// packet of theirs that is no reply of a live flow is counted as such.
    pub const NAT_REALS: &str = "xlb_nat_reals";
    pub const ALL: [&str; 19] = [
        SERVICES,
        REALS,
        TABLE,
        CONNS4,
        CONNS6,
        PERSIST,
        CURSORS,
        SVC_STATE,
        SERVICE_STATS,
        REAL_STATS,
        DROPS,
        PASSES,
        META,
        CONN_EVICTIONS,
        ICMP_FORWARDED,
        REAL_CONNS,
        NAT_REPLIES,
        NAT_STATS,
        NAT_REALS,
    ];
    /// Names earlier layouts pinned, which `xlb teardown` removes too (an upgrade across
    /// a layout change starts with a teardown).
    pub const LEGACY: [&str; 2] = ["xlb_conns", "xlb_ifaces"];
}

/// The XDP program's name in the object file.
pub const PROGRAM_NAME: &str = "xlb_xdp";
/// A program that passes every frame, for the veth peers of test and demo labs.
pub const PASS_PROGRAM_NAME: &str = "xlb_pass";

/// Virtual services (a service id indexes the per-service arrays).
pub const MAX_SERVICES: u32 = 4096;
/// Real-server slots, shared by all services (1,000 services x 100 servers fit): the most
/// `xlb_reals` and `xlb_real_stats` are made with (the controller sizes them from the
/// config, `lb-userspace/src/dataplane/sizing.rs`).
pub const MAX_REALS: u32 = 1 << 17;
/// Entries of the scheduling-table arena: every service's current table (and, during a
/// swap, its next one) is a slice of it. The most `xlb_table` is made with (sized from
/// the config as `xlb_reals`).
pub const TABLE_CAPACITY: u32 = 1 << 24;
/// IPv4 connection-table slots (`conn` module); the IPv6 table has a quarter of them.
pub const MAX_CONNS: u32 = 1 << 19;
/// Client-affinity entries for `persistence_timeout`.
pub const MAX_PERSIST: u32 = 1 << 18;
/// Reply-tuple entries of NAT flows (`xlb_nat_rev`, an LRU hash: the flows whose replies
/// came last stay).
pub const MAX_NAT_FLOWS: u32 = 1 << 17;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// An address as 16 bytes: IPv6 as is, IPv4 as the IPv4-mapped `::ffff:a.b.c.d`.
pub type Addr = [u8; 16];

/// Maps an IPv4 address (network byte order bytes) to its 16-byte form.
#[inline(always)]
pub const fn v4_mapped(a: [u8; 4]) -> Addr {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
    ]
}

/// The 16-byte form of an address (the inverse of [`ip_of`]).
pub const fn addr_of(ip: core::net::IpAddr) -> Addr {
    match ip {
        core::net::IpAddr::V4(v4) => v4_mapped(v4.octets()),
        core::net::IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address a 16-byte form stands for: IPv4-mapped ones as IPv4.
pub fn ip_of(a: &Addr) -> core::net::IpAddr {
    let v6 = core::net::Ipv6Addr::from(*a);
    match v6.to_ipv4_mapped() {
        Some(v4) => core::net::IpAddr::V4(v4),
        None => core::net::IpAddr::V6(v6),
    }
}

/// A MAC address as logs and status print it: `aa:bb:cc:dd:ee:ff`.
pub struct Mac<'a>(pub &'a [u8; 6]);

impl core::fmt::Display for Mac<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Key of `xlb_services`: what a client addresses. Aligned to 4 (no size change), so the
/// XDP program builds it in words.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub vip: Addr,
    /// Host byte order. 0 = every port of the VIP (looked up after the exact port).
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// Scheduling algorithms, as IPVS names them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedAlgo {
    /// Round robin over the table (one slot per live real server), per-CPU cursor.
    Rr = 0,
    /// Smooth weighted round robin: the table is the precomputed sequence.
    Wrr = 1,
    /// Source hash: `flow_hash(client address) % table_len`.
    Sh = 2,
    /// Weighted Maglev: `flow_hash(client address [, port]) % table_len`.
    Mh = 3,
    /// Least connection: the table holds `(index, weight)` pairs ([`sched`]), scanned.
    Lc = 4,
    /// Weighted least connection (IPVS's and keepalived's default), as `Lc`.
    Wlc = 5,
    /// Shortest expected delay, as `Lc`.
    Sed = 6,
    /// Never queue, as `Lc`.
    Nq = 7,
    /// Weighted failover: the table is the one server of the highest weight.
    Fo = 8,
    /// Weighted overflow, as `Lc`.
    Ovf = 9,
    /// Destination hash: `flow_hash(VIP) % table_len` over an `sh` table.
    Dh = 10,
    /// Power of two choices, as `Lc`.
    Twos = 11,
}

impl SchedAlgo {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::Rr),
            1 => Some(Self::Wrr),
            2 => Some(Self::Sh),
            3 => Some(Self::Mh),
            4 => Some(Self::Lc),
            5 => Some(Self::Wlc),
            6 => Some(Self::Sed),
            7 => Some(Self::Nq),
            8 => Some(Self::Fo),
            9 => Some(Self::Ovf),
            10 => Some(Self::Dh),
            11 => Some(Self::Twos),
            _ => None,
        }
    }

    /// Every algorithm, in `u32` order.
    pub const ALL: [Self; 12] = [
        Self::Rr,
        Self::Wrr,
        Self::Sh,
        Self::Mh,
        Self::Lc,
        Self::Wlc,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Dh,
        Self::Twos,
    ];

    /// IPVS's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Sh => "sh",
            Self::Mh => "mh",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Dh => "dh",
            Self::Twos => "twos",
        }
    }

    /// Schedules from per-real-server connection counts (`xlb_real_conns`): its table
    /// holds `(index, weight)` pairs, and its service has [`SVC_F_COUNT_CONNS`].
    pub const fn counts_conns(self) -> bool {
        matches!(
            self,
            Self::Lc | Self::Wlc | Self::Sed | Self::Nq | Self::Ovf | Self::Twos
        )
    }

    /// The [`sched::Rule`] of a scanning scheduler other than `twos`.
    pub const fn rule(self) -> Option<sched::Rule> {
        match self {
            Self::Lc => Some(sched::Rule::Lc),
            Self::Wlc => Some(sched::Rule::Wlc),
            Self::Sed => Some(sched::Rule::Sed),
            Self::Nq => Some(sched::Rule::Nq),
            Self::Ovf => Some(sched::Rule::Ovf),
            _ => None,
        }
    }
}

/// `ServiceInfo::flags`: forward this service's packets (this director is MASTER for
/// the VIP, or the VIP has no VRRP instance). Cleared: packets pass to the host stack.
pub const SVC_F_ACTIVE: u32 = 1 << 0;
/// `ServiceInfo::flags`: `sh`/`mh` hash the client port too (IPVS `sh-port`/`mh-port`).
pub const SVC_F_HASH_PORT: u32 = 1 << 1;
/// `ServiceInfo::flags` (and `xlb_svc_state`): the service's scheduler counts
/// connections, so the XDP program keeps `xlb_real_conns` for its flows as they come,
/// change state and are evicted.
pub const SVC_F_COUNT_CONNS: u32 = 1 << 2;
/// `ServiceInfo::flags`: a NAT service (`lb_kind = "NAT"`); what `xlb status` shows. The
/// XDP program reads the real server's [`REAL_F_NAT`] instead.
pub const SVC_F_NAT: u32 = 1 << 3;

/// Value of `xlb_services`. Replaced whole (the map is a no-prealloc hash, so a reader sees
/// the old or the new value, never a mix): that is how a new table is swapped in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ServiceInfo {
    /// Index into the per-service arrays (`xlb_cursors`, `xlb_svc_stats`).
    pub id: u32,
    pub flags: u32,
    /// A [`SchedAlgo`] as u32.
    pub algo: u32,
    /// The service's scheduling table: `xlb_table[table_offset .. table_offset + table_len]`,
    /// each entry a real-server index. `table_len == 0`: no real server takes new flows.
    pub table_offset: u32,
    pub table_len: u32,
    /// Seconds of client affinity after the last packet; 0 = off.
    pub persistence_timeout: u32,
}

/// `RealServer::flags`: the slot belongs to a configured real server.
pub const REAL_F_IN_USE: u32 = 1 << 0;
/// `RealServer::flags`: healthy. Without it, existing flows are scheduled again.
pub const REAL_F_ALIVE: u32 = 1 << 1;
/// `RealServer::flags`: MAC known (the neighbour is resolved).
pub const REAL_F_MAC_VALID: u32 = 1 << 2;
/// `RealServer::flags`: of a NAT service. Packets to it get their destination address
/// and port rewritten to `addr` and `port` (port 0: kept), and its replies are translated
/// back to the VIP (`xlb_nat_rev`).
pub const REAL_F_NAT: u32 = 1 << 3;

/// Value of `xlb_reals` (an array indexed by real-server index).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RealServer {
    /// Identity, so that a restarted controller can adopt the slot assignment.
    pub addr: Addr,
    pub port: u16,
    pub _pad: u16,
    /// The owning service's id.
    pub service_id: u32,
    pub flags: u32,
    /// Configured weight (0 = quiescent: no new flows, existing flows continue).
    pub weight: u32,
    /// Interface the real server is reached through.
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// The director's own MAC on `ifindex`: the source MAC of forwarded frames. Kept here
    /// so that the established path needs no other lookup.
    pub src_mac: [u8; 6],
}

impl RealServer {
    /// `mac` and `src_mac` as they follow each other (and an Ethernet header's first 12
    /// bytes): three words, so that the XDP program copies them with three stores.
    #[inline(always)]
    pub const fn mac_words(&self) -> [u32; 3] {
        let m = self.mac;
        let s = self.src_mac;
        [
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]),
            u32::from_ne_bytes([m[4], m[5], s[0], s[1]]),
            u32::from_ne_bytes([s[2], s[3], s[4], s[5]]),
        ]
    }

    /// Usable for an existing flow of `service_id`.
    #[inline(always)]
    pub const fn serves(&self, service_id: u32) -> bool {
        const NEED: u32 = REAL_F_IN_USE | REAL_F_ALIVE | REAL_F_MAC_VALID;
        self.flags & NEED == NEED && self.service_id == service_id
    }
}

/// Key of an `xlb_conns6` slot: the 5-tuple as the client sent it.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub saddr: Addr,
    pub daddr: Addr,
    /// Host byte order.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// Key of an `xlb_conns4` slot: an IPv4 5-tuple in 16 bytes (two words to compare).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey4 {
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    /// Host byte order.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// Key of `xlb_persist`: a client of a service.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PersistKey {
    pub client: Addr,
    pub service_id: u32,
}

/// Value of `xlb_persist`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PersistValue {
    pub real: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_ns` of the last packet, refreshed at most once a second.
    pub last_seen_ns: u64,
}

/// Value of `xlb_nat_rev`, whose key is a NAT flow's reply as the real server sends it
/// (a [`FlowKey`]: source real server:port, destination client:port, IPv4 addresses in
/// their mapped form): where the client sent the flow, and the real server it went to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatReply {
    pub vip: Addr,
    /// Host byte order.
    pub vport: u16,
    pub _pad: u16,
    /// The real-server index the flow's slot must still hold for the reply to pass.
    pub real: u32,
}

/// Per-CPU traffic counters of a service or a real server.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// Value of `xlb_meta[0]`: identifies the layout of the pinned maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Meta {
    pub abi_version: u32,
    /// Seed of the connection tables' hash, random when the tables are created and kept
    /// with them (a new seed would lose every flow).
    pub conn_seed: u32,
    /// The timeouts the loaded program applies (for readers such as `xlb conns`).
    pub timeouts: Timeouts,
}

/// Entries of `xlb_icmp_fwd`: index 0 counts ICMP (IPv4), 1 ICMPv6.
pub const ICMP_FWD_KINDS: u32 = 2;

macro_rules! reasons {
    ($(#[$m:meta])* $name:ident, $count:ident, $names:ident { $($(#[$vm:meta])* $v:ident = $n:literal => $s:literal,)* }) => {
        $(#[$m])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v = $n,)* }
        /// Entries of the counter map (one per reason).
        pub const $count: u32 = [$($n,)*].len() as u32;
        /// The reasons' names, by index (what `xlb status` prints).
        pub const $names: &[&str] = &[$($s,)*];
    };
}

reasons!(
    /// Why a packet for a virtual service was dropped (index into `xlb_drops`).
    DropReason, DROP_REASONS, DROP_REASON_NAMES {
        /// The service has no real server that takes new flows.
        NoRealServer = 0 => "no_real_server",
        /// The scheduling table pointed at an unusable slot (a swap in progress).
        RealServerUnusable = 1 => "real_server_unusable",
        /// The director's MAC on the real server's interface is unknown.
        NoEgressIface = 2 => "no_egress_iface",
        /// `bpf_redirect` to the real server's interface failed.
        RedirectFailed = 3 => "redirect_failed",
        /// A NAT reply whose way back to the client `bpf_fib_lookup` refused (no route,
        /// forwarding disabled on the interface, too big for the egress MTU).
        NatNoRoute = 4 => "nat_no_route",
    }
);

reasons!(
    /// Why a packet went to the host stack untouched (index into `xlb_passes`).
    PassReason, PASS_REASONS, PASS_REASON_NAMES {
        /// Shorter than the headers it announces.
        Truncated = 0 => "truncated",
        /// Not IPv4 or IPv6 (ARP, LLDP, ...).
        NotIp = 1 => "not_ip",
        /// Not TCP or UDP (ICMP, VRRP, ...), or an IPv6 extension header.
        NotTcpUdp = 2 => "not_tcp_udp",
        /// An IPv4 fragment.
        Fragment = 3 => "fragment",
        /// IPv4 header with options.
        IpOptions = 4 => "ip_options",
        /// No virtual service at that address, port and protocol.
        NotVirtualService = 5 => "not_virtual_service",
        /// The service exists but this director does not forward it (not MASTER).
        Inactive = 6 => "inactive",
        /// More than one VLAN tag.
        StackedVlan = 7 => "stacked_vlan",
        /// An ICMP "fragmentation needed" / ICMPv6 "packet too big" whose embedded header
        /// is truncated, not of the outer family, or an IPv4 header with options.
        IcmpMalformed = 8 => "icmp_malformed",
        /// An ICMP "fragmentation needed" / ICMPv6 "packet too big" about a protocol other
        /// than TCP or UDP (or an IPv6 extension header).
        IcmpInnerNotTcpUdp = 9 => "icmp_inner_not_tcp_udp",
        /// An ICMP "fragmentation needed" / ICMPv6 "packet too big" about no tracked flow
        /// (not from a VIP, expired, persistence only, or its real server gone).
        IcmpNoFlow = 10 => "icmp_no_flow",
        /// A packet from a NAT real server's address and port that is no reply of a live
        /// flow (none, expired, or moved to another real server): untranslated.
        NatNoFlow = 11 => "nat_no_flow",
        /// A NAT reply with TTL / hop limit 1: the stack answers "time exceeded".
        NatTtl = 12 => "nat_ttl",
        /// An ICMP "fragmentation needed" / "packet too big" about a NAT flow (not
        /// translated into the real server's addresses).
        IcmpNat = 13 => "icmp_nat",
    }
);

reasons!(
    /// What became of a NAT reply translated back to the VIP (index into `xlb_nat_stats`).
    NatEvent, NAT_EVENTS, NAT_EVENT_NAMES {
        /// Translated and sent to the next hop `bpf_fib_lookup` gave.
        Forwarded = 0 => "forwarded",
        /// Translated and handed to the host stack: no neighbour entry for the next hop
        /// yet (the stack resolves it and forwards this one).
        ToStack = 1 => "to_stack",
    }
);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are #[repr(C)], contain only integers and byte arrays, and
    // have no implicit padding (asserted below).
    unsafe impl aya::Pod for ServiceKey {}
    unsafe impl aya::Pod for ServiceInfo {}
    unsafe impl aya::Pod for RealServer {}
    unsafe impl aya::Pod for FlowKey {}
    unsafe impl aya::Pod for FlowKey4 {}
    unsafe impl aya::Pod for ConnBucket4 {}
    unsafe impl aya::Pod for ConnBucket6 {}
    unsafe impl aya::Pod for PersistKey {}
    unsafe impl aya::Pod for PersistValue {}
    unsafe impl aya::Pod for Counters {}
    unsafe impl aya::Pod for Meta {}
    unsafe impl aya::Pod for Timeouts {}
    unsafe impl aya::Pod for RealConns {}
    unsafe impl aya::Pod for NatReply {}
}

// No implicit padding anywhere: the sum of the fields is the size.
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<ServiceKey>() == 16 + 2 + 1 + 1);
    assert!(size_of::<ServiceInfo>() == 6 * 4);
    assert!(size_of::<RealServer>() == 16 + 2 + 2 + 4 * 4 + 6 + 6);
    assert!(size_of::<FlowKey>() == 16 + 16 + 2 + 2 + 1 + 3);
    assert!(size_of::<FlowKey4>() == 16);
    assert!(core::mem::align_of::<FlowKey>() == 8 && core::mem::align_of::<FlowKey4>() == 8);
    assert!(size_of::<ConnValue>() == 16);
    assert!(size_of::<Conn4>() == 32 && size_of::<Conn6>() == 64);
    assert!(size_of::<ConnBucket4>() == 128 && size_of::<ConnBucket6>() == 256);
    assert!(size_of::<PersistKey>() == 20);
    assert!(size_of::<PersistValue>() == 16);
    assert!(size_of::<Counters>() == 24);
    assert!(size_of::<Meta>() == 8 + 20);
    assert!(size_of::<RealConns>() == 16);
    assert!(size_of::<NatReply>() == 16 + 2 + 2 + 4);
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn mac_words_are_the_first_twelve_bytes_of_the_ethernet_header() {
        let real = RealServer {
            mac: [1, 2, 3, 4, 5, 6],
            src_mac: [7, 8, 9, 10, 11, 12],
            ..Default::default()
        };
        let mut header = [0u8; 12];
        for (i, word) in real.mac_words().iter().enumerate() {
            header[4 * i..4 * i + 4].copy_from_slice(&word.to_ne_bytes());
        }
        assert_eq!(header, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn a_real_server_serves_its_service_when_in_use_alive_and_resolved() {
        let usable = RealServer {
            service_id: 3,
            flags: REAL_F_IN_USE | REAL_F_ALIVE | REAL_F_MAC_VALID,
            ..Default::default()
        };
        assert!(usable.serves(3));
        assert!(!usable.serves(4), "another service's flow");
        for flag in [REAL_F_IN_USE, REAL_F_ALIVE, REAL_F_MAC_VALID] {
            let r = RealServer {
                flags: usable.flags & !flag,
                ..usable
            };
            assert!(!r.serves(3), "without flag {flag:#x}");
        }
    }

    #[test]
    fn sched_algo_round_trips_through_u32() {
        for (i, algo) in SchedAlgo::ALL.into_iter().enumerate() {
            assert_eq!(algo as usize, i);
            assert_eq!(SchedAlgo::from_u32(algo as u32), Some(algo));
        }
        assert_eq!(SchedAlgo::from_u32(12), None);
    }

    #[test]
    fn addresses_round_trip_through_their_16_byte_form() {
        let v4: core::net::IpAddr = "198.18.0.1".parse().unwrap();
        let v6: core::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(addr_of(v4), v4_mapped([198, 18, 0, 1]));
        assert_eq!(ip_of(&addr_of(v4)), v4);
        assert_eq!(ip_of(&addr_of(v6)), v6);
        assert_eq!(
            Mac(&[0, 0x1b, 0x21, 0xa, 0xb, 0xff]).to_string(),
            "00:1b:21:0a:0b:ff"
        );
    }

    #[test]
    fn reason_names_are_indexed_by_the_counter_index() {
        assert_eq!(DROP_REASONS as usize, DROP_REASON_NAMES.len());
        assert_eq!(PASS_REASONS as usize, PASS_REASON_NAMES.len());
        assert_eq!(
            DROP_REASON_NAMES[DropReason::NoEgressIface as usize],
            "no_egress_iface"
        );
        assert_eq!(
            PASS_REASON_NAMES[PassReason::StackedVlan as usize],
            "stacked_vlan"
        );
    }

    #[test]
    fn configured_timeouts_are_at_least_one_tick() {
        let t = Timeouts::from_seconds(0, 0, 0);
        assert_eq!((t.tcp, t.tcp_fin, t.udp), (1, 1, 1));
        assert_eq!(t.tcp_rst, Timeouts::IPVS.tcp_rst);
    }
}

//! Every map of the production program. Key and value types, names and capacities live in
//! `lb-common` (the controller's side of the ABI); field names reach `bpftool map dump`
//! through BTF. The controller pins each map under its pin directory by name and adopts
//! them on restart, so a name, type, size or flag changed here is an ABI change.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    macros::btf_map,
};
use lb_common::{
    CONN_BUCKETS4, CONN_BUCKETS6, CONN_EVICTION_KINDS, ConnBucket4, ConnBucket6, Counters,
    DROP_REASONS, FlowKey, ICMP_FWD_KINDS, MAX_NAT_FLOWS, MAX_PERSIST, MAX_REALS, MAX_SERVICES,
    Meta, NAT_EVENTS, NatReply, PASS_REASONS, PersistKey, PersistValue, RealConns, RealServer,
    ServiceInfo, ServiceKey, TABLE_CAPACITY,
};

/// Virtual services by address, port, protocol; replaced whole (no-prealloc hash: a reader
/// never sees a half-written value).
#[btf_map(name = "xlb_services")]
pub static SERVICES: HashMap<
    ServiceKey,
    ServiceInfo,
    { MAX_SERVICES as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

/// Real-server slots; mmap-able: the controller reads all of them as memory
/// (`lb-userspace/src/dataplane/mmap.rs`). Sized at load from the config
/// (`lb-userspace/src/dataplane/sizing.rs`); the size here is the most it gets.
#[btf_map(name = "xlb_reals")]
pub static REALS: Array<RealServer, { MAX_REALS as usize }, { BPF_F_MMAPABLE as usize }> =
    Array::new();

/// The scheduling-table arena (real-server indexes); mmap-able: the controller writes
/// whole tables as memory. Sized at load from the config, as `xlb_reals`.
#[btf_map(name = "xlb_table")]
pub static TABLE: Array<u32, { TABLE_CAPACITY as usize }, { BPF_F_MMAPABLE as usize }> =
    Array::new();

/// Client affinity (`persistence_timeout`): a client's last real server per service.
#[btf_map(name = "xlb_persist")]
pub static PERSIST: LruHashMap<PersistKey, PersistValue, { MAX_PERSIST as usize }> =
    LruHashMap::new();

/// Round-robin cursor per service id, per CPU.
#[btf_map(name = "xlb_cursors")]
pub static CURSORS: PerCpuArray<u32, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// `SVC_F_ACTIVE` per service id, for the established path (see `forward`).
#[btf_map(name = "xlb_svc_state")]
pub static SVC_STATE: Array<u32, { MAX_SERVICES as usize }> = Array::new();

/// Traffic counters per service id.
#[btf_map(name = "xlb_svc_stats")]
pub static SERVICE_STATS: PerCpuArray<Counters, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// Traffic counters per real-server index (as many as `xlb_reals` has).
#[btf_map(name = "xlb_real_stats")]
pub static REAL_STATS: PerCpuArray<Counters, { MAX_REALS as usize }> = PerCpuArray::new();

/// Dropped packets per `DropReason`.
#[btf_map(name = "xlb_drops")]
pub static DROPS: PerCpuArray<u64, { DROP_REASONS as usize }> = PerCpuArray::new();

/// Packets passed to the host stack per `PassReason`.
#[btf_map(name = "xlb_passes")]
pub static PASSES: PerCpuArray<u64, { PASS_REASONS as usize }> = PerCpuArray::new();

/// Written by userspace only: the layout version, and the connection tables' hash seed
/// (which the program gets as a load-time constant, `conns::seed`).
#[btf_map(name = "xlb_meta")]
pub static META: Array<Meta, 1> = Array::new();

/// IPv4 connections (`lb_common::conn`); mmap-able, so that `xlb status` and tests read a
/// table without a syscall per bucket. Sized at load (`connection_table_size`).
#[btf_map(name = "xlb_conns4")]
pub static CONNS4: Array<ConnBucket4, { CONN_BUCKETS4 as usize }, { BPF_F_MMAPABLE as usize }> =
    Array::new();

/// IPv6 connections, as `xlb_conns4`.
#[btf_map(name = "xlb_conns6")]
pub static CONNS6: Array<ConnBucket6, { CONN_BUCKETS6 as usize }, { BPF_F_MMAPABLE as usize }> =
    Array::new();

/// What new flows did in full buckets, by `lb_common::CONN_EVICTED_*` / `CONN_NOT_TRACKED`:
/// a half-open slot evicted (a SYN flood), an idle established one (the table is too
/// small), or none (every slot active: the new flow went untracked).
#[btf_map(name = "xlb_conn_evictions")]
pub static CONN_EVICTIONS: PerCpuArray<u64, { CONN_EVICTION_KINDS as usize }> = PerCpuArray::new();

/// ICMP "fragmentation needed" (index 0) / ICMPv6 "packet too big" (1) forwarded to the
/// real server of their flow (`icmp`).
#[btf_map(name = "xlb_icmp_fwd")]
pub static ICMP_FWD: PerCpuArray<u64, { ICMP_FWD_KINDS as usize }> = PerCpuArray::new();

/// ActiveConn / InActConn per real-server index (`lb_common::sched::RealConns`), kept
/// for services whose scheduler counts connections (`sched`); mmap-able: the controller
/// writes its correction fields in place, never the program's. Sized at load as
/// `xlb_reals`.
#[btf_map(name = "xlb_real_conns")]
pub static REAL_CONNS: Array<RealConns, { MAX_REALS as usize }, { BPF_F_MMAPABLE as usize }> =
    Array::new();

/// NAT flows by their reply tuple (`nat`): written for each new NAT flow, read for each
/// reply. An LRU hash: entries of flows long gone are recycled first.
#[btf_map(name = "xlb_nat_rev")]
pub static NAT_REPLIES: LruHashMap<FlowKey, NatReply, { MAX_NAT_FLOWS as usize }> =
    LruHashMap::new();

/// The NAT real servers' endpoints (address, port, protocol; port 0: every port), written
/// by the controller: what makes a packet for no service a real server's (`nat`).
#[btf_map(name = "xlb_nat_reals")]
pub static NAT_REALS: HashMap<
    ServiceKey,
    u32,
    { MAX_REALS as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

/// NAT replies translated, per `lb_common::NatEvent`.
#[btf_map(name = "xlb_nat_stats")]
pub static NAT_STATS: PerCpuArray<u64, { NAT_EVENTS as usize }> = PerCpuArray::new();

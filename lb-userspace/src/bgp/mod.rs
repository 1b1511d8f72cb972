//! Active-active directors behind ECMP routers: VIPs with `announce = "bgp"` announced
//! through BIRD while this director can serve them.
//!
//! - `wanted`: pure, which VIPs to announce now and why not the others;
//! - `routes`: the blackhole host routes (protocol 201) in xlb's kernel table that BIRD's
//!   `kernel` protocol learns: add, remove, list, remove all (`xlb teardown`);
//! - `bird`: the BIRD include and a whole director bird.conf (`xlb bird-config`);
//! - `status`: what `xlb status` shows of it; `metrics`: the `xlb_bgp_*` families.
//!
//! The daemon's side (when to decide, resync, withdraw on stop) is `daemon::announcer`.

pub mod bird;
pub mod metrics;
pub mod routes;
pub mod status;
pub mod wanted;

//! VRRP (RFC 3768 v2, RFC 5798 / 9568 v3), as keepalived runs it.
//!
//! - `packet`: the wire codec and the receive checks (pure).
//! - `machine`: the state machine, a function of (state, event, now) -> actions (pure).
//! - `net`: the raw IP-protocol-112 sockets (multicast and unicast, TTL 255).
//! - `vip`: adding and removing the VIPs, gratuitous ARP / unsolicited NA and their timing.
//! - `track`: `vrrp_script` trackers, tracked-interface weights and notify commands.
//! - `instance`: the task that drives one instance with all of the above.

pub mod instance;
pub mod machine;
pub mod net;
pub mod packet;
pub mod track;
pub mod vip;

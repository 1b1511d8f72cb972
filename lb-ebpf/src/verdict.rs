//! Why a packet was not forwarded: the error of every step, counted by the entry point in
//! `xlb_passes` / `xlb_drops`.

use lb_common::{DropReason, PassReason};

pub enum Verdict {
    /// To the host stack, untouched.
    Pass(PassReason),
    /// For a virtual service that cannot take it.
    Drop(DropReason),
}

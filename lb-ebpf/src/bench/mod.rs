//! XDP programs for `cargo xtask bench` only; xlb itself never loads them. They live in
//! xlb's object so that the bench measures the code xlb ships, built the same way.
//!
//! - `traffic`: the forwarding benchmark's generator, sink and forwarding ceilings.
//! - `micro`: one map operation each, to tell what xlb's per-packet steps cost.
//! - `newflow`: new flows in a hot loop, through xlb's program by tail call.
//! - `prototype`: an alternative established path, measured against xlb's.
//!
//! Every map here is declared with one entry (or a few): the object is shared with xlb,
//! which creates all of its maps on load. The bench sets real sizes with
//! `EbpfLoader::map_max_entries`. The config structs are `lb_common::bench`.

mod micro;
mod newflow;
mod prototype;
mod traffic;

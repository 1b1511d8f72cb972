//! xlb's controller as a library: `main.rs` is a thin command-line layer over it, and
//! the privileged integration tests drive the same pieces.

pub mod arena;
pub mod config;
pub mod dataplane;
pub mod neighbor;
pub mod realserver;
pub mod sched;

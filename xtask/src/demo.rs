//! `cargo xtask demo`: a whole HA cluster (two directors, real servers, a client) in network
//! namespaces, showing balancing and failover. Placeholder until the lead fills it in.

use anyhow::Result;

pub fn demo() -> Result<()> {
    println!("not yet");
    Ok(())
}

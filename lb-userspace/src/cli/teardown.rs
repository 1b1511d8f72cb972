//! `xlb teardown`: detach XDP and remove the pinned maps, saying what went.

use std::path::Path;

use anyhow::Result;

/// Detaches and unpins everything under `pin_path`, and prints each path removed.
pub fn teardown(pin_path: &Path) -> Result<()> {
    let removed = crate::dataplane::teardown(pin_path)?;
    if removed.is_empty() {
        println!("nothing pinned under {}", pin_path.display());
    }
    for p in removed {
        println!("removed {}", p.display());
    }
    Ok(())
}

//! Connection sync between directors (keepalived's `lvs_sync_daemon`, IPVS's sync
//! daemon): the MASTER of `sync.instance` sends new and changed connection entries and
//! persistence templates to its peers; a BACKUP installs them in its own tables, so after
//! a failover every established flow keeps its real server, whatever the scheduler.
//!
//! `wire` (the datagram, pure), `auth` (HMAC), `directory` (slots and ids to addresses),
//! `table` (scanning and installing), `sender` (what is due, the rate budget, pure),
//! `digest` (mh/sh tables: flows both directors schedule alike are not sent), `status`
//! (`xlb status` and metrics), `task` (the socket and the loop).

pub mod auth;
pub mod batch;
pub mod digest;
pub mod directory;
pub mod metrics;
pub mod sender;
pub mod status;
pub mod table;
pub mod task;
pub mod wire;

pub use status::{SyncStatus, status_path};
pub use task::{Settings, SyncTask, start};

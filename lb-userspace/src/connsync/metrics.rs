//! `xlb_conn_sync_*`: the sync task's counters on the Prometheus endpoint.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::SyncStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    instance: String,
}

fn counter(reg: &mut Registry, name: &str, help: &str, n: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(n);
    reg.register(name, help, c);
}

/// Registers the metrics of `s` under the `xlb_` prefix of `reg`.
pub fn register(reg: &mut Registry, s: &SyncStatus) {
    let master = Family::<RoleLabels, Gauge>::default();
    master
        .get_or_create(&RoleLabels {
            instance: s.instance.clone(),
        })
        .set(i64::from(s.role == "master"));
    reg.register(
        "conn_sync_master",
        "1 while this director sends connection entries (MASTER of the sync instance), 0 while it receives",
        master,
    );
    counter(
        reg,
        "conn_sync_sent_entries",
        "Connection entries sent to the peers",
        s.sent_entries,
    );
    counter(
        reg,
        "conn_sync_sent_datagrams",
        "Sync datagrams sent (one per destination)",
        s.sent_datagrams,
    );
    counter(
        reg,
        "conn_sync_sent_bytes",
        "Bytes of sync datagrams sent (UDP payload)",
        s.sent_bytes,
    );
    counter(
        reg,
        "conn_sync_received_datagrams",
        "Sync datagrams received",
        s.received_datagrams,
    );
    counter(
        reg,
        "conn_sync_installed_entries",
        "Received entries installed in the connection tables",
        s.installed,
    );
    counter(
        reg,
        "conn_sync_lost_datagrams",
        "Datagrams of a peer that never arrived (sequence gaps)",
        s.lost,
    );
    let drops = Family::<ReasonLabels, Counter>::default();
    for (reason, n) in &s.drops {
        drops
            .get_or_create(&ReasonLabels {
                reason: reason.clone(),
            })
            .inc_by(*n);
    }
    reg.register(
        "conn_sync_dropped_datagrams",
        "Sync datagrams dropped, by reason",
        drops,
    );
    let skipped = Family::<ReasonLabels, Counter>::default();
    for (reason, n) in &s.skipped {
        skipped
            .get_or_create(&ReasonLabels {
                reason: reason.clone(),
            })
            .inc_by(*n);
    }
    reg.register(
        "conn_sync_skipped_entries",
        "Received entries not installed, by reason",
        skipped,
    );
    let synced = Gauge::<i64>::default();
    synced.set(s.flows_synced as i64);
    reg.register(
        "conn_sync_flows",
        "Live flows the peers were told about (master)",
        synced,
    );
    let scan = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    scan.set(s.last_scan_us as f64 / 1e6);
    reg.register(
        "conn_sync_scan_seconds",
        "Duration of the last scan of the connection tables",
        scan,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_metrics_carry_counters_and_reasons() {
        let mut s = SyncStatus {
            instance: "VI_1".into(),
            role: "master".into(),
            sent_entries: 50,
            ..SyncStatus::default()
        };
        s.drop("bad_hmac");
        let mut reg = Registry::with_prefix("xlb");
        register(&mut reg, &s);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        for line in [
            "xlb_conn_sync_master{instance=\"VI_1\"} 1",
            "xlb_conn_sync_sent_entries_total 50",
            "xlb_conn_sync_dropped_datagrams_total{reason=\"bad_hmac\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing:\n{out}");
        }
    }
}

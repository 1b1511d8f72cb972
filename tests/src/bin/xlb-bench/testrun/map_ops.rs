//! Single map operations with `BPF_PROG_TEST_RUN`: the micro-benchmark programs of
//! lb-ebpf/src/bench/ (a lookup, an insert, a counter update, a random bucket read), each
//! over its baseline, and the prototype of a cheaper established path: what xlb's steps
//! cost.

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData},
};
use integration_tests::{DIRECTOR_MAC, TEST_IFINDEX, real_mac};
use lb_common::{
    MAX_CONNS, SVC_F_ACTIVE,
    bench::{PROTO_REAL_USABLE, ProtoFlow, ProtoReal},
};

use super::{
    SMALL_TABLE,
    harness::{EST_CLIENT, EST_PORT, VIP, XDP_DROP, XDP_TX, timed},
};
use crate::{
    objs,
    report::{Report, Section, Summary},
};

/// The prototype of a cheaper established path (lb-ebpf/src/bench/prototype.rs).
const PROTO: &str = "xlb_bench_proto_established";
const PROTO_SVC: u32 = 3;
const PROTO_REAL: u32 = 5;

/// The prototype's connection key of the established test frame.
fn proto_key() -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(&EST_CLIENT.octets());
    k[4..8].copy_from_slice(&VIP.octets());
    k[8..10].copy_from_slice(&EST_PORT.to_le_bytes());
    k[10..12].copy_from_slice(&80u16.to_le_bytes());
    k[12] = 6;
    k
}

struct Micro {
    key: &'static str,
    program: &'static str,
    what: &'static str,
    /// Subtract this program's time instead of the empty one's.
    baseline: Option<&'static str>,
}

const MICRO: &[Micro] = &[
    Micro {
        key: "hash_u32_lookup",
        program: "xlb_bench_m_hash4",
        what: "hash lookup, u32 key (as xlb_ifaces before 18c2dc8)",
        baseline: None,
    },
    Micro {
        key: "hash_20b_lookup",
        program: "xlb_bench_m_hash20",
        what: "hash lookup, 20-byte key, no-prealloc (as xlb_services, new flows)",
        baseline: None,
    },
    Micro {
        key: "array_lookup",
        program: "xlb_bench_m_array",
        what: "array lookup (as xlb_reals)",
        baseline: None,
    },
    Micro {
        key: "lru_40b_lookup",
        program: "xlb_bench_m_lru40",
        what: "LRU hit, 40-byte key (as xlb_conns)",
        baseline: None,
    },
    Micro {
        key: "lru_16b_lookup",
        program: "xlb_bench_m_lru16",
        what: "LRU hit, 16-byte key (IPv4-only flow key)",
        baseline: None,
    },
    Micro {
        key: "percpu_counters",
        program: "xlb_bench_m_stats",
        what: "two per-CPU counter updates (svc + real stats)",
        baseline: None,
    },
    Micro {
        key: "lru_40b_miss_insert",
        program: "xlb_bench_m_lru40_new",
        what: "LRU miss + insert, 40-byte key, common LRU (full: evicting)",
        baseline: Some("xlb_bench_m_seq"),
    },
    Micro {
        key: "lru_40b_miss_insert_percpu",
        program: "xlb_bench_m_lru40p_new",
        what: "the same with BPF_F_NO_COMMON_LRU",
        baseline: Some("xlb_bench_m_seq"),
    },
    Micro {
        key: "hash_40b_update",
        program: "xlb_bench_m_hash40_new",
        what: "plain prealloc hash (not LRU) write, 40-byte key",
        baseline: Some("xlb_bench_m_seq"),
    },
    Micro {
        key: "lru_16b_miss_insert",
        program: "xlb_bench_m_lru16_new",
        what: "the same, common LRU, 16-byte key",
        baseline: Some("xlb_bench_m_seq"),
    },
    Micro {
        key: "random_bucket_16mib",
        program: "xlb_bench_m_bucket_big",
        what: "read of a random 128-byte bucket, 16 MiB table (default xlb_conns4)",
        baseline: Some("xlb_bench_m_seq"),
    },
    Micro {
        key: "random_bucket_512kib",
        program: "xlb_bench_m_bucket_small",
        what: "the same, 512 KiB table (16,384 slots)",
        baseline: Some("xlb_bench_m_seq"),
    },
];

pub fn load_micro() -> Result<Ebpf> {
    let mut names: Vec<&str> = MICRO.iter().map(|m| m.program).collect();
    names.push("xlb_bench_m_seq");
    names.push("xlb_pass");
    names.push(PROTO);
    let conns = MAX_CONNS;
    let mut ebpf = objs::load(
        &names,
        &[
            ("xlb_bench_map_hash4", 256),
            ("xlb_bench_map_hash20", 4096),
            ("xlb_bench_map_array", 65536),
            ("xlb_bench_map_lru40", conns),
            ("xlb_bench_map_lru16", conns),
            ("xlb_bench_map_lru40p", conns),
            ("xlb_bench_map_hash40", conns),
            ("xlb_bench_map_p_conns", conns),
            ("xlb_bench_map_p_svc", lb_common::MAX_SERVICES),
            ("xlb_bench_map_p_reals", lb_common::MAX_REALS),
            ("xlb_bench_map_bucket_big", lb_common::CONN_BUCKETS4),
            ("xlb_bench_map_bucket_small", SMALL_TABLE / 4),
        ],
    )?;
    // The prototype's state for the established test frame (see proto_key).
    let m = ebpf.map_mut("xlb_bench_map_p_conns").context("p_conns")?;
    HashMap::<&mut MapData, [u8; 16], ProtoFlow>::try_from(m)?.insert(
        proto_key(),
        ProtoFlow {
            real: PROTO_REAL,
            service_id: PROTO_SVC,
        },
        0,
    )?;
    let m = ebpf.map_mut("xlb_bench_map_p_svc").context("p_svc")?;
    Array::<&mut MapData, u32>::try_from(m)?.set(PROTO_SVC, SVC_F_ACTIVE, 0)?;
    let m = ebpf.map_mut("xlb_bench_map_p_reals").context("p_reals")?;
    Array::<&mut MapData, ProtoReal>::try_from(m)?.set(
        PROTO_REAL,
        ProtoReal {
            mac: real_mac(11),
            src_mac: DIRECTOR_MAC,
            ifindex: TEST_IFINDEX,
            flags: PROTO_REAL_USABLE,
            service_id: PROTO_SVC,
        },
        0,
    )?;
    let m = ebpf.map_mut("xlb_bench_map_hash4").context("hash4")?;
    HashMap::<&mut MapData, u32, [u8; 8]>::try_from(m)?.insert(1, [0; 8], 0)?;
    let m = ebpf.map_mut("xlb_bench_map_hash20").context("hash20")?;
    HashMap::<&mut MapData, [u8; 20], [u8; 24]>::try_from(m)?.insert([1; 20], [0; 24], 0)?;
    let m = ebpf.map_mut("xlb_bench_map_array").context("array")?;
    Array::<&mut MapData, [u8; 48]>::try_from(m)?.set(0, [0; 48], 0)?;
    insert_lookup_keys(&mut ebpf)?;
    Ok(ebpf)
}

/// The keys `xlb_bench_m_lru40` and `xlb_bench_m_lru16` look up (to time a hit).
fn insert_lookup_keys(ebpf: &mut Ebpf) -> Result<()> {
    let m = ebpf.map_mut("xlb_bench_map_lru40").context("lru40")?;
    HashMap::<&mut MapData, [u8; 40], [u8; 8]>::try_from(m)?.insert([1; 40], [0; 8], 0)?;
    let m = ebpf.map_mut("xlb_bench_map_lru16").context("lru16")?;
    HashMap::<&mut MapData, [u8; 16], [u8; 8]>::try_from(m)?.insert([1; 16], [0; 8], 0)?;
    Ok(())
}

/// The section of single map operations (and the prototype), each timed on the
/// established test frame `est` `repeat` times a call; `empty_ns`: the empty program's
/// median on the same frame.
pub fn measure(
    micro: &mut Ebpf,
    est: &[u8],
    empty_ns: f64,
    repeat: u32,
    rounds: usize,
    report: &mut Report,
) -> Result<Section> {
    // Single map operations: what xlb's steps cost.
    let mut msec = Section::new(
        &format!("BPF_PROG_TEST_RUN: one map operation, ns over its baseline (repeat {repeat})"),
        &["operation", "ns", "baseline"],
    );
    let micro_rounds = rounds.min(5);
    // The insert programs run on full tables (every insert evicts or replaces), as the
    // connection table of a director that has seen many flows.
    for (name, n) in [
        ("xlb_bench_m_lru40_new", MAX_CONNS),
        ("xlb_bench_m_lru40p_new", MAX_CONNS),
        ("xlb_bench_m_lru16_new", MAX_CONNS),
        ("xlb_bench_m_hash40_new", 262_144),
    ] {
        timed(objs::xdp(micro, name)?, est, n + 1)?;
    }
    // Filling evicted the keys the LRU lookups hit: put them back.
    insert_lookup_keys(micro)?;
    // `want`: the action of a run that did its operation (the micro programs return
    // XDP_DROP, and XDP_ABORTED when a lookup or insert failed): a figure of failed runs
    // would time something else.
    let time_of = |name: &str, want: u32| -> Result<f64> {
        let prog = objs::xdp(micro, name)?;
        let mut v = Vec::new();
        for _ in 0..micro_rounds {
            let (action, t) = timed(prog, est, repeat)?;
            if action != want {
                bail!("{name} returned action {action}, not {want}: its operation failed");
            }
            v.push(t);
        }
        Ok(Summary::of(&v).map(|s| s.median).unwrap_or(f64::NAN))
    };
    let seq = time_of("xlb_bench_m_seq", XDP_DROP)?;
    for m in MICRO {
        let (base_name, base) = match m.baseline {
            Some("xlb_bench_m_seq") => ("the per-CPU sequence it keys on", seq),
            _ => ("empty program", empty_ns),
        };
        match time_of(m.program, XDP_DROP) {
            Ok(t) => {
                let d = t - base;
                msec.row(vec![m.what.into(), format!("{d:.1}"), base_name.into()]);
                report.set(&format!("testrun_ns_op_{}", m.key), d);
            }
            Err(e) => report.note(format!("micro-benchmark {}: {e:#}", m.key)),
        }
    }
    // The prototype: what the established path would cost with one hash lookup.
    let (action, _) = timed(objs::xdp(micro, PROTO)?, est, 1)?;
    if action == XDP_TX {
        let t = time_of(PROTO, XDP_TX)?;
        let d = t - empty_ns;
        msec.row(vec![
            "prototype: xlb's established path with a 16-byte IPv4 key (see below)".into(),
            format!("{d:.1}"),
            "empty program".into(),
        ]);
        report.set("testrun_ns_proto_established", t);
        report.set("testrun_ns_proto_established_over_empty", d);
    } else {
        report.fail(format!(
            "the established-path prototype returned {action}, not XDP_TX"
        ));
    }
    msec.note(
        "prototype (xlb_bench_proto_established, not xlb): the established path with an \
         LRU hash of 16-byte keys, the shape xlb had before its connection tables became \
         arrays of buckets (lb-common/src/conn.rs); kept as the reference xlb has to beat",
    );
    msec.note(
        "keys and buckets are cache-hot here; with many flows the lookups also miss the \
         cache (compare the 1 / 1,024 / 65,536-flow forwarding rows)",
    );
    msec.note(
        "random bucket: each read's address depends on the last one, so the figure is the \
         latency of the bucket miss a new flow pays on a table of that size, the part of \
         testrun_ns_new_flow that no change to xlb's instructions removes",
    );

    Ok(msec)
}

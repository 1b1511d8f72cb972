//! Scenario 5: `BPF_PROG_TEST_RUN` nanoseconds per packet of xlb's paths next to an empty
//! program, and of single map operations (what xlb's steps cost), plus the program's size.
//!
//! Established flows run with a large `repeat` (rewriting the MACs does not change the
//! decision, so the program's own output is a valid next input). A new flow needs a new
//! frame each time, so those run one call per frame (`repeat` = 1) and are compared with
//! the empty program timed the same way: the per-call timer overhead cancels out, but each
//! call starts with caches the syscall has cooled. Hence also the hot loop: a driver
//! program (`xlb_bench_newflow`) gives the frame a new source on every run of a `repeat`
//! and tail-calls xlb, against the same driver tail-calling the empty program.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, ProgramArray},
    programs::{ProgramFd, TestRun, TestRunOptions, Xdp},
};
use integration_tests::{
    DIRECTOR_MAC, Plane, TEST_IFINDEX, frames::Frame, pin_to_cpu, real_mac, service,
};
use lb_common::{
    Conn4, ConnBucket4, ConnValue, FlowKey4, MAX_CONNS, SVC_F_ACTIVE, SchedAlgo,
    bench::{PROTO_REAL_USABLE, ProtoFlow, ProtoReal},
    conn_check, conn_hash4,
};
use serde_json::json;

use crate::{
    Opts, objs,
    report::{Report, Section, Summary, f1, mmm},
    threads::AffinityGuard,
};

const XDP_DROP: u32 = 1;
const XDP_TX: u32 = 3;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const VIP6: &str = "2001:db8::100";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// ns per run of `prog` on `frame`, `repeat` times in one call.
fn timed(prog: &Xdp, frame: &[u8], repeat: u32) -> Result<(u32, f64)> {
    let ctx = objs::xdp_md(TEST_IFINDEX, frame.len());
    let mut out = vec![0u8; frame.len() + 256];
    let r = prog.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: Some(&ctx),
        repeat,
        ..TestRunOptions::default()
    })?;
    Ok((r.return_value, r.duration.as_nanos() as f64))
}

/// Average ns per call over `frames`, one call each.
fn timed_each(prog: &Xdp, frames: &[Vec<u8>]) -> Result<f64> {
    let mut total = 0.0;
    for f in frames {
        total += timed(prog, f, 1)?.1;
    }
    Ok(total / frames.len() as f64)
}

fn new_flow_frames(n: usize, seed: u32) -> Vec<Vec<u8>> {
    // Distinct 5-tuples: 198.19.x.y, ports from a simple LCG (no rand dependency here).
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let c = IpAddr::V4(Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8));
            let port = 1024 + (x >> 16) as u16 % 60_000;
            Frame::tcp(c, port, IpAddr::V4(VIP), 80).build()
        })
        .collect()
}

/// The prototype of a cheaper established path (lb-ebpf/src/bench/prototype.rs).
const PROTO: &str = "xlb_bench_proto_established";
const PROTO_SVC: u32 = 3;
const PROTO_REAL: u32 = 5;
const EST_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 1);
const EST_PORT: u16 = 40000;

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

fn load_micro() -> Result<Ebpf> {
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
    // The prototype's state for the established test frame (see proto_frame_key).
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

/// Slots of the cache-sized table of the second hot-loop row (512 KiB).
const SMALL_TABLE: u32 = 1 << 14;

/// The driver that makes every run a new flow, and what it tail-calls.
const NEWFLOW_DRIVER: &str = "xlb_bench_newflow";

fn set_newflow_target(nf: &mut Ebpf, fd: &ProgramFd) -> Result<()> {
    let m = nf
        .map_mut("xlb_bench_nf_progs")
        .context("xlb_bench_nf_progs")?;
    ProgramArray::try_from(m)?.set(0, fd, 0)?;
    Ok(())
}

/// Fills every slot of xlb's IPv4 connection table with a live flow, so that new flows
/// evict, as under a flood.
fn fill_conns(p: &Plane) -> Result<()> {
    let mut tables = p.sync.maps().conn_tables(true)?;
    let now = xlb::dataplane::conn_table::now_ticks();
    let seed = tables.seed;
    for b in 0..tables.v4.len() {
        let mut bucket = ConnBucket4::default();
        for (w, slot) in bucket.slots.iter_mut().enumerate() {
            let mut key = FlowKey4::default();
            key.saddr
                .copy_from_slice(&((b * 4 + w) as u32).to_le_bytes());
            key.proto = 17;
            let check = conn_check(conn_hash4(&key, seed), 0, u16::MAX);
            *slot = Conn4 {
                key,
                value: ConnValue {
                    real: 0,
                    service_id: u16::MAX,
                    state: 0,
                    proto: 17,
                    seen: now,
                    check,
                },
            };
        }
        tables.v4.set(b, bucket);
    }
    Ok(())
}

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let (rounds, repeat, new_n) = if opts.quick {
        (3, 200_000u32, 2_000usize)
    } else {
        (7, 2_000_000u32, 20_000usize)
    };
    // One CPU: per-CPU maps and caches behave the same in every round.
    let _restore = AffinityGuard::save();
    pin_to_cpu(0);

    let mut p = Plane::new("bench");
    let reals: Vec<(IpAddr, u32)> = (1..=4)
        .map(|i| (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10 + i)), 1))
        .collect();
    let reals6: Vec<(IpAddr, u32)> = (1..=4)
        .map(|i| (ip(&format!("2001:db8::{}", 0x10 + i)), 1))
        .collect();
    p.apply(&[
        service(IpAddr::V4(VIP), 80, true, SchedAlgo::Wrr, &reals),
        service(ip(VIP6), 80, true, SchedAlgo::Wrr, &reals6),
    ]);
    let mut micro = load_micro()?;
    let empty = objs::xdp(&micro, "xlb_pass")?;

    let est = Frame::tcp(IpAddr::V4(EST_CLIENT), EST_PORT, IpAddr::V4(VIP), 80).build();
    let est6 = Frame::tcp(ip("2001:db8:1::1"), 40000, ip(VIP6), 80).build();
    for f in [&est, &est6] {
        let (a, _) = timed(p.dataplane.program()?, f, 1)?;
        if a != XDP_TX {
            bail!("xlb did not forward the test frame (action {a})");
        }
    }

    let mut empty_v = Vec::new();
    let mut est_v = Vec::new();
    let mut est6_v = Vec::new();
    let mut empty1_v = Vec::new();
    let mut new_v = Vec::new();
    let mut new_full_v = Vec::new();
    // New flows in a hot loop, as under a flood: the driver gives the frame a new source
    // on every run and tail-calls xlb, or the empty program for the baseline.
    let mut nf = objs::load(&[NEWFLOW_DRIVER, "xlb_pass"], &[])?;
    let nf_empty = objs::xdp(&nf, "xlb_pass")?.fd()?.try_clone()?;
    let nf_xlb = p.dataplane.program()?.fd()?.try_clone()?;
    set_newflow_target(&mut nf, &nf_xlb)?;
    let (a, _) = timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, 1)?;
    if a != XDP_TX {
        bail!("xlb did not forward the driver's new flow (action {a})");
    }
    // The same with a table sized for the caches (global_defs.connection_table_size).
    let mut small = Plane::sized("bench-small", SMALL_TABLE);
    small.apply(&[service(IpAddr::V4(VIP), 80, true, SchedAlgo::Wrr, &reals)]);
    let nf_small = small.dataplane.program()?.fd()?.try_clone()?;
    let mut hot_empty_v = Vec::new();
    let mut hot_new_v = Vec::new();
    let mut hot_small_v = Vec::new();
    for _ in 0..rounds {
        set_newflow_target(&mut nf, &nf_empty)?;
        hot_empty_v.push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
        set_newflow_target(&mut nf, &nf_xlb)?;
        hot_new_v.push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
        set_newflow_target(&mut nf, &nf_small)?;
        hot_small_v.push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
    }
    for round in 0..rounds {
        empty_v.push(timed(empty, &est, repeat)?.1);
        est_v.push(timed(p.dataplane.program()?, &est, repeat)?.1);
        est6_v.push(timed(p.dataplane.program()?, &est6, repeat)?.1);
        let frames = new_flow_frames(new_n, round as u32 + 1);
        empty1_v.push(timed_each(empty, &frames)?);
        new_v.push(timed_each(p.dataplane.program()?, &frames)?);
    }
    // The same with the connection table full: every insert evicts (a SYN flood, or the
    // live new-flow scenario).
    let fill_started = Instant::now();
    match fill_conns(&p) {
        Ok(()) => {
            for round in 0..rounds {
                let frames = new_flow_frames(new_n, 1000 + round as u32);
                new_full_v.push(timed_each(p.dataplane.program()?, &frames)?);
            }
        }
        Err(e) => report.note(format!(
            "filling xlb_conns4 for the evicting new-flow run: {e:#}"
        )),
    }
    let fill_secs = fill_started.elapsed().as_secs_f64();

    let s = |v: &[f64]| Summary::of(v);
    let empty_s = s(&empty_v);
    let empty1_s = s(&empty1_v);
    let over = |x: Option<Summary>, base: Option<Summary>| match (x, base) {
        (Some(x), Some(b)) => Some(x.median - b.median),
        _ => None,
    };
    let mut sec = Section::new(
        &format!(
            "BPF_PROG_TEST_RUN: ns per packet ({rounds} rounds; established: repeat {repeat}; \
             new flows: {new_n} frames, one call each)"
        ),
        &["path", "min", "median", "max", "over empty", "aim"],
    );
    /// A row: figure key, label, rounds, baseline to subtract, aim.
    type Row<'a> = (&'a str, &'a str, &'a [f64], Option<Summary>, &'a str);
    let hot_empty_s = s(&hot_empty_v);
    let rows: [Row; 9] = [
        (
            "testrun_ns_empty",
            "empty program (repeat)",
            &empty_v,
            None,
            "",
        ),
        (
            "testrun_ns_established",
            "xlb IPv4 established",
            &est_v,
            empty_s,
            "<= 60",
        ),
        (
            "testrun_ns_established_ipv6",
            "xlb IPv6 established",
            &est6_v,
            empty_s,
            "",
        ),
        (
            "testrun_ns_empty_repeat1",
            "empty program (one call per frame)",
            &empty1_v,
            None,
            "",
        ),
        (
            "testrun_ns_new_flow_one_call",
            "xlb IPv4 new flow (one call per frame)",
            &new_v,
            empty1_s,
            "",
        ),
        (
            "testrun_ns_newflow_driver",
            "new-flow driver + empty program (repeat)",
            &hot_empty_v,
            None,
            "",
        ),
        (
            "testrun_ns_new_flow",
            "xlb IPv4 new flow, hot loop (driver + xlb)",
            &hot_new_v,
            hot_empty_s,
            "<= 150",
        ),
        (
            "testrun_ns_new_flow_small_table",
            "the same, 16,384-slot table (512 KiB)",
            &hot_small_v,
            hot_empty_s,
            "<= 150",
        ),
        (
            "testrun_ns_new_flow_table_full",
            "xlb IPv4 new flow, table full (evicting; one call per frame)",
            &new_full_v,
            empty1_s,
            "",
        ),
    ];
    for (key, label, v, base, aim) in rows {
        let sum = s(v);
        let [a, b, c] = mmm(sum, f1);
        let delta = if base.is_some() {
            over(sum, base)
        } else {
            None
        };
        sec.row(vec![label.into(), a, b, c, f1(delta), aim.into()]);
        if let Some(x) = sum {
            report.set(key, x.median);
            report.detail(key, x.json(v));
        }
        if let Some(d) = delta {
            report.set(&format!("{key}_over_empty"), d);
        }
    }
    report.set("testrun_conns_fill_seconds", fill_secs);

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
        timed(objs::xdp(&micro, name)?, &est, n + 1)?;
    }
    // Filling evicted the keys the LRU lookups hit: put them back.
    insert_lookup_keys(&mut micro)?;
    // `want`: the action of a run that did its operation (the micro programs return
    // XDP_DROP, and XDP_ABORTED when a lookup or insert failed): a figure of failed runs
    // would time something else.
    let time_of = |name: &str, want: u32| -> Result<f64> {
        let prog = objs::xdp(&micro, name)?;
        let mut v = Vec::new();
        for _ in 0..micro_rounds {
            let (action, t) = timed(prog, &est, repeat)?;
            if action != want {
                bail!("{name} returned action {action}, not {want}: its operation failed");
            }
            v.push(t);
        }
        Ok(Summary::of(&v).map(|s| s.median).unwrap_or(f64::NAN))
    };
    let seq = time_of("xlb_bench_m_seq", XDP_DROP)?;
    let empty_med = empty_s.map(|s| s.median).unwrap_or(f64::NAN);
    for m in MICRO {
        let (base_name, base) = match m.baseline {
            Some("xlb_bench_m_seq") => ("the per-CPU sequence it keys on", seq),
            _ => ("empty program", empty_med),
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
    let (action, _) = timed(objs::xdp(&micro, PROTO)?, &est, 1)?;
    if action == XDP_TX {
        let t = time_of(PROTO, XDP_TX)?;
        let d = t - empty_med;
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

    // The program itself.
    let info = p.dataplane.program()?.info()?;
    let xlated = info.size_translated();
    let jited = info.size_jitted();
    let insns = info.verified_instruction_count();
    report.set("xlb_prog_xlated_bytes", xlated.map(|v| v as u64));
    report.set("xlb_prog_jited_bytes", jited as u64);
    report.set("xlb_prog_verified_insns", insns.map(|v| v as u64));
    report.set(
        "xlb_prog_map_count",
        info.map_ids()?.map(|m| m.len() as u64),
    );
    sec.note(
        "new flow: testrun_ns_new_flow is the hot loop (every run of a repeat a new flow, \
         the driver's own cost subtracted); a call per frame also pays the caches each \
         syscall cools, and moves by 2x between runs (testrun_ns_new_flow_one_call)",
    );
    sec.note(format!(
        "xlb_xdp: {} xlated bytes ({} BPF instructions), {} JITed bytes, {} instructions \
         verified",
        xlated.map(|v| v.to_string()).unwrap_or("?".into()),
        xlated.map(|v| (v / 8).to_string()).unwrap_or("?".into()),
        jited,
        insns.map(|v| v.to_string()).unwrap_or("?".into()),
    ));
    report.detail(
        "testrun_program",
        json!({
            "xlated_bytes": xlated, "jited_bytes": jited, "verified_insns": insns,
            "repeat": repeat, "new_flow_frames": new_n, "rounds": rounds,
        }),
    );
    report.sections.push(sec);
    report.sections.push(msec);
    Ok(())
}

//! From the rounds' samples to the forwarding table, the `mpps_*`, `program_ns_*` and
//! `ratio_*` figures and the `forward_*` detail of latest.json. Ratios are taken between
//! neighbours: against the baseline that led the scenario's group, measured just before it.

use std::{collections::BTreeMap, time::Duration};

use serde_json::json;

use super::{
    generator::{GEN_CPU, Sample},
    napi::FWD_CPU,
    scenarios::Scenario,
};
use crate::report::{Report, Section, Summary, f2, mmm};

/// Everything the forwarding rounds measured.
#[derive(Default)]
pub struct Measured {
    /// Every round's sample of each scenario.
    pub samples: BTreeMap<&'static str, Vec<Sample>>,
    /// For each scenario, the baseline that led its group and its samples, measured just
    /// before the scenario's.
    pub lead_of: BTreeMap<&'static str, (&'static str, Vec<Sample>)>,
    /// Scenarios not measured (further), and why.
    pub skipped: BTreeMap<&'static str, String>,
    /// The director program's run time per packet while forwarding (bpf_stats).
    pub prog_ns: BTreeMap<&'static str, f64>,
}

impl Measured {
    /// One figure of every round's sample of a scenario.
    pub fn column<T>(&self, key: &str, figure: impl Fn(&Sample) -> T) -> Vec<T> {
        self.samples
            .get(key)
            .map(|s| s.iter().map(figure).collect())
            .unwrap_or_default()
    }

    /// Per-round ratios of `rate` of `a` over `b`: against the baseline that led `a`'s
    /// group when that is `b` (measured just before it), else against the same round's.
    pub fn per_round(&self, a: &str, b: &str, rate: fn(&Sample) -> f64) -> Vec<f64> {
        let ratios = |x: &[Sample], y: &[Sample]| -> Vec<f64> {
            x.iter().zip(y).map(|(x, y)| rate(x) / rate(y)).collect()
        };
        if let (Some(x), Some((lead, y))) = (self.samples.get(a), self.lead_of.get(a)) {
            if *lead == b {
                return ratios(x, y);
            }
        }
        match (self.samples.get(a), self.samples.get(b)) {
            (Some(x), Some(y)) => ratios(x, y),
            _ => Vec::new(),
        }
    }
}

fn sink(s: &Sample) -> f64 {
    s.sink_mpps
}

fn flat(s: &Sample) -> f64 {
    s.flat_sink_mpps
}

/// The ratios of latest.json's top level: figure, scenario, the baseline it is over.
const RATIOS: &[(&str, &str, &str)] = &[
    (
        "ratio_established_over_ceiling",
        "xlb_established_1024",
        "ceiling",
    ),
    (
        "ratio_established_over_nftables",
        "xlb_established_1024",
        "nft_dnat_1024",
    ),
    (
        "ratio_established_1_over_ceiling",
        "xlb_established_1",
        "ceiling",
    ),
    (
        "ratio_established_65536_over_ceiling",
        "xlb_established_65536",
        "ceiling",
    ),
    (
        "ratio_established_65536_over_nftables",
        "xlb_established_65536",
        "nft_dnat_65536",
    ),
    ("ratio_new_flows_over_ceiling", "xlb_new_flows", "ceiling"),
    (
        "ratio_new_flows_over_nftables",
        "xlb_new_flows",
        "nft_dnat_1024",
    ),
    (
        "ratio_redirect_over_ceiling_redirect",
        "xlb_redirect_1024",
        "ceiling_redirect",
    ),
    (
        "ratio_redirect_over_nftables",
        "xlb_redirect_1024",
        "nft_dnat_1024",
    ),
    (
        "ratio_established_over_nftables_dsr",
        "xlb_established_1024",
        "nft_dsr_1024",
    ),
    (
        "ratio_nftables_dsr_over_dnat",
        "nft_dsr_1024",
        "nft_dnat_1024",
    ),
    (
        "ratio_proto_established_over_ceiling",
        "proto_established_1024",
        "ceiling",
    ),
    (
        "ratio_proto_over_xlb_established",
        "proto_established_1024",
        "xlb_established_1024",
    ),
];

/// The same two ratios with the generator flat out, as this bench measured them before it
/// searched for the peak: the difference is what overflow cost the slower row.
const FLAT_OUT_RATIOS: &[(&str, &str, &str)] = &[
    (
        "ratio_established_over_ceiling_flat_out",
        "xlb_established_1024",
        "ceiling",
    ),
    (
        "ratio_established_over_nftables_flat_out",
        "xlb_established_1024",
        "nft_dnat_1024",
    ),
];

/// The table's section, the figures and the detail of scenarios `all`.
pub fn report(
    report: &mut Report,
    all: &[Scenario],
    measured: &Measured,
    rounds: usize,
    window: Duration,
) {
    let m = measured;
    let mut sec = Section::new(
        &format!(
            "Forwarding: peak Mpps at the sink, 60-byte UDP frames; generator on CPU \
             {GEN_CPU}, director and sink on CPU {FWD_CPU} ({rounds} interleaved rounds of \
             {:.1} s)",
            window.as_secs_f64()
        ),
        &[
            "scenario",
            "min",
            "median",
            "max",
            "offered",
            "flat out",
            "lost",
            "CPU busy",
            "prog ns/pkt",
            "/ ceiling",
            "/ nft DNAT",
        ],
    );
    let median_over = |a: &str, b: &str| Summary::of(&m.per_round(a, b, sink)).map(|s| s.median);
    for sc in all {
        let v = m.column(sc.key, |s| s.sink_mpps);
        let offered = m.column(sc.key, |s| s.gen_mpps);
        let lost = m.column(sc.key, |s| s.lost);
        let flat_out = m.column(sc.key, flat);
        let gaps = m.column(sc.key, |s| s.gap_ns);
        let busy = m.column(sc.key, |s| s.director_busy);
        let pct = |v: &[f64]| {
            Summary::of(v)
                .map(|s| format!("{:.0}%", s.median * 100.0))
                .unwrap_or_else(|| "-".into())
        };
        let sum = Summary::of(&v);
        let [a, b, c] = mmm(sum, f2);
        let vs_ceiling = sc.ceiling().and_then(|c| median_over(sc.key, c));
        let vs_nft = sc.nft_dnat_peer().and_then(|n| median_over(sc.key, n));
        let prog_ns = m.prog_ns.get(sc.key);
        let mut row = vec![
            sc.label.to_string(),
            a,
            b,
            c,
            f2(Summary::of(&offered).map(|s| s.median)),
            f2(Summary::of(&flat_out).map(|s| s.median)),
            pct(&lost),
            pct(&busy),
            prog_ns
                .map(|n| format!("{n:.0}"))
                .unwrap_or_else(|| "-".into()),
            f2(vs_ceiling),
            f2(vs_nft),
        ];
        if let Some(why) = m.skipped.get(sc.key) {
            row[1] = "skipped".into();
            report.detail(&format!("forward_{}", sc.key), json!({ "skipped": why }));
        }
        sec.row(row);
        if let Some(s) = sum {
            report.set(&format!("mpps_{}", sc.key), s.median);
            report.detail(
                &format!("forward_{}", sc.key),
                json!({
                    "label": sc.label,
                    "sink_mpps": s.json(&v),
                    "offered_mpps": offered,
                    "generator_gap_ns": gaps,
                    "sink_mpps_flat_out": flat_out,
                    "lost_after_director": lost,
                    "director_cpu_busy": busy,
                    "program_ns_per_packet_bpf_stats": prog_ns,
                }),
            );
        }
        if let Some(n) = prog_ns {
            report.set(&format!("program_ns_{}", sc.key), *n);
        }
    }
    sec.note(
        "/ ceiling: median of per-round ratios against the ceiling of the same path (XDP_TX \
         one-armed, or redirect into the real-server namespace), measured just before the \
         scenario's group (the rate of this machine shifts 2x for tens of seconds at a \
         time); / nft DNAT: against the numgen DNAT with as many flows, same round",
    );
    sec.note(
        "peak: the most the director forwarded at any offered rate (RFC 2889's maximum \
         forwarding rate), found by raising the generator's rate in steps of 7% from its \
         flat-out sink rate; flat out: the sink rate with the generator unpaced, which \
         charges a slower director extra for the generator's overflow (see peak.rs)",
    );
    sec.note(
        "prog ns/pkt: the director program's own run time per packet while forwarding \
         (BPF_ENABLE_STATS, a separate pass); lost: frames the director received that did \
         not reach the sink (ring full, or dropped by the stack); CPU busy: the director's \
         CPU in the window (well under 100%: the generator set the rate, not the director)",
    );
    sec.note(
        "every frame a new flow: UDP from new sources; once the table is full of flows \
         seen in the last 60 s, a new flow's packet is scheduled and forwarded untracked \
         (no active flow is evicted for it; xlb status counts those packets)",
    );
    report.sections.push(sec);

    for (ratios, rate) in [
        (RATIOS, sink as fn(&Sample) -> f64),
        (FLAT_OUT_RATIOS, flat),
    ] {
        for (key, a, b) in ratios {
            let v = m.per_round(a, b, rate);
            if let Some(s) = Summary::of(&v) {
                report.set(key, s.median);
                report.detail(key, s.json(&v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sink_mpps: f64) -> Sample {
        Sample {
            sink_mpps,
            ..Sample::default()
        }
    }

    fn measured() -> Measured {
        let mut m = Measured::default();
        m.samples.insert("ceiling", vec![at(4.0), at(2.0)]);
        m.samples.insert("xlb", vec![at(3.0), at(3.0)]);
        m.samples.insert("nft", vec![at(1.0), at(0.5)]);
        // The ceiling measured just before xlb in each round (its row keeps the first).
        m.lead_of.insert("xlb", ("ceiling", vec![at(6.0), at(3.0)]));
        m
    }

    #[test]
    fn a_ratio_over_the_groups_lead_uses_the_lead_measured_just_before() {
        assert_eq!(measured().per_round("xlb", "ceiling", sink), vec![0.5, 1.0]);
    }

    #[test]
    fn a_ratio_over_another_row_uses_the_same_rounds() {
        assert_eq!(measured().per_round("xlb", "nft", sink), vec![3.0, 6.0]);
        assert_eq!(
            measured().per_round("nft", "ceiling", sink),
            vec![0.25, 0.25]
        );
    }

    #[test]
    fn a_ratio_with_a_missing_row_is_empty() {
        assert!(measured().per_round("xlb", "gone", sink).is_empty());
        assert!(measured().per_round("gone", "ceiling", sink).is_empty());
    }
}

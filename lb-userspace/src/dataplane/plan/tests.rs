//! The plan against an in-memory view: the maps are the view itself, each step recorded
//! as `MapSync` records it after writing.

use std::time::{Duration, Instant};

use lb_common::{PROTO_TCP, v4_mapped};

use crate::dataplane::sizing::MapSizes;

use super::*;

const IF: u32 = 7;
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn real(last: u8, weight: u32) -> DesiredReal {
    DesiredReal {
        addr: v4_mapped([198, 18, 1, last]),
        port: 80,
        weight,
        alive: true,
        ifindex: IF,
        mac: Some([2, 0, 0, 0, 1, last]),
    }
}

fn service(last: u8, algo: SchedAlgo, reals: Vec<DesiredReal>) -> DesiredService {
    DesiredService {
        key: ServiceKey {
            vip: v4_mapped([198, 18, 0, last]),
            port: 80,
            proto: PROTO_TCP,
            _pad: 0,
        },
        aliases: Vec::new(),
        algo,
        hash_port: false,
        active: true,
        persistence_timeout: 0,
        nat: false,
        reals,
    }
}

fn web() -> DesiredService {
    service(1, SchedAlgo::Wrr, vec![real(1, 1), real(2, 1), real(3, 1)])
}

/// `web` and a weighted Maglev service.
fn web_and_mh() -> [DesiredService; 2] {
    [
        web(),
        service(2, SchedAlgo::Mh, vec![real(4, 2), real(5, 1)]),
    ]
}

/// A view with the director's MAC known on `IF`.
fn empty_view() -> MapView {
    let mut view = MapView::default();
    view.ifaces.insert(IF, DIRECTOR_MAC);
    view
}

/// Plans `desired` against `view` and records the steps in it, as `MapSync::apply` does.
fn apply(view: &mut MapView, desired: &[DesiredService], now: Instant) -> Plan {
    view.release_quarantined(now);
    let plan = plan(view, desired).expect("plan");
    for step in plan.steps.clone() {
        view.record(step, now).expect("record");
    }
    plan
}

/// A view with `desired` applied, and the time it was applied at.
fn view_with(desired: &[DesiredService]) -> (MapView, Instant) {
    let mut view = empty_view();
    let now = Instant::now();
    apply(&mut view, desired, now);
    (view, now)
}

fn slot_of(view: &MapView, svc: &DesiredService, r: &DesiredReal) -> u32 {
    let id = view.services()[&svc.key].id;
    view.slots_of(id)[&RealKey {
        addr: r.addr,
        port: r.port,
    }]
}

/// The position of the first step matching `pred`.
fn position(plan: &Plan, pred: impl Fn(&Step) -> bool) -> usize {
    plan.steps
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no such step in {:#?}", plan.steps))
}

fn is_write_real(s: &Step) -> bool {
    matches!(s, Step::WriteReal { .. })
}
fn is_write_table(s: &Step) -> bool {
    matches!(s, Step::WriteTable { .. })
}
fn is_publish(s: &Step) -> bool {
    matches!(s, Step::PublishService { .. })
}

/// Every slot written and every table written comes before the service entry that
/// points at them; every slot and region let go comes after it.
fn check_order(plan: &Plan) {
    let publish = plan
        .steps
        .iter()
        .rposition(|s| matches!(s, Step::PublishService { .. } | Step::RemoveService { .. }));
    let Some(publish) = publish else { return };
    for (i, s) in plan.steps.iter().enumerate() {
        match s {
            Step::ClearReal { .. } | Step::QuarantineTable { .. } => {
                let first_swap = plan.steps.iter().position(|s| {
                    matches!(s, Step::PublishService { .. } | Step::RemoveService { .. })
                });
                assert!(Some(i) > first_swap, "{s:?} before any swap: {plan:#?}");
            }
            Step::WriteReal { .. } | Step::WriteTable { .. } if i > publish => {
                panic!("{s:?} after the last swap: {plan:#?}")
            }
            _ => {}
        }
    }
}

#[test]
fn a_new_service_writes_slots_then_table_then_entry() {
    let mut view = empty_view();
    let plan = apply(&mut view, &[web()], Instant::now());
    assert_eq!(
        plan.report,
        SyncReport {
            services_added: 1,
            tables_swapped: 1,
            reals_written: 3,
            ..SyncReport::default()
        }
    );
    let Step::ResetServiceCounters { id } = plan.steps[0] else {
        panic!("counters first: {plan:#?}")
    };
    let last_real = plan.steps.iter().rposition(is_write_real).unwrap();
    let table = position(&plan, is_write_table);
    let state = position(&plan, |s| matches!(s, Step::SetServiceState { .. }));
    let publish = position(&plan, is_publish);
    assert!(
        last_real < table && table < publish && state < publish,
        "{plan:#?}"
    );
    // Each new slot has its counters zeroed before it is written, and holds the
    // director's MAC on its interface.
    for (i, s) in plan.steps.iter().enumerate() {
        if let Step::WriteReal { slot, real } = s {
            assert_eq!(plan.steps[i - 1], Step::ResetRealCounters { slot: *slot });
            assert_eq!(real.src_mac, DIRECTOR_MAC);
            assert_eq!(real.service_id, id);
            assert_eq!(real.flags, REAL_F_IN_USE | REAL_F_ALIVE | REAL_F_MAC_VALID);
        }
    }
    let Step::PublishService { info, .. } = &plan.steps[publish] else {
        unreachable!()
    };
    assert_eq!((info.id, info.table_len, info.flags), (id, 3, SVC_F_ACTIVE));
    assert_eq!(view.table(info).len(), 3);
    check_order(&plan);
}

#[test]
fn nothing_changed_gives_an_empty_plan() {
    let desired = web_and_mh();
    let (view, _) = view_with(&desired);
    assert_eq!(plan(&view, &desired).unwrap(), Plan::default());
    assert_eq!(plan_ifaces(&view, view.ifaces()), []);
}

#[test]
fn a_weight_change_rewrites_one_slot_and_swaps_the_table() {
    let other = service(2, SchedAlgo::Mh, vec![real(4, 1), real(5, 1)]);
    let (mut view, t0) = view_with(&[web(), other.clone()]);
    let old = view.services()[&web().key];
    let mut heavier = web();
    heavier.reals[1].weight = 3;
    let now = t0 + Duration::from_millis(10);
    let plan = apply(&mut view, &[heavier.clone(), other.clone()], now);
    let slot = slot_of(&view, &heavier, &heavier.reals[1]);
    assert_eq!(
        plan.report,
        SyncReport {
            services_changed: 1,
            tables_swapped: 1,
            reals_written: 1,
            ..SyncReport::default()
        }
    );
    let new = view.services()[&heavier.key];
    assert_eq!(new.table_len, 5, "wrr 1:3:1");
    assert_ne!(new.table_offset, old.table_offset, "a fresh region");
    let write_real = position(&plan, is_write_real);
    assert!(matches!(plan.steps[write_real], Step::WriteReal { slot: s, .. } if s == slot));
    assert!(write_real < position(&plan, is_write_table));
    assert!(position(&plan, is_write_table) < position(&plan, is_publish));
    assert_eq!(
        plan.steps.last(),
        Some(&Step::QuarantineTable {
            offset: old.table_offset,
            len: old.table_len
        }),
        "the old region is let go last"
    );
    // The flags did not change: no state write; the other service is left alone.
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::SetServiceState { .. }))
    );
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| is_publish(s) || is_write_table(s))
            .count(),
        2,
        "one table and one entry: {plan:#?}"
    );
    assert_eq!(view.arena().quarantined_entries(), old.table_len);
    check_order(&plan);
}

#[test]
fn unchanged_services_tables_are_not_rewritten() {
    let big = service(2, SchedAlgo::Mh, (10..20).map(|i| real(i, 1)).collect());
    let (view, _) = view_with(&[web(), big.clone()]);
    let mut changed = web();
    changed.reals.push(real(4, 1));
    let plan = plan(&view, &[changed, big.clone()]).unwrap();
    let big_info = view.services()[&big.key];
    for s in &plan.steps {
        match s {
            Step::WriteTable { table, .. } => assert_eq!(table.len(), 4, "only web's"),
            Step::PublishService { key, .. } => assert_ne!(*key, big.key),
            Step::QuarantineTable { offset, .. } => assert_ne!(*offset, big_info.table_offset),
            Step::WriteReal { real, .. } => assert_ne!(real.service_id, big_info.id),
            _ => {}
        }
    }
    assert_eq!(plan.report.tables_swapped, 1);
}

#[test]
fn a_removed_real_server_is_cleared_after_the_swap() {
    let (mut view, t0) = view_with(&[web()]);
    let gone = slot_of(&view, &web(), &web().reals[0]);
    let mut fewer = web();
    fewer.reals.remove(0);
    let plan = apply(&mut view, &[fewer.clone()], t0);
    assert_eq!(
        plan.report,
        SyncReport {
            services_changed: 1,
            tables_swapped: 1,
            reals_cleared: 1,
            ..SyncReport::default()
        }
    );
    assert!(
        !plan.steps.iter().any(is_write_real),
        "the others are unchanged"
    );
    let clear = position(&plan, |s| *s == Step::ClearReal { slot: gone });
    assert!(position(&plan, is_publish) < clear);
    assert_eq!(clear, plan.steps.len() - 1);
    let info = view.services()[&fewer.key];
    assert!(!view.table(&info).contains(&gone));
    assert!(!view.reals().contains_key(&gone));
    assert_eq!(view.slots_of(info.id).len(), 2);
    check_order(&plan);
}

#[test]
fn a_dead_real_server_keeps_its_slot_and_leaves_the_table() {
    let (mut view, t0) = view_with(&[web()]);
    let dead_slot = slot_of(&view, &web(), &web().reals[2]);
    let mut sick = web();
    sick.reals[2].alive = false;
    let plan = apply(&mut view, &[sick.clone()], t0);
    assert_eq!(
        plan.report,
        SyncReport {
            services_changed: 1,
            tables_swapped: 1,
            reals_written: 1,
            ..SyncReport::default()
        }
    );
    let Step::WriteReal { slot, real } = &plan.steps[0] else {
        panic!("the slot first: {plan:#?}")
    };
    assert_eq!(*slot, dead_slot);
    assert_eq!(real.flags, REAL_F_IN_USE | REAL_F_MAC_VALID, "not alive");
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::ClearReal { .. }))
    );
    let info = view.services()[&sick.key];
    assert_eq!(view.table(&info).len(), 2);
    assert!(!view.table(&info).contains(&dead_slot));
    check_order(&plan);
}

#[test]
fn a_mac_change_rewrites_the_slot_only() {
    let (view, _) = view_with(&[web()]);
    let mut moved = web();
    moved.reals[1].mac = Some([2, 0, 0, 0, 9, 9]);
    let plan = plan(&view, &[moved.clone()]).unwrap();
    let slot = slot_of(&view, &web(), &web().reals[1]);
    let [
        Step::WriteReal {
            slot: written,
            real,
        },
    ] = plan.steps.as_slice()
    else {
        panic!("one slot write: {plan:#?}")
    };
    assert_eq!((*written, real.mac), (slot, [2, 0, 0, 0, 9, 9]));
    assert_eq!(plan.report.tables_swapped, 0);

    // Unresolved: no new flows (out of the table), the slot stays.
    let mut unresolved = web();
    unresolved.reals[1].mac = None;
    let unresolved = super::plan(&view, &[unresolved]).unwrap();
    assert_eq!(unresolved.report.tables_swapped, 1);
    let Step::WriteReal { real, .. } = &unresolved.steps[0] else {
        panic!("{unresolved:#?}")
    };
    assert_eq!(real.flags & REAL_F_MAC_VALID, 0);
    check_order(&unresolved);
}

#[test]
fn a_new_director_mac_rewrites_the_slots_on_its_interface() {
    let mut elsewhere = real(9, 1);
    elsewhere.ifindex = IF + 1;
    let (view, _) = view_with(&[service(1, SchedAlgo::Rr, vec![real(1, 1), elsewhere])]);
    let mut want = view.ifaces().clone();
    want.insert(IF, [2, 0, 0, 0, 0, 2]);
    let steps = plan_ifaces(&view, &want);
    let [Step::WriteReal { real, .. }] = steps.as_slice() else {
        panic!("{steps:#?}")
    };
    assert_eq!((real.ifindex, real.src_mac), (IF, [2, 0, 0, 0, 0, 2]));
}

#[test]
fn a_removed_service_is_unpublished_before_its_table_and_slots_go() {
    let other = service(2, SchedAlgo::Sh, vec![real(4, 1)]);
    let (mut view, t0) = view_with(&[web(), other.clone()]);
    let info = view.services()[&web().key];
    let plan = apply(&mut view, &[other], t0);
    assert_eq!(
        plan.report,
        SyncReport {
            services_removed: 1,
            reals_cleared: 3,
            ..SyncReport::default()
        }
    );
    assert_eq!(plan.steps[0], Step::RemoveService { key: web().key });
    assert_eq!(
        plan.steps[1],
        Step::SetServiceState {
            id: info.id,
            flags: 0
        }
    );
    assert_eq!(
        plan.steps[2],
        Step::QuarantineTable {
            offset: info.table_offset,
            len: info.table_len
        }
    );
    assert!(
        plan.steps[3..]
            .iter()
            .all(|s| matches!(s, Step::ClearReal { .. }))
    );
    assert_eq!(view.services().len(), 1);
    assert_eq!(view.reals().len(), 1);
    assert!(view.slots_of(info.id).is_empty());
    check_order(&plan);
}

#[test]
fn adopted_maps_keep_their_slots_ids_and_tables() {
    let desired = web_and_mh();
    let (before, _) = view_with(&desired);
    // What a restarted controller reads back: the entries, every slot of the array (the
    // free ones zeroed), and the tables through their regions.
    let reals =
        (0..MAX_REALS).map(|slot| (slot, before.reals().get(&slot).copied().unwrap_or_default()));
    let regions: BTreeMap<u32, &[u32]> = before
        .services()
        .values()
        .map(|i| (i.table_offset, before.table(i)))
        .collect();
    let adopted = MapView::adopt(
        MapSizes::MAX,
        before.services().iter().map(|(k, i)| (*k, *i)),
        reals,
        |offset, out| out.copy_from_slice(regions[&offset]),
    )
    .unwrap();
    assert_eq!(adopted.services(), before.services());
    assert_eq!(adopted.reals(), before.reals());
    assert_eq!(adopted.ifaces(), before.ifaces());
    assert_eq!(
        adopted.arena().allocated_entries(),
        before.arena().allocated_entries()
    );
    assert_eq!(plan(&adopted, &desired).unwrap(), Plan::default());

    // A new real server after adoption takes a slot none of the adopted ones holds.
    let mut more = desired.clone();
    more[0].reals.push(real(6, 1));
    let plan = plan(&adopted, &more).unwrap();
    let Step::ResetRealCounters { slot } = plan.steps[0] else {
        panic!("{plan:#?}")
    };
    assert!(!before.reals().contains_key(&slot));
}

#[test]
fn adoption_refuses_overlapping_regions() {
    let info = |id, table_offset| ServiceInfo {
        id,
        table_offset,
        table_len: 10,
        ..ServiceInfo::default()
    };
    let key = |last| service(last, SchedAlgo::Rr, vec![]).key;
    let services = [(key(1), info(0, 0)), (key(2), info(1, 5))];
    assert!(MapView::adopt(MapSizes::MAX, services, [], |_, _| {}).is_err());
}

#[test]
fn a_freed_slot_is_not_reused_at_once() {
    let (mut view, t0) = view_with(&[web()]);
    let gone = slot_of(&view, &web(), &web().reals[0]);
    let mut swapped = web();
    swapped.reals[0] = real(8, 1);
    apply(&mut view, &[swapped.clone()], t0);
    let new = slot_of(&view, &swapped, &swapped.reals[0]);
    assert_ne!(new, gone, "a stale flow entry would follow the slot");
}

#[test]
fn duplicates_and_exhaustion_are_refused() {
    let view = empty_view();
    let err = plan(&view, &[web(), web()]).unwrap_err();
    assert!(matches!(err, PlanError::DuplicateService(_)));
    assert_eq!(
        err.to_string(),
        "virtual service 198.18.0.1:80 is listed twice"
    );
    let twice = service(1, SchedAlgo::Rr, vec![real(1, 1), real(1, 2)]);
    let err = plan(&view, &[twice]).unwrap_err();
    assert!(matches!(err, PlanError::DuplicateReal { .. }));
    assert_eq!(
        err.to_string(),
        "real server 198.18.1.1:80 is listed twice in virtual service 198.18.0.1:80"
    );
    let mut small = MapView::with_arena(TableArena::new(4));
    small.ifaces = view.ifaces().clone();
    let five = service(1, SchedAlgo::Rr, (1..=5).map(|i| real(i, 1)).collect());
    assert!(matches!(
        plan(&small, &[five]),
        Err(PlanError::TableArenaFull)
    ));
}

#[test]
fn a_region_is_reused_only_after_its_grace_period() {
    let mut view = MapView::with_arena(TableArena::with_grace(8, Duration::from_secs(1)));
    let t0 = Instant::now();
    let three = service(1, SchedAlgo::Rr, (1..=3).map(|i| real(i, 1)).collect());
    apply(&mut view, std::slice::from_ref(&three), t0);
    let mut four = three.clone();
    four.reals.push(real(4, 1));
    apply(&mut view, &[four.clone()], t0);
    // 3 in quarantine + 4 in use of 8: five servers do not fit yet.
    let mut five = four.clone();
    five.reals.push(real(5, 1));
    assert!(matches!(
        plan(&view, std::slice::from_ref(&five)),
        Err(PlanError::TableArenaFull)
    ));
    let plan = apply(&mut view, &[three], t0 + Duration::from_secs(1));
    assert_eq!(
        plan.report.tables_swapped, 1,
        "the first region is free again"
    );
    assert_eq!(view.services().values().next().unwrap().table_offset, 0);
}

// ----- reloads: what a change does not concern keeps its bytes -----

/// The bytes `xlb_table` holds for `svc`, as the kernel reads them.
fn table_bytes(view: &MapView, svc: &DesiredService) -> Vec<u8> {
    let info = view.services()[&svc.key];
    view.table(&info)
        .iter()
        .flat_map(|e| e.to_le_bytes())
        .collect()
}

#[test]
fn a_reload_leaves_the_services_it_does_not_change_byte_for_byte() {
    let mh = service(2, SchedAlgo::Mh, (10..20).map(|i| real(i, 1)).collect());
    let sh = service(3, SchedAlgo::Sh, (20..24).map(|i| real(i, 2)).collect());
    let gone = service(4, SchedAlgo::Rr, vec![real(30, 1)]);
    let (mut view, t0) = view_with(&[web(), mh.clone(), sh.clone(), gone]);
    let before: Vec<_> = [&mh, &sh]
        .map(|s| {
            (
                view.services()[&s.key],
                view.slots_of(view.services()[&s.key].id),
                table_bytes(&view, s),
            )
        })
        .into();
    // The reload: web gets a server and a new weight, a service goes, one is added, and
    // the file lists them in another order.
    let mut web2 = web();
    web2.reals[0].weight = 5;
    web2.reals.push(real(4, 1));
    let added = service(5, SchedAlgo::Mh, vec![real(40, 1), real(41, 1)]);
    let plan = apply(&mut view, &[added, sh.clone(), web2, mh.clone()], t0);
    let untouched: Vec<_> = [&mh, &sh].map(|s| view.services()[&s.key]).into();
    for step in &plan.steps {
        for info in &untouched {
            match step {
                Step::PublishService { key, .. } | Step::RemoveService { key } => {
                    assert!(*key != mh.key && *key != sh.key, "{step:?}")
                }
                Step::WriteReal { real, .. } => assert_ne!(real.service_id, info.id),
                Step::SetServiceState { id, .. } => assert_ne!(*id, info.id),
                Step::QuarantineTable { offset, .. } => assert_ne!(*offset, info.table_offset),
                Step::ResetServiceCounters { id } => assert_ne!(*id, info.id),
                _ => {}
            }
        }
    }
    for (s, (info, slots, bytes)) in [&mh, &sh].into_iter().zip(before) {
        assert_eq!(view.services()[&s.key], info, "entry, id and region kept");
        assert_eq!(view.slots_of(info.id), slots, "real-server slots kept");
        assert_eq!(table_bytes(&view, s), bytes, "table bytes kept");
    }
    assert_eq!(plan.report.services_added, 1);
    assert_eq!(plan.report.services_removed, 1);
    assert_eq!(plan.report.services_changed, 1);
    check_order(&plan);
}

#[test]
fn a_real_server_added_to_mh_moves_about_one_table_slot_in_n() {
    // Counts that keep the table size (4 -> 5 servers crosses from 4,093 to 8,191 slots
    // and rehashes every client: `xlb check --diff` says so for such a reload).
    for n in [5u8, 10, 20] {
        let old = service(2, SchedAlgo::Mh, (1..=n).map(|i| real(i, 1)).collect());
        let (mut view, t0) = view_with(std::slice::from_ref(&old));
        let info = view.services()[&old.key];
        let before = view.table(&info).to_vec();
        let mut new = old.clone();
        new.reals.push(real(100, 1));
        apply(&mut view, std::slice::from_ref(&new), t0);
        let after = view.table(&view.services()[&new.key]).to_vec();
        assert_eq!(after.len(), before.len(), "same prime size");
        let added = slot_of(&view, &new, &new.reals[n as usize]);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        let to_new = after.iter().filter(|&&s| s == added).count();
        let share = moved as f64 / before.len() as f64;
        let ideal = 1.0 / f64::from(n + 1);
        // Maglev: the new server takes its 1/(N+1), and only a little more moves between
        // the old ones (the table is deterministic: these bounds are not timing).
        assert!(
            share >= ideal * 0.9 && share <= ideal * 1.25,
            "N = {n}: {share:.4} of the slots moved, ideal {ideal:.4}"
        );
        assert!(
            to_new as f64 >= moved as f64 * 0.8,
            "N = {n}: {to_new} of {moved} moved slots went to the new server"
        );
        // Slots that kept their real server kept the very same index: the bytes.
        let kept = before.iter().zip(&after).filter(|(a, b)| a == b).count();
        assert_eq!(kept + moved, before.len());
    }
}

#[test]
fn an_mh_server_going_down_or_drained_moves_only_its_own_slots() {
    // Five servers: sized for the eligible four, the table would shrink from 8,191 to
    // 4,093 slots and almost every client would move.
    let five = service(2, SchedAlgo::Mh, (1..=5).map(|i| real(i, 1)).collect());
    let (mut view, t0) = view_with(std::slice::from_ref(&five));
    let before = view.table(&view.services()[&five.key]).to_vec();
    let gone = slot_of(&view, &five, &five.reals[4]);
    for change in [
        |r: &mut DesiredReal| r.alive = false,
        |r: &mut DesiredReal| r.weight = 0,
    ] {
        let mut one_down = five.clone();
        change(&mut one_down.reals[4]);
        apply(&mut view, std::slice::from_ref(&one_down), t0);
        let after = view.table(&view.services()[&five.key]).to_vec();
        assert_eq!(after.len(), before.len(), "no resize");
        assert!(!after.contains(&gone));
        // Maglev moves the down server's slots, and a few of the others' (its
        // disruption): far from the whole table a resize would move.
        let others_moved = (before.iter().zip(&after))
            .filter(|(a, b)| a != b && **a != gone)
            .count();
        assert!(
            others_moved * 50 < before.len(),
            "{others_moved} of {} slots of live servers moved",
            before.len()
        );
        apply(&mut view, std::slice::from_ref(&five), t0);
    }
}

/// `web` with two more keys (a fwmark service over ports 80, 443 and 8080).
fn fwmark_web() -> DesiredService {
    let mut s = web();
    s.aliases = [443, 8080]
        .map(|port| ServiceKey { port, ..s.key })
        .to_vec();
    s
}

#[test]
fn a_service_with_aliases_publishes_one_entry_under_every_key() {
    let svc = fwmark_web();
    let (mut view, now) = view_with(std::slice::from_ref(&svc));
    let info = view.services()[&svc.key];
    for key in &svc.aliases {
        assert_eq!(
            view.services()[key],
            info,
            "one id, one table for every key"
        );
    }
    assert_eq!(view.services().len(), 3);
    // Adopting maps where three keys share a region reads it once.
    let adopted = MapView::adopt(
        crate::dataplane::sizing::MapSizes::MAX,
        view.services().iter().map(|(k, i)| (*k, *i)),
        view.reals().iter().map(|(s, r)| (*s, *r)),
        |_, _| {},
    )
    .expect("adopt");
    assert_eq!(adopted.services().len(), 3);
    // Nothing changed: nothing to do.
    assert!(
        plan(&view, std::slice::from_ref(&svc))
            .unwrap()
            .steps
            .is_empty()
    );

    // A weight change swaps the table and republishes every key.
    let mut changed = svc.clone();
    changed.reals[0].weight = 3;
    let p = apply(&mut view, std::slice::from_ref(&changed), now);
    check_order(&p);
    let publishes = p.steps.iter().filter(|s| is_publish(s)).count();
    assert_eq!(publishes, 3, "{:#?}", p.steps);
    let info2 = view.services()[&svc.key];
    assert_eq!(info2.id, info.id);
    for key in &svc.aliases {
        assert_eq!(view.services()[key], info2);
    }

    // One key dropped: only it goes; the service and its slots stay.
    let mut fewer = changed.clone();
    fewer.aliases.pop();
    let p = apply(&mut view, std::slice::from_ref(&fewer), now);
    assert_eq!(
        p.steps,
        vec![Step::RemoveService {
            key: svc.aliases[1]
        }]
    );

    // The service gone: every key, then its id's state, table and slots.
    let p = apply(&mut view, &[], now);
    check_order(&p);
    assert_eq!(p.report.services_removed, 1);
    assert_eq!(
        p.steps
            .iter()
            .filter(|s| matches!(s, Step::RemoveService { .. }))
            .count(),
        2
    );
    assert_eq!(p.report.reals_cleared, 3);
    assert!(view.services().is_empty() && view.reals().is_empty());
}

#[test]
fn a_key_moving_to_another_service_retires_the_old_service() {
    // 198.18.0.1:80 and :443 are one service; then :443 becomes a service of its own
    // and :80 goes.
    let svc = fwmark_web();
    let (mut view, now) = view_with(std::slice::from_ref(&svc));
    let old_id = view.services()[&svc.key].id;
    let mut alone = service(1, SchedAlgo::Rr, vec![real(9, 1)]);
    alone.key.port = 443;
    let p = apply(&mut view, std::slice::from_ref(&alone), now);
    check_order(&p);
    let info = view.services()[&alone.key];
    assert_eq!(info.id, old_id, "the key's entry, and its id, carry over");
    assert_eq!(view.services().len(), 1);
    assert_eq!(
        view.slots_of(info.id).len(),
        1,
        "the old real servers are cleared"
    );

    // Two services each claiming a key of one old service: one keeps the id.
    let (mut view, now) = view_with(std::slice::from_ref(&svc));
    let mut a = service(1, SchedAlgo::Rr, vec![real(7, 1)]);
    a.key.port = 443;
    let mut b = service(1, SchedAlgo::Rr, vec![real(8, 1)]);
    b.key.port = 8080;
    apply(&mut view, &[a.clone(), b.clone()], now);
    let (ia, ib) = (view.services()[&a.key], view.services()[&b.key]);
    assert_ne!(ia.id, ib.id);
    assert_eq!(view.services().len(), 2);
    assert_eq!(view.reals().len(), 2);
}

#[test]
fn a_nat_service_flags_its_slots_and_entry_and_a_change_of_kind_rewrites_them() {
    let mut nat = web();
    nat.nat = true;
    for r in &mut nat.reals {
        r.port = 8080;
    }
    let (mut view, now) = view_with(std::slice::from_ref(&nat));
    let info = view.services()[&nat.key];
    assert_eq!(info.flags & SVC_F_NAT, SVC_F_NAT);
    for r in &nat.reals {
        let slot = view.reals()[&slot_of(&view, &nat, r)];
        assert_eq!(slot.flags & REAL_F_NAT, REAL_F_NAT);
        assert_eq!(slot.port, 8080, "NAT keeps the real server's own port");
    }
    // Back to DR: every slot and the entry lose the flag.
    let mut dr = nat.clone();
    dr.nat = false;
    apply(&mut view, std::slice::from_ref(&dr), now);
    assert_eq!(view.services()[&dr.key].flags & SVC_F_NAT, 0);
    for r in &dr.reals {
        assert_eq!(view.reals()[&slot_of(&view, &dr, r)].flags & REAL_F_NAT, 0);
    }
}

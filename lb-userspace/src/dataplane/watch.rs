//! The data-plane watchdog's rules, without I/O: what one look at an interface means
//! ([`inspect`]) and what `xlb status` is told about each interface ([`Watch`]). The daemon
//! looks every half second (interface index and XDP program through rtnetlink, the pin
//! files through `stat`) and repairs what [`inspect`] finds.

use std::collections::BTreeMap;

use crate::netlink::LinkState;

/// What one look at an interface the services need found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Our program is attached where it was, through its pinned link.
    Healthy,
    /// Our program still runs there (we hold the link) but its pin file was removed:
    /// pin it again, or the next start could not adopt it.
    LinkUnpinned,
    /// There is no interface of that name (deleted, or renamed away).
    InterfaceGone,
    /// An interface of that name is there but not the one we attached to (re-created or
    /// renamed back): attach to it.
    InterfaceBack { ifindex: u32 },
    /// The interface we attached to has no XDP program any more (the link detached by
    /// hand, `bpftool link detach`): attach again.
    Detached,
    /// Another XDP program is attached there: ours cannot be until it goes.
    Foreign { prog_id: u32 },
}

/// What a look at interface `now` means, given the ifindex we attached to (None when we
/// are not attached: the interface went away), our program's id and whether the link's
/// pin file exists.
pub fn inspect(
    attached_at: Option<u32>,
    our_prog: u32,
    now: Option<LinkState>,
    link_pinned: bool,
) -> Finding {
    let Some(now) = now else {
        return Finding::InterfaceGone;
    };
    if attached_at != Some(now.ifindex) {
        return Finding::InterfaceBack {
            ifindex: now.ifindex,
        };
    }
    match now.xdp_prog {
        None => Finding::Detached,
        Some(p) if p != our_prog => Finding::Foreign { prog_id: p },
        Some(_) if !link_pinned => Finding::LinkUnpinned,
        Some(_) => Finding::Healthy,
    }
}

impl Finding {
    /// Why the interface cannot forward until something changes, when that is so (the
    /// other findings are repaired at once).
    pub fn down_reason(self, interface: &str) -> Option<String> {
        match self {
            Self::InterfaceGone => Some(format!("interface {interface} is gone")),
            Self::Foreign { prog_id } => Some(format!(
                "another XDP program (id {prog_id}) is attached to {interface}"
            )),
            Self::Healthy | Self::LinkUnpinned | Self::InterfaceBack { .. } | Self::Detached => {
                None
            }
        }
    }
}

/// What `xlb status` shows of one interface the services are attached to.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    /// Our program is attached there and forwards.
    pub forwarding: bool,
    /// Why not, while it does not.
    pub down_reason: Option<String>,
    /// Since when (Unix seconds) it does not.
    pub down_since: Option<u64>,
    /// How often the program was attached again after it had gone.
    pub reattached: u32,
    /// When (Unix seconds) it last was.
    pub last_reattached: Option<u64>,
    /// How often a removed pin (the link's or a map's) was pinned again.
    pub repinned: u32,
}

/// A change worth a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The interface stopped forwarding, or stopped for another reason.
    Down(String),
    /// It forwards again, after being down.
    Up,
}

/// Every watched interface's status, kept across looks.
#[derive(Debug, Default)]
pub struct Watch {
    interfaces: BTreeMap<String, InterfaceStatus>,
    /// Why pinning the maps again failed at the last look, if it did.
    maps_problem: Option<String>,
}

impl Watch {
    /// Starts watching `name`, forwarding (just attached).
    pub fn attached(&mut self, name: &str) {
        self.interfaces
            .entry(name.to_string())
            .or_insert_with(|| InterfaceStatus {
                name: name.to_string(),
                forwarding: true,
                ..InterfaceStatus::default()
            });
    }

    /// Stops watching interfaces the config no longer names.
    pub fn retain(&mut self, names: &[String]) {
        self.interfaces.retain(|n, _| names.contains(n));
    }

    /// Records that `name` does not forward for `reason` at `now` (Unix seconds); returns
    /// the change when it is news.
    pub fn down(&mut self, name: &str, reason: String, now: u64) -> Option<Change> {
        let s = self.entry(name);
        if s.down_reason.as_deref() == Some(reason.as_str()) {
            return None;
        }
        if s.forwarding {
            s.down_since = Some(now);
        }
        s.forwarding = false;
        s.down_reason = Some(reason.clone());
        Some(Change::Down(reason))
    }

    /// Records that `name` was attached again at `now` and forwards.
    pub fn reattached(&mut self, name: &str, now: u64) -> Option<Change> {
        let s = self.entry(name);
        s.reattached += 1;
        s.last_reattached = Some(now);
        let was_down = !s.forwarding;
        s.forwarding = true;
        s.down_reason = None;
        s.down_since = None;
        was_down.then_some(Change::Up)
    }

    /// Records that a removed pin of `name`'s (its link or a map) was pinned again.
    pub fn repinned(&mut self, name: &str) {
        self.entry(name).repinned += 1;
    }

    /// Records how pinning removed maps again went (None: fine); true when that is news
    /// worth a log line (a failure said once, not at every look).
    pub fn maps_problem(&mut self, problem: Option<String>) -> bool {
        let news = problem.is_some() && problem != self.maps_problem;
        self.maps_problem = problem;
        news
    }

    pub fn get(&self, name: &str) -> Option<&InterfaceStatus> {
        self.interfaces.get(name)
    }

    /// Every watched interface's status, by name.
    pub fn statuses(&self) -> Vec<InterfaceStatus> {
        self.interfaces.values().cloned().collect()
    }

    fn entry(&mut self, name: &str) -> &mut InterfaceStatus {
        self.attached(name);
        self.interfaces.get_mut(name).expect("just inserted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: u32 = 42;

    fn at(ifindex: u32, xdp_prog: Option<u32>) -> Option<LinkState> {
        Some(LinkState { ifindex, xdp_prog })
    }

    #[test]
    fn our_program_on_the_same_interface_through_its_pin_is_healthy() {
        assert_eq!(
            inspect(Some(3), OURS, at(3, Some(OURS)), true),
            Finding::Healthy
        );
    }

    #[test]
    fn a_removed_link_pin_with_our_program_still_attached_is_pinned_again() {
        assert_eq!(
            inspect(Some(3), OURS, at(3, Some(OURS)), false),
            Finding::LinkUnpinned
        );
    }

    #[test]
    fn a_missing_interface_is_gone_whether_or_not_we_were_attached() {
        assert_eq!(inspect(Some(3), OURS, None, true), Finding::InterfaceGone);
        assert_eq!(inspect(None, OURS, None, false), Finding::InterfaceGone);
    }

    #[test]
    fn an_interface_of_that_name_with_another_index_is_one_to_attach_to() {
        assert_eq!(
            inspect(Some(3), OURS, at(9, None), false),
            Finding::InterfaceBack { ifindex: 9 }
        );
        assert_eq!(
            inspect(None, OURS, at(3, None), false),
            Finding::InterfaceBack { ifindex: 3 },
            "renamed back to the same index after we let it go"
        );
    }

    #[test]
    fn no_program_or_another_one_on_our_interface() {
        assert_eq!(inspect(Some(3), OURS, at(3, None), true), Finding::Detached);
        assert_eq!(
            inspect(Some(3), OURS, at(3, Some(7)), true),
            Finding::Foreign { prog_id: 7 }
        );
        assert_eq!(
            Finding::Foreign { prog_id: 7 }.down_reason("eth0").unwrap(),
            "another XDP program (id 7) is attached to eth0"
        );
        assert_eq!(
            Finding::Detached.down_reason("eth0"),
            None,
            "repaired at once"
        );
    }

    #[test]
    fn a_down_interface_is_news_once_per_reason_and_counts_its_reattachments() {
        let mut w = Watch::default();
        w.attached("eth0");
        assert!(w.get("eth0").unwrap().forwarding);
        let gone = "interface eth0 is gone".to_string();
        assert_eq!(
            w.down("eth0", gone.clone(), 100),
            Some(Change::Down(gone.clone()))
        );
        assert_eq!(w.down("eth0", gone.clone(), 101), None, "said once");
        let s = w.get("eth0").unwrap();
        assert!(!s.forwarding);
        assert_eq!(s.down_since, Some(100));
        let other = "re-attaching XDP failed: EBUSY".to_string();
        assert_eq!(
            w.down("eth0", other.clone(), 102),
            Some(Change::Down(other))
        );
        assert_eq!(w.get("eth0").unwrap().down_since, Some(100), "still since");
        assert_eq!(w.reattached("eth0", 103), Some(Change::Up));
        let s = w.get("eth0").unwrap();
        assert!(s.forwarding && s.down_reason.is_none() && s.down_since.is_none());
        assert_eq!((s.reattached, s.last_reattached), (1, Some(103)));
        assert_eq!(w.reattached("eth0", 104), None, "was not down");
        w.retain(&[]);
        assert!(w.statuses().is_empty());
        assert!(w.maps_problem(Some("EPERM".into())));
        assert!(!w.maps_problem(Some("EPERM".into())), "said once");
        assert!(!w.maps_problem(None));
        assert!(
            w.maps_problem(Some("EPERM".into())),
            "again after it was fine"
        );
    }
}

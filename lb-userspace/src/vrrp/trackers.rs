//! What one instance tracks, as it stands now: its interfaces (by ifindex, and by name so
//! that one deleted and re-created, or renamed away and back, is followed) and its
//! `vrrp_script`s, each with its latest up/down, and which combined effect (FAULT, priority
//! delta) the state machine was last given. The driver feeds it changes and hands the
//! machine only what [`Trackers::take_change`] says is new.

use std::collections::HashMap;

use super::{
    spec::InstanceSpec,
    track::{self, Tracked},
};

/// The interfaces `spec` tracks, by ifindex: its own (`own`; down means FAULT) unless
/// `dont_track_primary`, then its `track_interface`s, whose indexes are `indexes` in
/// order (an entry for the own interface replaces the implicit one). Each with its name.
pub fn tracked_links(
    spec: &InstanceSpec,
    own: u32,
    indexes: &[u32],
) -> HashMap<u32, (String, Tracked)> {
    let mut links = HashMap::new();
    if spec.track_own_interface {
        let own_interface = Tracked {
            what: format!("interface {}", spec.interface),
            weight: None,
            reverse: false,
        };
        links.insert(own, (spec.interface.clone(), own_interface));
    }
    for (index, (name, how)) in indexes.iter().zip(&spec.track_interfaces) {
        links.insert(*index, (name.clone(), how.clone()));
    }
    links
}

/// What the machine must be told after the tracked states changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The new priority delta, if it moved.
    pub delta: Option<i32>,
    /// The new fault flag, if it flipped.
    pub fault: Option<bool>,
}

/// An instance's tracked interfaces and scripts (see the module docs).
pub struct Trackers {
    /// Tracked interfaces by ifindex: how each counts and whether it is up.
    links: HashMap<u32, (Tracked, bool)>,
    /// Their names, by ifindex.
    names: HashMap<u32, String>,
    /// Tracked scripts by position: how each counts and its verdict.
    scripts: Vec<(Tracked, bool)>,
    /// The instance's own socket could not be opened on its (re-created) interface: a
    /// fault like a tracked interface down, whatever is configured.
    socket_closed: bool,
    /// Another member of the instance's sync group is in fault of its own: this one is
    /// held in FAULT with it.
    group_fault: bool,
    /// The (fault, priority delta) last given to the machine.
    applied: (bool, i32),
}

impl Trackers {
    /// Interfaces start up (until [`set_link`](Self::set_link) says otherwise); scripts
    /// start with the verdict given.
    pub fn new(links: HashMap<u32, (String, Tracked)>, scripts: Vec<(Tracked, bool)>) -> Self {
        Self {
            names: links.iter().map(|(i, (n, _))| (*i, n.clone())).collect(),
            links: links
                .into_iter()
                .map(|(i, (_, t))| (i, (t, true)))
                .collect(),
            scripts,
            socket_closed: false,
            group_fault: false,
            applied: (false, 0),
        }
    }

    /// Whether the instance's socket is open; returns whether that changed.
    pub fn set_socket(&mut self, open: bool) -> bool {
        let changed = self.socket_closed == open;
        self.socket_closed = !open;
        changed
    }

    /// A reload changed what is tracked: `new` replaces what this tracked, and
    /// [`take_change`](Self::take_change) then reports what differs from what the machine
    /// was last given.
    pub fn replace(&mut self, new: Trackers) {
        let (applied, socket_closed) = (self.applied, self.socket_closed);
        let group_fault = self.group_fault;
        *self = new;
        self.applied = applied;
        self.socket_closed = socket_closed;
        self.group_fault = group_fault;
    }

    /// The tracked interfaces' indexes.
    pub fn link_indexes(&self) -> Vec<u32> {
        self.links.keys().copied().collect()
    }

    /// Records that interface `ifindex` is `up`; returns what it is, when this changed a
    /// tracked interface's state.
    pub fn set_link(&mut self, ifindex: u32, up: bool) -> Option<&Tracked> {
        let (how, was) = self.links.get_mut(&ifindex)?;
        if *was == up {
            return None;
        }
        *was = up;
        Some(how)
    }

    /// Follows tracked interfaces by name, given that interface `ifindex` is called
    /// `name` now: a tracked one seen under another index is tracked there from now on
    /// (re-created, or renamed back), in the state it had. Returns false when `ifindex`
    /// is tracked under another name (renamed away: down, whatever its flags say).
    pub fn follow(&mut self, ifindex: u32, name: &str) -> bool {
        if let Some(known) = self.names.get(&ifindex) {
            return known == name;
        }
        let moved = self
            .names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(old, _)| *old);
        if let Some(old) = moved {
            if let (Some(n), Some(entry)) = (self.names.remove(&old), self.links.remove(&old)) {
                self.names.insert(ifindex, n);
                self.links.insert(ifindex, entry);
            }
        }
        true
    }

    /// Records script `position`'s verdict; false if there is no such script.
    pub fn set_script(&mut self, position: usize, up: bool) -> bool {
        match self.scripts.get_mut(position) {
            Some(entry) => {
                entry.1 = up;
                true
            }
            None => false,
        }
    }

    /// Whether the sync group holds this instance in FAULT; returns whether that changed.
    pub fn set_group_fault(&mut self, fault: bool) -> bool {
        let changed = self.group_fault != fault;
        self.group_fault = fault;
        changed
    }

    /// (fault, priority delta) of the instance's own trackers and socket, without the
    /// sync group's fault.
    pub fn own(&self) -> (bool, i32) {
        let own = track::combine(
            self.links
                .values()
                .cloned()
                .chain(self.scripts.iter().cloned()),
        );
        (own.0 || self.socket_closed, own.1)
    }

    /// The combined effect of everything tracked, as far as it differs from what the
    /// machine was last given; from now on the machine counts as told.
    pub fn take_change(&mut self) -> Change {
        let own = self.own();
        let now = (own.0 || self.group_fault, own.1);
        let (fault, delta) = now;
        let change = Change {
            delta: (delta != self.applied.1).then_some(delta),
            fault: (fault != self.applied.0).then_some(fault),
        };
        self.applied = now;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::spec::test_spec as spec;

    #[test]
    fn the_own_interface_is_tracked_unless_told_not_to() {
        let links = tracked_links(&spec(""), 2, &[]);
        assert_eq!(links.len(), 1);
        assert_eq!(links[&2].0, "eth0");
        assert_eq!(links[&2].1.what, "interface eth0");
        assert_eq!(links[&2].1.weight, None, "down means FAULT");
        assert!(tracked_links(&spec("dont_track_primary = true"), 2, &[]).is_empty());
        let both = spec("track_interface = [\"eth1 weight -20\", \"eth0 weight 10\"]");
        let links = tracked_links(&both, 2, &[3, 2]);
        assert_eq!(links[&3], ("eth1".to_string(), links[&3].1.clone()));
        assert_eq!(links[&3].1.weight, Some(-20));
        assert_eq!(links[&2].1.weight, Some(10), "the explicit entry wins");
    }

    fn tracked(weight: Option<i32>) -> Tracked {
        Tracked {
            what: "x".into(),
            weight,
            reverse: false,
        }
    }

    #[test]
    fn only_what_changed_is_reported_once() {
        let links = HashMap::from([
            (3, ("eth3".to_string(), tracked(None))),
            (4, ("eth4".to_string(), tracked(Some(-20)))),
        ]);
        let mut t = Trackers::new(links, vec![(tracked(Some(10)), false)]);
        assert_eq!(
            t.take_change(),
            Change::default(),
            "all up, script down: nothing"
        );
        assert!(t.set_link(4, false).is_some());
        assert!(t.set_link(4, false).is_none(), "no change, nothing to tell");
        assert!(t.set_link(9, false).is_none(), "not tracked");
        assert_eq!(
            t.take_change(),
            Change {
                delta: Some(-20),
                fault: None
            }
        );
        assert_eq!(t.take_change(), Change::default());
        assert!(t.set_script(0, true));
        assert!(!t.set_script(1, true));
        assert_eq!(t.take_change().delta, Some(-10));
        t.set_link(3, false);
        assert_eq!(
            t.take_change(),
            Change {
                delta: None,
                fault: Some(true)
            }
        );
        t.set_link(3, true);
        assert_eq!(t.take_change().fault, Some(false));
        let mut ids = t.link_indexes();
        ids.sort();
        assert_eq!(ids, [3, 4]);
    }

    #[test]
    fn replaced_trackers_report_against_what_the_machine_has() {
        let mut t = Trackers::new(HashMap::new(), vec![(tracked(Some(-20)), false)]);
        assert_eq!(t.take_change().delta, Some(-20));
        // The reload changes the weight to -30: only the difference is news.
        t.replace(Trackers::new(
            HashMap::new(),
            vec![(tracked(Some(-30)), false)],
        ));
        assert_eq!(t.take_change().delta, Some(-30));
        // Same effect under another script: nothing to tell.
        t.replace(Trackers::new(
            HashMap::new(),
            vec![(tracked(Some(-30)), false)],
        ));
        assert_eq!(t.take_change(), Change::default());
    }

    #[test]
    fn a_tracked_interface_is_followed_by_name() {
        let links = HashMap::from([
            (3, ("eth3".to_string(), tracked(None))),
            (4, ("eth4".to_string(), tracked(Some(-20)))),
        ]);
        let mut t = Trackers::new(links, Vec::new());
        assert!(t.follow(3, "eth3"), "itself");
        assert!(t.follow(9, "other0"), "not tracked: counts as it is");
        assert!(!t.follow(3, "away0"), "renamed away: down");
        // eth3 deleted (down), then re-created as index 11: tracked there, still down.
        t.set_link(3, false);
        assert_eq!(t.take_change().fault, Some(true));
        assert!(t.follow(11, "eth3"));
        assert!(
            t.set_link(3, true).is_none(),
            "the old index is no longer tracked"
        );
        assert!(t.set_link(11, true).is_some());
        assert_eq!(t.take_change().fault, Some(false));
    }
}

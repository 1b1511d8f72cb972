//! What one instance tracks, as it stands now: its interfaces (by ifindex) and its
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
/// order (an entry for the own interface replaces the implicit one).
pub fn tracked_links(spec: &InstanceSpec, own: u32, indexes: &[u32]) -> HashMap<u32, Tracked> {
    let mut links = HashMap::new();
    if spec.track_own_interface {
        let own_interface = Tracked {
            what: format!("interface {}", spec.interface),
            weight: None,
            reverse: false,
        };
        links.insert(own, own_interface);
    }
    for (index, (_, how)) in indexes.iter().zip(&spec.track_interfaces) {
        links.insert(*index, how.clone());
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
    /// Tracked scripts by position: how each counts and its verdict.
    scripts: Vec<(Tracked, bool)>,
    /// The (fault, priority delta) last given to the machine.
    applied: (bool, i32),
}

impl Trackers {
    /// Interfaces start up (until [`set_link`](Self::set_link) says otherwise); scripts
    /// start with the verdict given.
    pub fn new(links: HashMap<u32, Tracked>, scripts: Vec<(Tracked, bool)>) -> Self {
        Self {
            links: links.into_iter().map(|(i, t)| (i, (t, true))).collect(),
            scripts,
            applied: (false, 0),
        }
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

    /// A tracked interface is back under another index (`old` is gone, `new` took its
    /// name): it is tracked there, in the state it had.
    pub fn relink(&mut self, old: u32, new: u32) {
        if let Some(entry) = self.links.remove(&old) {
            self.links.insert(new, entry);
        }
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

    /// The combined effect of everything tracked, as far as it differs from what the
    /// machine was last given; from now on the machine counts as told.
    pub fn take_change(&mut self) -> Change {
        let now = track::combine(
            self.links
                .values()
                .cloned()
                .chain(self.scripts.iter().cloned()),
        );
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
        assert_eq!(links[&2].what, "interface eth0");
        assert_eq!(links[&2].weight, None, "down means FAULT");
        assert!(tracked_links(&spec("dont_track_primary = true"), 2, &[]).is_empty());
        let both = spec("track_interface = [\"eth1 weight -20\", \"eth0 weight 10\"]");
        let links = tracked_links(&both, 2, &[3, 2]);
        assert_eq!(links[&3].weight, Some(-20));
        assert_eq!(links[&2].weight, Some(10), "the explicit entry wins");
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
        let links = HashMap::from([(3, tracked(None)), (4, tracked(Some(-20)))]);
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
}

//! How big the maps indexed by real-server slot (`xlb_reals`, `xlb_real_stats`,
//! `xlb_real_conns`) and the scheduling-table arena (`xlb_table`) are made: from the
//! config, with headroom, instead of their ABI maxima (`lb_common::MAX_REALS`,
//! `lb_common::TABLE_CAPACITY`).
//!
//! Why: `bpftool map dump` prints every entry of an array, used or not. At the maxima,
//! dumping `xlb_table` (16 Mi entries) printed 861 MB in 32 s and `xlb_reals` 49 MB; at
//! the sizes below, a small config's maps dump in well under a second. The XDP program
//! is the same: an array lookup's bound is the map's own size, whatever it is.
//!
//! - A map is created at [`MapSizes::for_needs`] of the config: twice what the config
//!   needs (three times for the arena, where a table being swapped and a freed one in its
//!   grace second sit beside the live one), rounded up to a power of two, never below
//!   [`MIN_REALS`] / [`MIN_TABLE`] and never above the maxima (`xlb check` refuses a
//!   config beyond those).
//! - Pinned maps keep their size while it is enough: a restart or a reload never shrinks
//!   a map (that would drop slots in use).
//! - A restart or a reload whose config needs more **grows** the map in place of the old
//!   one, without losing a flow: the program is loaded over a new, larger map; the old
//!   map's entries are copied into it (slot numbers, which the connection tables hold, do
//!   not change); the new program is swapped into every pinned link; and the new map is
//!   pinned over the old one's name (an atomic rename), all before anything else is
//!   written (`loader`, `grow`). The connection tables grow too, under load rather than
//!   for the config: `conn_grow`. Only counter increments made by the old program between the copy and
//!   the swap (a few milliseconds) are lost.

use lb_common::{MAX_REALS, TABLE_CAPACITY, map_names};

/// The fewest real-server slots the maps are made with.
pub const MIN_REALS: u32 = 1024;
/// The fewest scheduling-table entries the arena is made with (one `mh` service of 60
/// real servers needs about 60,000).
pub const MIN_TABLE: u32 = 1 << 16;

/// What a config needs of the sized maps, all real servers up (`config::validate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Real-server slots: one per real server, and per sorry server that is not also one.
    pub reals: u64,
    /// Scheduling-table entries: every service's table with all its real servers up.
    pub table: u64,
}

/// Entries of the sized maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSizes {
    /// `xlb_reals` and `xlb_real_stats`.
    pub reals: u32,
    /// `xlb_table`.
    pub table: u32,
}

impl MapSizes {
    /// The ABI maxima (what every map was made with before sizing; tests use them).
    pub const MAX: Self = Self {
        reals: MAX_REALS,
        table: TABLE_CAPACITY,
    };

    /// The sizes a config that needs `needs` gets (see the module doc).
    pub fn for_needs(needs: Needs) -> Self {
        Self {
            reals: sized(needs.reals.saturating_mul(2), MIN_REALS, MAX_REALS),
            table: sized(needs.table.saturating_mul(3), MIN_TABLE, TABLE_CAPACITY),
        }
    }

    /// The entries wanted for map `name`, if it is one of the sized maps.
    pub fn of(&self, name: &str) -> Option<u32> {
        match name {
            map_names::REALS | map_names::REAL_STATS | map_names::REAL_CONNS => Some(self.reals),
            map_names::TABLE => Some(self.table),
            _ => None,
        }
    }

    /// The sized maps' names.
    pub const NAMES: [&'static str; 4] = [
        map_names::REALS,
        map_names::REAL_STATS,
        map_names::REAL_CONNS,
        map_names::TABLE,
    ];
}

impl Default for MapSizes {
    fn default() -> Self {
        Self::MAX
    }
}

/// `want` rounded up to a power of two within `[min, max]`.
fn sized(want: u64, min: u32, max: u32) -> u32 {
    let p = want.max(1).checked_next_power_of_two().unwrap_or(u64::MAX);
    p.clamp(u64::from(min), u64::from(max)) as u32
}

/// What becomes of a sized map found pinned with `pinned` entries when `want` are wanted:
/// kept as it is, or grown to `want`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Not pinned yet: created at `want`.
    Create(u32),
    /// Pinned and big enough: adopted at its size.
    Keep(u32),
    /// Pinned but too small: a new map of `to` entries takes its entries and its pin.
    Grow { from: u32, to: u32 },
}

impl Fate {
    pub fn of(pinned: Option<u32>, want: u32) -> Self {
        match pinned {
            None => Self::Create(want),
            Some(p) if p >= want => Self::Keep(p),
            Some(p) => Self::Grow { from: p, to: want },
        }
    }

    /// The entries the loaded map has.
    pub fn entries(&self) -> u32 {
        match *self {
            Self::Create(n) | Self::Keep(n) => n,
            Self::Grow { to, .. } => to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_config_gets_the_minimum_sizes() {
        let s = MapSizes::for_needs(Needs { reals: 5, table: 7 });
        assert_eq!((s.reals, s.table), (MIN_REALS, MIN_TABLE));
        assert_eq!(MapSizes::for_needs(Needs::default()).reals, MIN_REALS);
    }

    #[test]
    fn sizes_have_headroom_as_powers_of_two_up_to_the_maxima() {
        let s = MapSizes::for_needs(Needs {
            reals: 1000,
            table: 100_000,
        });
        assert_eq!(s.reals, 2048, "2 x 1000 rounded up");
        assert_eq!(s.table, 1 << 19, "3 x 100,000 rounded up");
        let huge = MapSizes::for_needs(Needs {
            reals: u64::MAX,
            table: u64::from(TABLE_CAPACITY),
        });
        assert_eq!(huge, MapSizes::MAX);
    }

    #[test]
    fn pinned_maps_are_kept_when_big_enough_and_grown_otherwise() {
        assert_eq!(Fate::of(None, 1024), Fate::Create(1024));
        assert_eq!(
            Fate::of(Some(1 << 17), 1024),
            Fate::Keep(1 << 17),
            "never shrunk"
        );
        assert_eq!(Fate::of(Some(1024), 1024), Fate::Keep(1024));
        assert_eq!(
            Fate::of(Some(1024), 4096),
            Fate::Grow {
                from: 1024,
                to: 4096
            }
        );
        assert_eq!(Fate::of(Some(1024), 4096).entries(), 4096);
    }

    #[test]
    fn only_the_slot_and_table_maps_are_sized() {
        let s = MapSizes::for_needs(Needs::default());
        assert_eq!(s.of(map_names::REAL_STATS), Some(s.reals));
        assert_eq!(s.of(map_names::REAL_CONNS), Some(s.reals));
        assert_eq!(s.of(map_names::TABLE), Some(s.table));
        assert_eq!(s.of(map_names::CONNS4), None);
        for name in MapSizes::NAMES {
            assert!(s.of(name).is_some());
        }
    }
}

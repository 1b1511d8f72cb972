//! Names and indexes: a connection table names a real server by its slot in `xlb_reals`
//! and a service by its id, which differ between directors; the wire names both by
//! address. Built from the pinned maps, rebuilt when they may have changed.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use lb_common::{REAL_F_IN_USE, SchedAlgo, ServiceKey, addr_of, ip_of};

use crate::dataplane::Maps;

/// What a service is to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    pub id: u32,
    pub algo: u32,
    pub persistence_timeout: u32,
    pub key: (IpAddr, u16, u8),
    /// The scheduling table: `xlb_table[table.0 .. table.0 + table.1]`.
    pub table: (u32, u32),
}

/// The services and real servers of one director's maps.
#[derive(Debug, Default)]
pub struct Directory {
    /// By (VIP, port, protocol).
    services: HashMap<(IpAddr, u16, u8), ServiceRef>,
    by_id: HashMap<u32, ServiceRef>,
    /// Real-server slot by (service id, address:port).
    slots: HashMap<(u32, SocketAddr), u32, foldhash::fast::RandomState>,
    /// Address:port and service id of each in-use slot (looked up for every live flow
    /// of every scan).
    reals: HashMap<u32, (u32, SocketAddr), foldhash::fast::RandomState>,
}

impl Directory {
    /// Reads the services (one syscall each) and the real-server array (mapped).
    pub fn read(maps: &Maps) -> Self {
        let mut d = Self::default();
        for (k, info) in maps.services.iter().filter_map(Result::ok) {
            d.add_service(
                (ip_of(&k.vip), k.port, k.proto),
                info.id,
                info.algo,
                info.persistence_timeout,
            );
            d.set_table(info.id, info.table_offset, info.table_len);
        }
        for i in 0..maps.sizes().reals {
            let r = maps.reals_view.get(i as usize);
            if r.flags & REAL_F_IN_USE != 0 {
                d.add_real(i, r.service_id, SocketAddr::new(ip_of(&r.addr), r.port));
            }
        }
        d
    }

    pub fn add_service(&mut self, key: (IpAddr, u16, u8), id: u32, algo: u32, persist: u32) {
        let s = ServiceRef {
            id,
            algo,
            persistence_timeout: persist,
            key,
            table: (0, 0),
        };
        self.services.insert(key, s);
        self.by_id.entry(id).or_insert(s);
    }

    /// Where service `id`'s scheduling table lies in `xlb_table`.
    pub fn set_table(&mut self, id: u32, offset: u32, len: u32) {
        if let Some(s) = self.by_id.get_mut(&id) {
            s.table = (offset, len);
        }
    }

    pub fn add_real(&mut self, slot: u32, service_id: u32, addr: SocketAddr) {
        self.slots.insert((service_id, addr), slot);
        self.reals.insert(slot, (service_id, addr));
    }

    /// The service of a flow to `vs` over `proto`: its own port's, else the VIP's
    /// all-ports service (port 0), as the XDP program looks it up.
    pub fn service(&self, vs: SocketAddr, proto: u8) -> Option<ServiceRef> {
        self.services
            .get(&(vs.ip(), vs.port(), proto))
            .or_else(|| self.services.get(&(vs.ip(), 0, proto)))
            .copied()
    }

    pub fn service_by_id(&self, id: u32) -> Option<ServiceRef> {
        self.by_id.get(&id).copied()
    }

    /// The address of real-server slot `slot` as a server of service `service_id`.
    pub fn real_addr(&self, slot: u32, service_id: u32) -> Option<SocketAddr> {
        self.reals
            .get(&slot)
            .filter(|(sid, _)| *sid == service_id)
            .map(|(_, a)| *a)
    }

    /// The slot of real server `addr` of service `service_id`.
    pub fn real_slot(&self, service_id: u32, addr: SocketAddr) -> Option<u32> {
        self.slots.get(&(service_id, addr)).copied()
    }

    /// Services scheduled by a hash of the flow (`mh`, `sh`): both directors with the
    /// same table send a flow to the same real server without being told.
    pub fn hashed_ids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .by_id
            .values()
            .filter(|s| is_hashed(s.algo))
            .map(|s| s.id)
            .collect();
        v.sort_unstable();
        v
    }

    pub fn services(&self) -> impl Iterator<Item = &ServiceRef> {
        self.by_id.values()
    }

    /// The `xlb_services` key of a service.
    pub fn service_key(s: &ServiceRef) -> ServiceKey {
        ServiceKey {
            vip: addr_of(s.key.0),
            port: s.key.1,
            proto: s.key.2,
            _pad: 0,
        }
    }
}

pub fn is_hashed(algo: u32) -> bool {
    algo == SchedAlgo::Mh as u32 || algo == SchedAlgo::Sh as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_found_by_address_and_only_for_their_service() {
        let mut d = Directory::default();
        let vs: SocketAddr = "198.18.0.100:80".parse().unwrap();
        d.add_service((vs.ip(), 80, 6), 4, SchedAlgo::Wrr as u32, 0);
        d.add_service((vs.ip(), 0, 17), 5, SchedAlgo::Mh as u32, 300);
        let rs: SocketAddr = "198.18.0.11:80".parse().unwrap();
        d.add_real(9, 4, rs);
        assert_eq!(d.service(vs, 6).unwrap().id, 4);
        assert_eq!(d.service(vs, 17).unwrap().id, 5, "the all-ports service");
        assert_eq!(d.service(vs, 132), None);
        assert_eq!(d.real_slot(4, rs), Some(9));
        assert_eq!(d.real_slot(5, rs), None);
        assert_eq!(d.real_addr(9, 4), Some(rs));
        assert_eq!(d.real_addr(9, 5), None, "a slot handed to another service");
        assert_eq!(d.hashed_ids(), [5]);
    }
}

//! What the data plane's maps can hold, checked before `xlb run` finds out: the number
//! of virtual services (`MAX_SERVICES`), of real-server slots (`MAX_REALS`, one per real
//! server and per sorry server that is not also a real server), and of scheduling-table
//! entries (`TABLE_CAPACITY`, every service's table with all its real servers up, as
//! `dataplane::sched` builds it). The first entry that does not fit is named.

use lb_common::{MAX_REALS, MAX_SERVICES, TABLE_CAPACITY};

use super::super::Config;
use super::super::locate::KeyPath;
use super::{Invalid, invalid};
use crate::dataplane::{
    sched::{Candidate, build_table_in},
    sizing::Needs,
};

/// The sizes of the data plane's maps.
#[derive(Clone, Copy)]
struct Limits {
    services: u32,
    reals: u32,
    table: u32,
}

const DATA_PLANE: Limits = Limits {
    services: MAX_SERVICES,
    reals: MAX_REALS,
    table: TABLE_CAPACITY,
};

pub(super) fn validate_limits(cfg: &Config) -> Result<(), Invalid> {
    check(cfg, &DATA_PLANE)
}

fn check(cfg: &Config, limits: &Limits) -> Result<(), Invalid> {
    let Limits {
        services: max_services,
        reals: max_reals,
        table: table_capacity,
    } = *limits;
    let root = KeyPath::root().key("virtual_server");
    // One service-map entry per plain service, one per port of a fwmark service's
    // match entries (the service ids, one per virtual server, are fewer).
    let mut keys = 0usize;
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        keys += vs.service_keys().len();
        if keys > max_services as usize {
            let total: usize = cfg
                .virtual_server
                .iter()
                .map(|v| v.service_keys().len())
                .sum();
            return Err(invalid(
                root.index(i),
                format!(
                    "{total} service-map entries (a virtual server each, a fwmark service one \
                     per port of its match entries): the data plane holds {max_services}; \
                     this is the first virtual server that does not fit"
                ),
            ));
        }
    }
    let mut slots: u64 = 0;
    let mut entries: u64 = 0;
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        let p = root.index(i);
        for j in 0..vs.real_server.len() {
            slots += 1;
            if slots > u64::from(max_reals) {
                return Err(invalid(
                    p.key("real_server").index(j),
                    format!(
                        "the data plane holds {max_reals} real servers in all (every \
                         virtual server's, sorry servers included); this is the first \
                         one that does not fit"
                    ),
                ));
            }
        }
        if let Some(sorry) = &vs.sorry_server {
            let port = sorry.port.unwrap_or(vs.port);
            let own_slot = !vs
                .real_server
                .iter()
                .any(|r| r.ip == sorry.ip && r.port == port);
            slots += u64::from(own_slot);
            if slots > u64::from(max_reals) {
                return Err(invalid(
                    p.key("sorry_server"),
                    format!(
                        "the data plane holds {max_reals} real servers in all (sorry \
                         servers included); this sorry server does not fit"
                    ),
                ));
            }
        }
        entries += u64::from(full_table_len(vs));
        if entries > u64::from(table_capacity) {
            return Err(invalid(
                p,
                format!(
                    "the scheduling tables need {entries} entries with this virtual \
                     server's (all real servers up), more than the data plane's \
                     {table_capacity}: lower the weights (wrr tables are as long as the \
                     sum of the weights divided by their gcd) or the number of services"
                ),
            ));
        }
    }
    Ok(())
}

/// What `cfg` needs of the maps sized from the config (`dataplane::sizing`): the slots
/// and table entries [`check`] counts, all real servers up.
pub(in crate::config) fn needs(cfg: &Config) -> Needs {
    let mut needs = Needs::default();
    for vs in &cfg.virtual_server {
        needs.reals += vs.real_server.len() as u64;
        if let Some(sorry) = &vs.sorry_server {
            let port = sorry.port.unwrap_or(vs.port);
            let own_slot = !vs
                .real_server
                .iter()
                .any(|r| r.ip == sorry.ip && r.port == port);
            needs.reals += u64::from(own_slot);
        }
        needs.table += u64::from(full_table_len(vs));
    }
    needs
}

/// The length of `vs`'s scheduling table with every real server up at its configured
/// weight (a sorry server alone has a table of one).
fn full_table_len(vs: &super::super::VirtualServer) -> u32 {
    let candidates: Vec<Candidate> = vs
        .real_server
        .iter()
        .enumerate()
        .map(|(k, r)| Candidate {
            index: k as u32,
            addr: lb_common::addr_of(r.ip),
            port: r.port,
            weight: r.weight,
        })
        .collect();
    let len = build_table_in(vs.lb_algo.sched_algo(), &candidates, candidates.len()).len() as u32;
    len.max(u32::from(vs.sorry_server.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small maps, so that a test config can overflow them.
    const SMALL: Limits = Limits {
        services: 2,
        reals: 3,
        table: 1000,
    };

    fn refused(text: &str, limits: &Limits) -> (String, String) {
        let cfg = Config::parse(text, "t.toml").unwrap();
        let e = check(&cfg, limits).unwrap_err();
        (e.path.to_string(), e.message)
    }

    const VS: &str = "[[virtual_server]]\nport = 80\ninterface = \"eth0\"\n";

    #[test]
    fn real_server_slots_overflow_at_the_first_that_does_not_fit() {
        let rs = |ip: &str| format!("[[virtual_server.real_server]]\nip = \"{ip}\"\n");
        let text = format!(
            "{VS}ip = \"198.18.0.1\"\n{}{}{VS}ip = \"198.18.0.2\"\n{}{}",
            rs("198.19.0.1"),
            rs("198.19.0.2"),
            rs("198.19.0.3"),
            rs("198.19.0.4"),
        );
        assert_eq!(
            refused(&text, &SMALL),
            (
                "virtual_server[1].real_server[1]".to_owned(),
                "the data plane holds 3 real servers in all (every virtual server's, sorry \
                 servers included); this is the first one that does not fit"
                    .to_owned()
            )
        );
        // A sorry server takes a slot of its own unless it is also a real server.
        let sorry = |ip: &str| format!("sorry_server = {{ ip = \"{ip}\" }}\n");
        let text = format!(
            "{VS}ip = \"198.18.0.1\"\n{}{}{}",
            sorry("198.19.0.9"),
            rs("198.19.0.1"),
            rs("198.19.0.2"),
        );
        check(&Config::parse(&text, "t.toml").unwrap(), &SMALL).unwrap();
        let text = format!(
            "{VS}ip = \"198.18.0.1\"\n{}{}{}{}",
            sorry("198.19.0.9"),
            rs("198.19.0.1"),
            rs("198.19.0.2"),
            rs("198.19.0.3"),
        );
        assert_eq!(refused(&text, &SMALL).0, "virtual_server[0].sorry_server");
        let text = format!(
            "{VS}ip = \"198.18.0.1\"\n{}{}{}{}",
            sorry("198.19.0.3"),
            rs("198.19.0.1"),
            rs("198.19.0.2"),
            rs("198.19.0.3"),
        );
        check(&Config::parse(&text, "t.toml").unwrap(), &SMALL).unwrap();
    }

    #[test]
    fn table_entries_are_counted_as_the_data_plane_builds_them() {
        let rs = |ip: &str, w: u32| {
            format!("[[virtual_server.real_server]]\nip = \"{ip}\"\nweight = {w}\n")
        };
        // Enough slots: only the table counts here.
        const ROOMY: Limits = Limits {
            reals: 100,
            ..SMALL
        };
        // wrr 600 + 300 (gcd 300) is 3 entries.
        let text = format!(
            "{VS}ip = \"198.18.0.1\"\n{}{}",
            rs("198.19.0.1", 600),
            rs("198.19.0.2", 300)
        );
        // Then w and 1 need w + 1 entries: 1000 in all fit, 1001 do not.
        let with = |w: u32| {
            format!(
                "{text}{VS}ip = \"198.18.0.2\"\n{}{}",
                rs("198.19.0.3", w),
                rs("198.19.0.4", 1)
            )
        };
        check(&Config::parse(&with(996), "t.toml").unwrap(), &ROOMY).unwrap();
        assert_eq!(
            refused(&with(997), &ROOMY),
            (
                "virtual_server[1]".to_owned(),
                "the scheduling tables need 1001 entries with this virtual server's (all \
                 real servers up), more than the data plane's 1000: lower the weights (wrr \
                 tables are as long as the sum of the weights divided by their gcd) or the \
                 number of services"
                    .to_owned()
            )
        );
        // mh: a prime of at least 1000 x servers: 1 server is already over 1000.
        let mh = format!(
            "{VS}ip = \"198.18.0.1\"\nlb_algo = \"mh\"\n{}",
            rs("198.19.0.1", 1)
        );
        let (path, message) = refused(&mh, &ROOMY);
        assert_eq!(path, "virtual_server[0]");
        assert!(
            message.starts_with("the scheduling tables need 1021 entries"),
            "{message}"
        );
    }
}

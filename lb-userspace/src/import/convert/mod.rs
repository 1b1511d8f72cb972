//! keepalived.conf's tree into xlb's TOML tree.
//!
//! Each block has a table of keywords that carry over under xlb's name (mostly the
//! same), the keywords needing their own code, the ones that are harmless to drop
//! (a warning names them) and the ones whose loss would change behaviour (an error).
//! Anything else is an error too: nothing in the input is silently dropped. Values are
//! carried with their keepalived line; checking them is left to `Config::parse`, whose
//! errors are reported at that line.
//!
//! The driver is here: it walks the top-level blocks, hands each to its module and
//! assembles the output. The block families are in `global_defs`, `vrrp`,
//! `virtual_server` and `checkers`, their keyword tables in `keywords`, and the
//! generic handling of one statement in `statement`.

mod checkers;
mod global_defs;
mod keywords;
mod routes;
mod statement;
mod sync;
mod virtual_server;
mod vrrp;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::emit::{Elem, Table, Value};
use super::parser::Node;
use super::{Diagnostics, Loc};
use crate::config::VirtualIpAddress;
use statement::in_subnet;
use virtual_server::{GroupMember, VsOut};

/// The conversion under way: the diagnostics, and the output collected block by
/// block until [`Converter::finish`] assembles it.
struct Converter<'d> {
    d: &'d mut Diagnostics,
    /// What the command line adds (`--interface`, `--fwmark`).
    opts: &'d super::Options,
    /// `global_defs`, merged over every such block.
    global: Table,
    /// `vrrp_script` tables by name.
    scripts: Table,
    instances: Vec<Elem>,
    /// `vrrp_sync_group` tables, with the member names and where each is listed.
    sync_groups: Vec<(Elem, Vec<(String, Loc)>)>,
    servers: Vec<VsOut>,
    /// `virtual_server_group`s by name; None when one was refused.
    groups: HashMap<String, Option<Vec<GroupMember>>>,
    /// The groups a `virtual_server group NAME` uses.
    used_groups: HashSet<String>,
    /// `global_defs default_interface`, for instances without `interface`.
    default_interface: Option<(String, Loc)>,
    /// `static_ipaddress`, `static_routes`, `static_rules` (top-level keys).
    statics: Table,
    /// keepalived's numbering of rules without a preference.
    rule_numbers: routes::RuleNumbers,
    /// The marks of `virtual_server fwmark N` (and group entries) met.
    used_marks: HashSet<u32>,
    /// `[sync]`, from `lvs_sync_daemon` or `lvs_sync_daemon_interface`.
    sync: Option<(Table, Loc)>,
}

/// Converts the top-level statements; problems go to `d`.
pub fn convert(nodes: &[Node], d: &mut Diagnostics, opts: &super::Options) -> Table {
    let mut converter = Converter {
        d,
        opts,
        global: Table::default(),
        scripts: Table::default(),
        instances: Vec::new(),
        sync_groups: Vec::new(),
        servers: Vec::new(),
        groups: HashMap::new(),
        used_groups: HashSet::new(),
        default_interface: None,
        statics: Table::default(),
        rule_numbers: routes::RuleNumbers::default(),
        used_marks: HashSet::new(),
        sync: None,
    };
    for n in nodes
        .iter()
        .filter(|n| n.keyword() == "virtual_server_group")
    {
        converter.vs_group(n);
    }
    for n in nodes {
        converter.top(n);
    }
    for n in nodes
        .iter()
        .filter(|n| n.keyword() == "virtual_server_group")
    {
        if let [name] = n.args() {
            if !converter.used_groups.contains(&name.text) {
                converter.warn(
                    n,
                    format!(
                        "virtual_server_group {} is used by no virtual_server: keepalived \
                         configures nothing for it, nor does this conversion",
                        name.text
                    ),
                );
            }
        }
    }
    if let Some(first) = nodes.first() {
        let file = super::Loc::file(first.loc.file.clone());
        for mark in converter.opts.fwmarks.keys() {
            if !converter.used_marks.contains(mark) {
                converter.d.warning(
                    &file,
                    format!("--fwmark {mark}: no virtual_server uses fwmark {mark}; ignored"),
                );
            }
        }
    }
    converter.finish()
}

impl Converter<'_> {
    // ---- top level ------------------------------------------------------------------

    fn top(&mut self, n: &Node) {
        match n.keyword() {
            "global_defs" => self.global_defs(n),
            "vrrp_script" => self.vrrp_script(n),
            "vrrp_instance" => self.vrrp_instance(n),
            "virtual_server" => self.virtual_server(n),
            "virtual_server_group" => {} // read first
            "vrrp_sync_group" => self.vrrp_sync_group(n),
            "static_ipaddress" => {
                let mut t = std::mem::take(&mut self.statics);
                self.static_ipaddress(n, &mut t);
                self.statics = t;
            }
            "static_routes" => {
                let mut t = std::mem::take(&mut self.statics);
                self.routes(n, &mut t, "static_routes");
                self.statics = t;
            }
            "static_rules" => {
                let mut t = std::mem::take(&mut self.statics);
                self.rules(n, &mut t, "static_rules");
                self.statics = t;
            }
            "vrrp_track_file" | "track_file" => self.err(
                n,
                format!(
                    "`{}` is not supported: xlb tracks scripts and interfaces; replace it \
                     by a vrrp_script that tests the file",
                    n.keyword()
                ),
            ),
            "vrrp_track_process" | "track_process" => self.err(
                n,
                format!(
                    "`{}` is not supported: replace it by a vrrp_script (e.g. `pgrep -x NAME`)",
                    n.keyword()
                ),
            ),
            "bfd_instance" => self.err(n, "bfd_instance is not supported: xlb has no BFD"),
            "garp_group" => self.warn(
                n,
                "`garp_group` ignored: xlb sends gratuitous ARP / NA with the \
                 vrrp_garp_master_* settings",
            ),
            "interface_up_down_delays" => self.warn(
                n,
                "`interface_up_down_delays` ignored: xlb acts on link changes at once",
            ),
            "linkbeat_interfaces" => self.warn(
                n,
                "`linkbeat_interfaces` ignored: xlb reads link state from netlink",
            ),
            "net_namespace" => self.err(
                n,
                "`net_namespace` is not converted: keepalived moves itself into that network \
                 namespace; run xlb there instead (`ip netns exec NAME xlb run ...`) and drop \
                 the line",
            ),
            "namespace_with_ipsets" | "instance" | "use_pid_dir" => self.err(
                n,
                format!("`{}` is not supported at the top level by xlb", n.keyword()),
            ),
            _ => self.unknown(n, "the top level"),
        }
    }

    // ---- the whole file ---------------------------------------------------------------

    fn finish(mut self) -> Table {
        self.strict_accept();
        self.check_sync_groups();
        let sync = self.sync_table();
        if let Some((ifname, loc)) = self.default_interface.clone() {
            for el in &mut self.instances {
                if let Value::Section(t) = &mut el.value {
                    if t.get("interface").is_none() {
                        t.set("interface", Value::Str(ifname.clone()), &loc);
                    }
                }
            }
        }
        let owners = self.vip_owners();
        let mut servers = std::mem::take(&mut self.servers);
        for vs in &mut servers {
            if vs.table.get("interface").is_some() || owners.iter().any(|o| o.addr == vs.ip) {
                continue;
            }
            let holder = owners
                .iter()
                .filter(|o| o.prefix_len > 0 && in_subnet(o.addr, o.prefix_len, vs.ip))
                .max_by_key(|o| o.prefix_len);
            match (holder, &self.opts.interface) {
                (None, Some(ifname)) => {
                    self.d.warning(
                        &vs.loc,
                        format!(
                            "{} is not a VIP of any vrrp_instance, so the service is always \
                             active (as an IPVS service is); xlb attaches it to {ifname} \
                             (--interface)",
                            vs.ip
                        ),
                    );
                    let loc = vs.loc.clone();
                    vs.table.set("interface", Value::Str(ifname.clone()), &loc);
                }
                (Some(o), _) => {
                    self.d.warning(
                        &vs.loc,
                        format!(
                            "{} is not a VIP of any vrrp_instance, so the service is always \
                             active (as an IPVS service is); xlb attaches it to {} because \
                             {}/{} of vrrp_instance {} holds it",
                            vs.ip, o.interface, o.addr, o.prefix_len, o.instance
                        ),
                    );
                    let loc = vs.loc.clone();
                    vs.table
                        .set("interface", Value::Str(o.interface.clone()), &loc);
                }
                (None, None) => {
                    let mut names: Vec<&str> =
                        owners.iter().map(|o| o.interface.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    let hint = if names.is_empty() {
                        "the interface that receives its traffic, e.g. `interface eth0`".to_owned()
                    } else {
                        format!("e.g. `interface {}`", names.join("` or `interface "))
                    };
                    self.d.error(
                        &vs.loc,
                        format!(
                            "{}: {} is not a VIP of any vrrp_instance, and no \
                             vrrp_instance's subnet holds it, so xlb cannot tell where to \
                             attach (IPVS needs no interface, XDP does): pass \
                             `--interface IFNAME` for every such virtual_server, or add \
                             `interface IFNAME` to this virtual_server block ({hint}), or \
                             add {} to a vrrp_instance's virtual_ipaddress",
                            vs.name, vs.ip, vs.ip
                        ),
                    );
                }
            }
        }

        let mut root = std::mem::take(&mut self.statics);
        if !self.global.is_empty() {
            let loc = self.global.entries[0].loc.clone();
            root.set("global_defs", Value::Section(self.global), &loc);
        }
        if !self.scripts.is_empty() {
            let loc = self.scripts.entries[0].loc.clone();
            root.set("vrrp_script", Value::Section(self.scripts), &loc);
        }
        if let Some(first) = self.instances.first() {
            let loc = first.loc.clone();
            root.set("vrrp_instance", Value::Array(self.instances), &loc);
        }
        if !self.sync_groups.is_empty() {
            let groups: Vec<Elem> = self.sync_groups.into_iter().map(|(g, _)| g).collect();
            let loc = groups[0].loc.clone();
            root.set("vrrp_sync_group", Value::Array(groups), &loc);
        }
        if let Some((t, loc)) = sync {
            root.set("sync", Value::Section(t), &loc);
        }
        if let Some(first) = servers.first() {
            let loc = first.loc.clone();
            let items = servers
                .into_iter()
                .map(|vs| Elem {
                    value: Value::Section(vs.table),
                    loc: vs.loc,
                })
                .collect();
            root.set("virtual_server", Value::Array(items), &loc);
        }
        root
    }

    /// Every VIP of every instance, with the interface it lives on.
    fn vip_owners(&self) -> Vec<Owner> {
        let mut out = Vec::new();
        for el in &self.instances {
            let Value::Section(t) = &el.value else {
                continue;
            };
            let name = match t.get("name") {
                Some(Value::Str(s)) => s.clone(),
                _ => continue,
            };
            let interface = match t.get("interface") {
                Some(Value::Str(s)) => s.clone(),
                _ => continue,
            };
            for key in ["virtual_ipaddress", "virtual_ipaddress_excluded"] {
                let Some(Value::Array(items)) = t.get(key) else {
                    continue;
                };
                for item in items {
                    let Value::Str(raw) = &item.value else {
                        continue;
                    };
                    if let Ok(v) = raw.parse::<VirtualIpAddress>() {
                        out.push(Owner {
                            addr: v.addr,
                            prefix_len: v.prefix_len,
                            interface: v.dev.unwrap_or_else(|| interface.clone()),
                            instance: name.clone(),
                        });
                    }
                }
            }
        }
        out
    }
}
struct Owner {
    addr: IpAddr,
    prefix_len: u8,
    interface: String,
    instance: String,
}
#[cfg(test)]
mod tests {
    use super::Value;
    use super::statement::{command_line, in_subnet, parse_num};
    use super::virtual_server::expand_range;

    #[test]
    fn import_convert_helpers() {
        assert_eq!(parse_num("3"), Some(Value::Int(3)));
        assert_eq!(parse_num("-20"), Some(Value::Int(-20)));
        assert_eq!(parse_num("0.5"), Some(Value::Float(0.5)));
        assert_eq!(parse_num("inf"), None);
        assert_eq!(parse_num("3s"), None);
        assert!(in_subnet(
            "10.0.0.0".parse().unwrap(),
            24,
            "10.0.0.77".parse().unwrap()
        ));
        assert!(!in_subnet(
            "10.0.0.0".parse().unwrap(),
            24,
            "10.0.1.1".parse().unwrap()
        ));
        assert!(in_subnet(
            "2001:db8::1".parse().unwrap(),
            64,
            "2001:db8::99".parse().unwrap()
        ));
        assert_eq!(expand_range("10.0.0.1-3").map(|v| v.len()), Some(3));
        assert_eq!(expand_range("10.0.0.5-3"), None);
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command_line(&words(&["/x.sh", "a b"])), "/x.sh 'a b'");
        // Whatever the words, xlb splits the line back into them.
        let hard = words(&["/x.sh", "it's", r"a\b", "x>y", "$HOME", "", "\"q\""]);
        assert_eq!(
            crate::process::words::split(&command_line(&hard)).unwrap(),
            crate::process::words::Split {
                argv: hard.clone(),
                shell_syntax: None
            }
        );
    }
}

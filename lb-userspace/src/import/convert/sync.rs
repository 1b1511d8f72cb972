//! keepalived's connection-sync keywords into xlb's `[sync]` table: `global_defs
//! lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]`
//! and the older `vrrp_instance { lvs_sync_daemon_interface INTERFACE }` (the instance
//! it is in gives the role). IPVS multicasts to its group unauthenticated; xlb takes
//! datagrams only from peers or with an HMAC, so an instance without `unicast_peer`
//! gets `key_file` (a warning says to create it).

use super::super::Loc;
use super::super::emit::{Table, Value};
use super::super::parser::Node;
use super::Converter;
use super::statement::parse_num;

/// Where the converted `key_file` points when sync would be multicast.
pub(super) const KEY_FILE: &str = "/etc/xlb/sync.key";

impl Converter<'_> {
    /// `global_defs lvs_sync_daemon ...`.
    pub(super) fn lvs_sync_daemon(&mut self, c: &Node) {
        let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
        let [interface, instance, rest @ ..] = args.as_slice() else {
            self.err(
                c,
                "lvs_sync_daemon takes INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] \
                 [ttl N] [group IP]",
            );
            return;
        };
        let mut t = Table {
            comment: Some(format!("lvs_sync_daemon ({})", c.loc)),
            ..Table::default()
        };
        t.set("instance", Value::Str((*instance).to_owned()), &c.loc);
        t.set("interface", Value::Str((*interface).to_owned()), &c.loc);
        for pair in rest.chunks(2) {
            match pair {
                [k @ ("id" | "maxlen" | "port" | "ttl"), v] => match parse_num(v) {
                    Some(n) => {
                        t.set(k, n, &c.loc);
                    }
                    None => self.err(c, format!("lvs_sync_daemon {k}: {v:?} is not a number")),
                },
                ["group", v] => {
                    t.set("group", Value::Str((*v).to_owned()), &c.loc);
                }
                [k, _] => self.err(
                    c,
                    format!("lvs_sync_daemon: unknown option {k:?} (id, maxlen, port, ttl, group)"),
                ),
                _ => self.err(c, format!("lvs_sync_daemon: {:?} needs a value", pair[0])),
            }
        }
        self.set_sync(t, c);
    }

    /// `vrrp_instance NAME { lvs_sync_daemon_interface INTERFACE }`.
    pub(super) fn lvs_sync_daemon_interface(&mut self, c: &Node, instance: &str) {
        let Some(interface) = self.one(c).map(str::to_owned) else {
            return;
        };
        let mut t = Table {
            comment: Some(format!("lvs_sync_daemon_interface ({})", c.loc)),
            ..Table::default()
        };
        t.set("instance", Value::Str(instance.to_owned()), &c.loc);
        t.set("interface", Value::Str(interface), &c.loc);
        self.set_sync(t, c);
    }

    fn set_sync(&mut self, t: Table, c: &Node) {
        if let Some((_, first)) = &self.sync {
            // keepalived logs "already specified - ignoring" and keeps the first.
            let first = first.clone();
            self.warn(
                c,
                format!(
                    "`{}` ignored: connection sync is already set at {first} (keepalived \
                     runs one sync daemon and ignores this line too)",
                    c.keyword()
                ),
            );
            return;
        }
        self.sync = Some((t, c.loc.clone()));
    }

    /// The `[sync]` table, with `key_file` when the instance multicasts.
    pub(super) fn sync_table(&mut self) -> Option<(Table, Loc)> {
        let (mut t, loc) = self.sync.take()?;
        if self.servers.is_empty() {
            self.d.warning(
                &loc,
                "connection sync dropped: no virtual_server, so no connections to sync",
            );
            return None;
        }
        let instance = match t.get("instance") {
            Some(Value::Str(s)) => s.clone(),
            _ => return None,
        };
        let unicast = self.instances.iter().any(|el| match &el.value {
            Value::Section(i) => {
                matches!(i.get("name"), Some(Value::Str(n)) if *n == instance)
                    && matches!(i.get("unicast_peer"), Some(Value::Array(a)) if !a.is_empty())
            }
            _ => false,
        });
        if !unicast {
            t.set("key_file", Value::Str(KEY_FILE.to_owned()), &loc);
            self.d.warning(
                &loc,
                format!(
                    "connection sync of vrrp_instance {instance} goes to a multicast group, \
                     which xlb authenticates: create {KEY_FILE} with the same secret on both \
                     directors (chmod 600), or give the instance unicast_peer"
                ),
            );
        }
        Some((t, loc))
    }
}

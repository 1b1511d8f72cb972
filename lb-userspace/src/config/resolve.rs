//! After deserialization: keepalived's inheritance of defaults from an enclosing block.

use super::Config;
use super::locate::{Document, KeyPath};

/// Fills values that keepalived inherits from an enclosing block when the file does
/// not set them where they apply. (Checker timing is not filled in: checkers keep it
/// as written, and `timing_in_force` resolves it.)
pub(crate) fn resolve(cfg: &mut Config, doc: &Document) {
    let root = KeyPath::root();
    let g = &cfg.global_defs;
    let vrrp_version = g.vrrp_version;
    let (down_timer_adverts, skip_check, check_src) = (
        g.vrrp_down_timer_adverts,
        g.vrrp_skip_check_adv_addr,
        g.vrrp_check_unicast_src,
    );
    for (i, vi) in cfg.vrrp_instance.iter_mut().enumerate() {
        let p = root.key("vrrp_instance").index(i);
        if !doc.contains(&p.key("down_timer_adverts")) {
            vi.down_timer_adverts = down_timer_adverts;
        }
        if !doc.contains(&p.key("skip_check_adv_addr")) {
            vi.skip_check_adv_addr = skip_check;
        }
        // keepalived: the global switch turns the check on for every instance.
        vi.check_unicast_src |= check_src;
        if !doc.contains(&p.key("version")) {
            vi.version = if vi.is_ipv6() == Some(true) {
                3
            } else {
                vrrp_version
            };
        }
    }
    for (i, vs) in cfg.virtual_server.iter_mut().enumerate() {
        let p = root.key("virtual_server").index(i);
        if vs.fwmark.is_some() {
            // Every entry's protocol in force, then the service's identity from the first.
            let default = vs.protocol;
            for m in &mut vs.fwmark_match {
                m.protocol = Some(m.protocol_or(default));
            }
            // (An `ip` / `port` written is left for validation to compare.)
            if let Some(first) = vs.fwmark_match.first() {
                if !doc.contains(&p.key("ip")) {
                    vs.ip = first.ip;
                }
                if !doc.contains(&p.key("port")) {
                    vs.port = first.first_port();
                }
                vs.protocol = first.protocol_or(default);
            }
            // DR keeps each packet's port: the real servers and the sorry server have
            // none of their own (keepalived's `real_server IP` in a fwmark service).
            if let Some(s) = &mut vs.sorry_server {
                s.port.get_or_insert(0);
            }
        }
        let rs_port = if vs.fwmark.is_some() { 0 } else { vs.port };
        for (j, rs) in vs.real_server.iter_mut().enumerate() {
            let q = p.key("real_server").index(j);
            if !doc.contains(&q.key("port")) {
                rs.port = rs_port;
            }
            if !doc.contains(&q.key("inhibit_on_failure")) {
                rs.inhibit_on_failure = vs.inhibit_on_failure;
            }
            if !doc.contains(&q.key("alpha")) {
                rs.alpha = vs.alpha;
            }
            let host = rs.virtualhost.as_ref().or(vs.virtualhost.as_ref());
            for c in [&mut rs.http_get, &mut rs.ssl_get].into_iter().flatten() {
                if c.virtualhost.is_none() {
                    c.virtualhost = host.cloned();
                }
            }
        }
    }
}

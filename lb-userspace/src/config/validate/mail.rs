//! What ends up in a mail's envelope or headers, taken from the config: the addresses
//! (`notification_email`, `notification_email_from`), `smtp_helo_name`, and the pieces
//! of subjects (`router_id`, VRRP instance and sync group names). A CR or LF (or any control
//! character) there could end an SMTP command or a header early and add one of the
//! writer's choosing, so it is refused here; the mail code refuses it again at send
//! time.

use super::super::Config;
use super::super::locate::KeyPath;
use super::{Invalid, invalid};

/// Checks every mail-bound string of `cfg`.
pub(super) fn validate_mail(cfg: &Config) -> Result<(), Invalid> {
    let g = &cfg.global_defs;
    let global = KeyPath::root().key("global_defs");
    let mut values: Vec<(KeyPath, &str)> = Vec::new();
    for (k, to) in g.notification_email.iter().enumerate() {
        values.push((global.key("notification_email").index(k), to));
    }
    for (key, v) in [
        ("notification_email_from", &g.notification_email_from),
        ("smtp_helo_name", &g.smtp_helo_name),
        ("router_id", &g.router_id),
    ] {
        if let Some(v) = v {
            values.push((global.key(key), v));
        }
    }
    for (i, vi) in cfg.vrrp_instance.iter().enumerate() {
        values.push((
            KeyPath::root().key("vrrp_instance").index(i).key("name"),
            &vi.name,
        ));
    }
    for (i, g) in cfg.vrrp_sync_group.iter().enumerate() {
        values.push((
            KeyPath::root().key("vrrp_sync_group").index(i).key("name"),
            &g.name,
        ));
    }
    for (path, value) in values {
        one_line(value).map_err(|m| invalid(path, m))?;
    }
    Ok(())
}

/// Refuses a control character (CR and LF first of all) in `value`.
pub(crate) fn one_line(value: &str) -> Result<(), String> {
    match value.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, c)) => Err(format!(
            "{c:?} at byte {at} of {value:?}: mail headers and SMTP commands are one line; \
             control characters (CR, LF, ...) are refused"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::Config;

    /// The error `text` gets, as `xlb check` prints it.
    fn refused(text: &str) -> String {
        Config::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn cr_or_lf_in_mail_bound_strings_is_refused_where_written() {
        let e = refused(
            "[global_defs]\nsmtp_server = \"198.18.0.1\"\nrouter_id = \"lb1\\r\\nBcc: x@example.org\"\n",
        );
        assert!(
            e.starts_with("t.toml:3:13: global_defs.router_id: '\\r' at byte 3 of "),
            "{e}"
        );
        let e = refused(
            "[global_defs]\nnotification_email = [\"ops@example.org\", \"a@b\\nRCPT TO:<c@d>\"]\n",
        );
        assert!(
            e.starts_with("t.toml:2:42: global_defs.notification_email[1]: '\\n' at byte 3"),
            "{e}"
        );
        let e = refused("[global_defs]\n\nsmtp_helo_name = \"h\\r\"\n");
        assert!(
            e.starts_with("t.toml:3:18: global_defs.smtp_helo_name: "),
            "{e}"
        );
        let e = refused("[global_defs]\nnotification_email_from = \"a@b\\n\"\n");
        assert!(
            e.starts_with("t.toml:2:27: global_defs.notification_email_from: "),
            "{e}"
        );
        let e = refused(
            "[[vrrp_instance]]\nname = \"VI_1\\nSubject: x\"\ninterface = \"eth0\"\n\
             virtual_router_id = 1\npriority = 100\nvirtual_ipaddress = [\"198.18.1.100\"]\n",
        );
        assert!(
            e.starts_with("t.toml:2:8: vrrp_instance[0].name: '\\n' at byte 4"),
            "{e}"
        );
    }
}

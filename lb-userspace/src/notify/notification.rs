//! What notifications report, in one shape for every channel: a VRRP transition, a real
//! server's verdict, a virtual service's quorum.

use std::{fmt, net::IpAddr};

use crate::{config::Protocol, health::RealKey};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Notification<'a> {
    /// An instance entered `state`.
    Vrrp {
        instance: &'a str,
        state: VrrpState,
        priority: u8,
    },
    /// A `vrrp_sync_group` entered `state`.
    VrrpGroup { group: &'a str, state: VrrpState },
    /// A real server went up or down, and why (the checker's reason).
    RealServer {
        key: &'a RealKey,
        up: bool,
        reason: &'a str,
    },
    /// A virtual service gained or lost its quorum.
    Quorum {
        vip: IpAddr,
        port: u16,
        protocol: Protocol,
        up: bool,
    },
}

/// The state a VRRP instance reports, with keepalived's names (what notify scripts,
/// FIFO readers and mail filters written for keepalived expect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    Master,
    Backup,
    Fault,
    /// The instance stopped (shutdown, or a reload that removed it).
    Stop,
}

impl fmt::Display for VrrpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Master => "MASTER",
            Self::Backup => "BACKUP",
            Self::Fault => "FAULT",
            Self::Stop => "STOP",
        })
    }
}

/// keepalived's event line, as notify FIFOs carry it: `INSTANCE "VI_1" MASTER 150`,
/// `RS [198.18.0.21]:tcp:80 [198.18.1.100]:tcp:80 UP`, `VS [198.18.1.100]:tcp:80 DOWN`.
impl fmt::Display for Notification<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up_down = |up: bool| if up { "UP" } else { "DOWN" };
        // `[198.18.0.21]:tcp:80`, `[2001:db8::21]:udp:53`.
        let endpoint = |ip: IpAddr, protocol: Protocol, port: u16| {
            format!("[{ip}]:{}:{port}", protocol.as_str().to_ascii_lowercase())
        };
        match *self {
            Self::Vrrp {
                instance,
                state,
                priority,
            } => write!(
                f,
                "INSTANCE \"{}\" {state} {priority}",
                quoted_name(instance)
            ),
            Self::VrrpGroup { group, state } => {
                write!(f, "GROUP \"{}\" {state}", quoted_name(group))
            }
            Self::RealServer { key, up, .. } => write!(
                f,
                "RS {} {} {}",
                endpoint(key.rip, key.protocol, key.rport),
                endpoint(key.vip, key.protocol, key.vport),
                up_down(up)
            ),
            Self::Quorum {
                vip,
                port,
                protocol,
                up,
            } => write!(f, "VS {} {}", endpoint(vip, protocol, port), up_down(up)),
        }
    }
}

/// `name` for the inside of keepalived's double quotes: `"`, `\\` and control
/// characters escaped C-style, so a line always ends where xlb ends it. A plain name
/// is unchanged.
fn quoted_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains(|c: char| c == '"' || c == '\\' || c.is_control()) {
        return name.into();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(instance: &str) -> String {
        Notification::Vrrp {
            instance,
            state: VrrpState::Master,
            priority: 150,
        }
        .to_string()
    }

    #[test]
    fn a_sync_group_s_line_is_keepalived_s() {
        let line = Notification::VrrpGroup {
            group: "G\n1",
            state: VrrpState::Fault,
        }
        .to_string();
        assert_eq!(line, r#"GROUP "G\n1" FAULT"#);
    }

    #[test]
    fn instance_names_cannot_forge_a_line() {
        assert_eq!(line("VI_1"), "INSTANCE \"VI_1\" MASTER 150");
        assert_eq!(
            line("x\"\nINSTANCE \"VI_2\" FAULT 0"),
            r#"INSTANCE "x\"\nINSTANCE \"VI_2\" FAULT 0" MASTER 150"#
        );
        assert_eq!(
            line("a\\b\r\t\u{1b}"),
            r#"INSTANCE "a\\b\r\t\x1b" MASTER 150"#
        );
        assert!(!line("x\ny").contains('\n'));
    }
}

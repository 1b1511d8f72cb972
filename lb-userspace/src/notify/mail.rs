//! Mail alerts (keepalived's `smtp_alert`): one message per event, handed to the relay in
//! `global_defs.smtp_server` in the background. Like keepalived, plain SMTP with no TLS
//! and no authentication: the relay is a local MTA that takes mail from this host. Every
//! reply is checked; a failure is logged with the relay's answer and the mail is dropped
//! (an alert never holds up a failover).
//!
//! The subjects and bodies follow keepalived's, so that mail filters written for it keep
//! working: `[LVS_01] VRRP Instance VI_1 - Entering MASTER state`,
//! `[LVS_01] Realserver [198.18.0.21]:tcp:80 - DOWN`.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result, bail};
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::TcpStream,
    time::timeout,
};
use tracing::{info, warn};

use super::notification::{Notification, VrrpState};
use crate::{
    config::GlobalDefs,
    net::{host_name, smtp::reply},
};

/// Where alerts go and who they come from (`global_defs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailer {
    /// `host[:port]`, port 25 if absent (`[v6]:port` for IPv6).
    relay: String,
    helo: String,
    from: String,
    to: Vec<String>,
    /// Bounds the connection, then each reply (`smtp_connect_timeout`).
    timeout: Duration,
    /// The `[...]` of every subject: `router_id`, else the host name.
    router_id: String,
}

/// The mail settings of a config: where alerts go, and `smtp_alert`'s default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct MailSettings {
    mailer: Option<Mailer>,
    default_on: bool,
}

impl MailSettings {
    pub(super) fn of(g: &GlobalDefs) -> Self {
        Self {
            mailer: Mailer::from_global(g),
            default_on: g.smtp_alert,
        }
    }

    /// The mailer for an object whose own `smtp_alert` is `own` (unset: the default).
    pub(super) fn for_object(&self, own: Option<bool>) -> Option<&Mailer> {
        if own.unwrap_or(self.default_on) {
            self.mailer.as_ref()
        } else {
            None
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Alert {
    subject: String,
    body: String,
}

impl Mailer {
    /// The mailer `global_defs` describes, if it names a relay and at least one recipient.
    pub fn from_global(g: &GlobalDefs) -> Option<Self> {
        let relay = g.smtp_server.clone()?;
        if g.notification_email.is_empty() {
            return None;
        }
        let host = host_name();
        Some(Self {
            relay,
            helo: g.smtp_helo_name.clone().unwrap_or_else(|| host.clone()),
            from: g
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("xlb@{host}")),
            to: g.notification_email.clone(),
            timeout: Duration::from_secs_f64(g.smtp_connect_timeout.max(0.1)),
            router_id: g.router_id.clone().unwrap_or(host),
        })
    }

    /// The message for `notice`, keepalived's; a VRRP instance's STOP sends none.
    pub(super) fn alert(&self, notice: &Notification) -> Option<Alert> {
        let id = &self.router_id;
        let up_down = |up: bool| if up { "UP" } else { "DOWN" };
        Some(match *notice {
            Notification::Vrrp {
                instance, state, ..
            } => Alert {
                subject: format!("[{id}] VRRP Instance {instance} - Entering {state} state"),
                body: match state {
                    VrrpState::Master => "=> VRRP Instance is now owning VRRP VIPs <=",
                    VrrpState::Backup => "=> VRRP Instance is nolonger owning VRRP VIPs <=",
                    VrrpState::Fault => "=> VRRP Instance is in FAULT state <=",
                    VrrpState::Stop => return None,
                }
                .to_owned(),
            },
            // keepalived mails a group's MASTER and BACKUP only.
            Notification::VrrpGroup { group, state } => match state {
                VrrpState::Master | VrrpState::Backup => Alert {
                    subject: format!("[{id}] VRRP Group {group} - Entering {state} state"),
                    body: format!("=> All VRRP group instances are now in {state} state <="),
                },
                VrrpState::Fault | VrrpState::Stop => return None,
            },
            Notification::RealServer { key, up, reason } => Alert {
                subject: format!(
                    "[{id}] Realserver [{}]:{}:{} - {}",
                    key.rip,
                    key.protocol.as_str().to_ascii_lowercase(),
                    key.rport,
                    up_down(up)
                ),
                body: if up {
                    format!("=> CHECK succeed on service: {reason} <=")
                } else {
                    format!("=> CHECK failed on service: {reason} <=")
                },
            },
            Notification::Quorum {
                vip,
                port,
                protocol,
                up,
            } => Alert {
                subject: format!(
                    "[{id}] Virtual Server {}/{} - {}",
                    SocketAddr::new(vip, port),
                    protocol.as_str().to_ascii_lowercase(),
                    up_down(up)
                ),
                body: if up {
                    "=> Gained quorum <="
                } else {
                    "=> Lost quorum <="
                }
                .to_owned(),
            },
        })
    }

    /// Sends `alert` in the background; the outcome is logged.
    pub(super) fn send(&self, alert: Alert) {
        let mailer = self.clone();
        tokio::spawn(async move {
            match mailer.deliver(&alert).await {
                Ok(()) => info!(relay = %mailer.relay, subject = %alert.subject, "mail alert sent"),
                Err(e) => warn!(
                    relay = %mailer.relay,
                    subject = %alert.subject,
                    "mail alert not sent: {e:#}"
                ),
            }
        });
    }

    /// One SMTP session: greeting, EHLO (HELO if refused), MAIL, RCPT for each
    /// recipient, DATA, QUIT.
    async fn deliver(&self, alert: &Alert) -> Result<()> {
        self.refuse_multiline(alert)?;
        let addr = relay_addr(&self.relay);
        let stream = timeout(self.timeout, TcpStream::connect(&addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        let mut s = BufReader::new(stream);
        let t = self.timeout;
        expect(&mut s, t, None, "greeting", &[220]).await?;
        if expect(
            &mut s,
            t,
            Some(format!("EHLO {}", self.helo)),
            "EHLO",
            &[250],
        )
        .await
        .is_err()
        {
            expect(
                &mut s,
                t,
                Some(format!("HELO {}", self.helo)),
                "HELO",
                &[250],
            )
            .await?;
        }
        let mail_from = format!("MAIL FROM:<{}>", self.from);
        expect(&mut s, t, Some(mail_from), "MAIL FROM", &[250]).await?;
        let mut accepted = 0;
        for to in &self.to {
            let rcpt = format!("RCPT TO:<{to}>");
            match expect(&mut s, t, Some(rcpt), "RCPT TO", &[250, 251]).await {
                Ok(()) => accepted += 1,
                Err(e) => warn!(recipient = %to, "mail alert: {e:#}"),
            }
        }
        if accepted == 0 {
            bail!("the relay refused every recipient");
        }
        expect(&mut s, t, Some("DATA".into()), "DATA", &[354]).await?;
        let message = self.message(alert, SystemTime::now());
        timeout(t, s.write_all(message.as_bytes()))
            .await
            .context("sending the message: timed out")??;
        expect(&mut s, t, None, "end of message", &[250]).await?;
        // The mail is queued; a relay that drops the line before answering QUIT is fine.
        let _ = expect(&mut s, t, Some("QUIT".into()), "QUIT", &[221]).await;
        Ok(())
    }

    /// The second line of defence after `xlb check`: an address, the HELO name or the
    /// subject with a control character (CR, LF, ...) is not sent at all, so it can
    /// never add an SMTP command or a header.
    fn refuse_multiline(&self, alert: &Alert) -> Result<()> {
        let fields = [
            ("smtp_helo_name", &self.helo),
            ("notification_email_from", &self.from),
        ]
        .into_iter()
        .chain(self.to.iter().map(|to| ("notification_email", to)))
        .chain(std::iter::once(("subject", &alert.subject)));
        for (what, value) in fields {
            if value.contains(|c: char| c.is_control()) {
                bail!("refused: {what} {value:?} holds a control character (CR, LF, ...)");
            }
        }
        Ok(())
    }

    /// The message as sent after DATA: headers, body, the final dot. CRLF line ends, and a
    /// line that starts with a dot gets another (RFC 5321 4.5.2).
    fn message(&self, alert: &Alert, now: SystemTime) -> String {
        let mut m = String::new();
        let mut line = |l: &str| {
            if l.starts_with('.') {
                m.push('.');
            }
            m.push_str(l);
            m.push_str("\r\n");
        };
        line(&format!("From: {}", self.from));
        line(&format!("Subject: {}", header_safe(&alert.subject)));
        line("X-Mailer: xlb");
        line(&format!("To: {}", self.to.join(", ")));
        line(&format!("Date: {}", rfc5322_date(now)));
        line("");
        for l in alert.body.lines() {
            line(l);
        }
        m.push_str(".\r\n");
        m
    }
}

/// Sends `command` (if any) and reads the reply; an unexpected code is an error that quotes
/// the relay.
async fn expect(
    s: &mut BufReader<TcpStream>,
    t: Duration,
    command: Option<String>,
    what: &str,
    ok: &[u16],
) -> Result<()> {
    if let Some(c) = command {
        timeout(t, s.write_all(format!("{c}\r\n").as_bytes()))
            .await
            .with_context(|| format!("{what}: timed out"))??;
    }
    let code = timeout(t, reply(s, what))
        .await
        .with_context(|| format!("{what}: no reply within {t:?}"))?
        .map_err(anyhow::Error::msg)?;
    if !ok.contains(&code) {
        bail!("{what}: the relay answered {code}");
    }
    Ok(())
}

/// `host[:port]` with port 25 when absent; a bare IPv6 address is taken whole.
fn relay_addr(relay: &str) -> String {
    if relay.parse::<SocketAddr>().is_ok() {
        return relay.to_owned();
    }
    if let Ok(ip) = relay.parse::<IpAddr>() {
        return SocketAddr::new(ip, 25).to_string();
    }
    match relay.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => relay.to_owned(),
        _ => format!("{relay}:25"),
    }
}

/// A header value on one line: an instance name with a newline must not add headers.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `Fri, 04 Dec 2026 16:50:00 +0000`.
fn rfc5322_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Protocol, health::RealKey};

    fn mailer() -> Mailer {
        let g = GlobalDefs {
            router_id: Some("LVS_01".into()),
            notification_email: vec!["ops@example.org".into(), "noc@example.org".into()],
            notification_email_from: Some("xlb@lb1.example.org".into()),
            smtp_server: Some("198.18.0.25".into()),
            smtp_helo_name: Some("lb1.example.org".into()),
            smtp_connect_timeout: 5.0,
            ..GlobalDefs::default()
        };
        Mailer::from_global(&g).unwrap()
    }

    #[test]
    fn no_relay_or_no_recipient_means_no_mail() {
        let mut g = GlobalDefs {
            notification_email: vec!["ops@example.org".into()],
            ..GlobalDefs::default()
        };
        assert_eq!(Mailer::from_global(&g), None);
        g.smtp_server = Some("127.0.0.1".into());
        assert!(Mailer::from_global(&g).is_some());
        g.notification_email.clear();
        assert_eq!(Mailer::from_global(&g), None);
    }

    #[test]
    fn the_object_setting_wins_over_the_global_default() {
        let mut g = GlobalDefs {
            smtp_server: Some("127.0.0.1".into()),
            notification_email: vec!["ops@example.org".into()],
            ..GlobalDefs::default()
        };
        let settings = MailSettings::of(&g);
        assert!(settings.for_object(None).is_none());
        assert!(settings.for_object(Some(true)).is_some());
        g.smtp_alert = true;
        let settings = MailSettings::of(&g);
        assert!(settings.for_object(None).is_some());
        assert!(settings.for_object(Some(false)).is_none());
    }

    #[test]
    fn a_sync_group_mails_master_and_backup_only() {
        let m = mailer();
        let group = |state| Notification::VrrpGroup { group: "G", state };
        let a = m.alert(&group(VrrpState::Master)).unwrap();
        assert_eq!(a.subject, "[LVS_01] VRRP Group G - Entering MASTER state");
        assert_eq!(
            a.body,
            "=> All VRRP group instances are now in MASTER state <="
        );
        let a = m.alert(&group(VrrpState::Backup)).unwrap();
        assert_eq!(
            a.body,
            "=> All VRRP group instances are now in BACKUP state <="
        );
        assert!(m.alert(&group(VrrpState::Fault)).is_none());
        assert!(m.alert(&group(VrrpState::Stop)).is_none());
    }

    #[test]
    fn subjects_and_bodies_are_keepalived_s() {
        let m = mailer();
        let vrrp = |state| Notification::Vrrp {
            instance: "VI_1",
            state,
            priority: 150,
        };
        let a = m.alert(&vrrp(VrrpState::Master)).unwrap();
        assert_eq!(
            a.subject,
            "[LVS_01] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert_eq!(a.body, "=> VRRP Instance is now owning VRRP VIPs <=");
        assert!(m.alert(&vrrp(VrrpState::Stop)).is_none());
        let key = RealKey {
            vip: "198.18.1.100".parse().unwrap(),
            vport: 80,
            protocol: Protocol::Tcp,
            rip: "198.18.0.21".parse().unwrap(),
            rport: 8080,
        };
        let a = m
            .alert(&Notification::RealServer {
                key: &key,
                up: false,
                reason: "tcp_check 198.18.0.21:8080: connection refused",
            })
            .unwrap();
        assert_eq!(
            a.subject,
            "[LVS_01] Realserver [198.18.0.21]:tcp:8080 - DOWN"
        );
        assert_eq!(
            a.body,
            "=> CHECK failed on service: tcp_check 198.18.0.21:8080: connection refused <="
        );
        let a = m
            .alert(&Notification::Quorum {
                vip: "2001:db8::1".parse().unwrap(),
                port: 443,
                protocol: Protocol::Tcp,
                up: true,
            })
            .unwrap();
        assert_eq!(
            a.subject,
            "[LVS_01] Virtual Server [2001:db8::1]:443/tcp - UP"
        );
    }

    #[test]
    fn the_message_has_crlf_lines_dot_stuffing_and_one_line_headers() {
        let m = mailer();
        let a = Alert {
            subject: "VI_1\r\nBcc: evil@example.org".into(),
            body: "first\n.hidden\nlast".into(),
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_796_402_600);
        assert_eq!(
            m.message(&a, t),
            "From: xlb@lb1.example.org\r\n\
             Subject: VI_1  Bcc: evil@example.org\r\n\
             X-Mailer: xlb\r\n\
             To: ops@example.org, noc@example.org\r\n\
             Date: Fri, 04 Dec 2026 16:43:20 +0000\r\n\
             \r\n\
             first\r\n\
             ..hidden\r\n\
             last\r\n\
             .\r\n"
        );
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        // A leap day, and the turn of a century that is a leap year.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 86_399);
        assert_eq!(rfc5322_date(t), "Tue, 29 Feb 2000 23:59:59 +0000");
    }

    /// A relay on loopback that answers from a script, one reply per line it reads after
    /// the greeting, and hands back every byte the client sent.
    async fn scripted_relay(
        replies: &'static [&'static str],
    ) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut s = tokio::io::BufReader::new(s);
            let mut seen = String::new();
            s.write_all(b"220 relay ready\r\n").await.unwrap();
            let mut in_data = false;
            let mut replies = replies.iter();
            loop {
                let mut line = String::new();
                if s.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                seen.push_str(&line);
                // The message's lines get no reply; its final dot does.
                if in_data && line != ".\r\n" {
                    continue;
                }
                let Some(r) = replies.next() else { break };
                in_data = r.starts_with("354");
                s.write_all(format!("{r}\r\n").as_bytes()).await.unwrap();
            }
            seen
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_relay_that_refuses_ehlo_gets_helo_and_the_whole_dialogue() {
        let (addr, relay) = scripted_relay(&[
            "502 EHLO not here",
            "250 hello",
            "250 ok",
            "550 no such user",
            "250-ok\r\n250 ok",
            "354 go on",
            "250 queued",
            "221 bye",
        ])
        .await;
        let mut m = mailer();
        m.relay = addr;
        let alert = m
            .alert(&Notification::Vrrp {
                instance: "VI_1",
                state: VrrpState::Fault,
                priority: 150,
            })
            .unwrap();
        m.deliver(&alert).await.unwrap();
        let seen = relay.await.unwrap();
        let head: Vec<&str> = seen.split("\r\n").take(6).collect();
        assert_eq!(
            head,
            [
                "EHLO lb1.example.org",
                "HELO lb1.example.org",
                "MAIL FROM:<xlb@lb1.example.org>",
                "RCPT TO:<ops@example.org>",
                "RCPT TO:<noc@example.org>",
                "DATA",
            ]
        );
        assert!(seen.contains("Subject: [LVS_01] VRRP Instance VI_1 - Entering FAULT state\r\n"));
        assert!(seen.ends_with("\r\n.\r\nQUIT\r\n"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_multiline_header_or_address_is_never_sent() {
        // No relay listens there: the refusal comes before any connection.
        let mut m = mailer();
        m.relay = "198.18.0.25:1".into();
        let alert = m
            .alert(&Notification::Vrrp {
                instance: "VI_1\r\nBcc: evil@example.org",
                state: VrrpState::Master,
                priority: 150,
            })
            .unwrap();
        let e = m.deliver(&alert).await.unwrap_err().to_string();
        assert!(
            e.starts_with("refused: subject \"[LVS_01] VRRP Instance VI_1\\r\\n"),
            "{e}"
        );
        let mut m = mailer();
        m.to.push("a@b>\r\nRCPT TO:<c@d".into());
        let alert = m
            .alert(&Notification::Vrrp {
                instance: "VI_1",
                state: VrrpState::Master,
                priority: 1,
            })
            .unwrap();
        let e = m.deliver(&alert).await.unwrap_err().to_string();
        assert!(e.starts_with("refused: notification_email "), "{e}");
    }

    #[tokio::test]
    async fn refusals_are_errors_that_quote_the_relay() {
        let (addr, _relay) = scripted_relay(&["250 hello", "250 ok", "550 no", "550 no"]).await;
        let mut m = mailer();
        m.relay = addr;
        let alert = m
            .alert(&Notification::Vrrp {
                instance: "VI_1",
                state: VrrpState::Master,
                priority: 150,
            })
            .unwrap();
        let e = m.deliver(&alert).await.unwrap_err();
        assert_eq!(e.to_string(), "the relay refused every recipient");

        let (addr, _relay) = scripted_relay(&["250 hello", "451 try later"]).await;
        m.relay = addr;
        let e = m.deliver(&alert).await.unwrap_err();
        assert_eq!(e.to_string(), "MAIL FROM: the relay answered 451");

        // Nothing listens: the connection error names the address.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        m.relay = closed.local_addr().unwrap().to_string();
        drop(closed);
        let e = m.deliver(&alert).await.unwrap_err();
        assert!(
            format!("{e:#}").starts_with(&format!("connecting to {}", m.relay)),
            "{e:#}"
        );
    }

    #[test]
    fn relay_addresses_default_to_port_25() {
        assert_eq!(relay_addr("127.0.0.1"), "127.0.0.1:25");
        assert_eq!(relay_addr("127.0.0.1:2525"), "127.0.0.1:2525");
        assert_eq!(relay_addr("2001:db8::25"), "[2001:db8::25]:25");
        assert_eq!(relay_addr("[2001:db8::25]:587"), "[2001:db8::25]:587");
        assert_eq!(relay_addr("mail.example.org"), "mail.example.org:25");
        assert_eq!(relay_addr("mail.example.org:26"), "mail.example.org:26");
    }
}

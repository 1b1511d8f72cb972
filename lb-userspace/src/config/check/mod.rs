//! Health checkers of a real server: `tcp_check`, `http_get` / `ssl_get`,
//! `misc_check`, `dns_check`, `udp_check`, `ping_check`, `smtp_check`, with
//! keepalived's option names and defaults.
//!
//! Every checker is a flat TOML table. The keys several kinds share, where the check
//! connects from and to and its timing, are declared once in [`checker_table!`]; each
//! kind adds its own. A checker keeps its timing options as written: the values in
//! force come from `timing_in_force` with what its real server hands down
//! ([`RealServerConfig::checker_defaults`](super::RealServerConfig::checker_defaults)),
//! by the one rule in [`timing`].

mod dns;
mod http;
mod timing;
mod udp;

#[cfg(test)]
mod tests;

use super::de as cde;

pub use dns::DnsCheck;
pub use http::{HttpGet, HttpProtocol, StatusCodes, UrlCheck};
pub use timing::{CheckTiming, KindDefaults, TimingOptions};
pub use udp::UdpCheck;

pub(crate) use timing::DEFAULT_DELAY_LOOP;

/// Declares a checker's table: a flat struct whose fields are, in the order given, the
/// shared groups of keys and the kind's own fields. The order is serde's, which
/// unknown-key errors list ("expected one of ..."). Groups:
///
/// - `connection`: `connect_ip`, `connect_port`, `bindto`, `bind_if`, `bind_port`,
///   `fwmark`;
/// - `ping_target`: the same without the ports;
/// - `timing(DEFAULTS)`: the keys of [`TimingOptions`], with a `timing_in_force`
///   resolved against `KindDefaults::DEFAULTS`;
/// - `timing_without_connect_timeout`: the same keys but `connect_timeout` (and no
///   `timing_in_force`: the kind writes its own).
///
/// (`#[serde(flatten)]` would share a struct instead, but serde does not support it
/// with `deny_unknown_fields`, and it buffers values, which loses their spans.)
macro_rules! checker_table {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        checker_table!(@munch [$(#[$meta])* $name] [] [] $($body)*);
    };
    (@munch $head:tt [$($fields:tt)*] [$($impls:tt)*] connection, $($rest:tt)*) => {
        checker_table!(@munch $head [$($fields)*
            /// Address to connect to. Default: the real server's.
            pub connect_ip: Option<::std::net::IpAddr>,
            /// Port to connect to. Default: the real server's (required when that is 0).
            #[serde(default, deserialize_with = "crate::config::de::opt_port")]
            pub connect_port: Option<u16>,
            /// Source address of the check. Default: chosen by routing.
            pub bindto: Option<::std::net::IpAddr>,
            /// Interface to bind to (needed for an IPv6 link-local `bindto`).
            pub bind_if: Option<String>,
            /// Source port. Default: ephemeral.
            #[serde(default, deserialize_with = "crate::config::de::opt_port")]
            pub bind_port: Option<u16>,
            /// fwmark set on the check's packets. Default: none.
            pub fwmark: Option<u32>,
        ] [$($impls)*] $($rest)*);
    };
    (@munch $head:tt [$($fields:tt)*] [$($impls:tt)*] ping_target, $($rest:tt)*) => {
        checker_table!(@munch $head [$($fields)*
            /// Address to ping. Default: the real server's.
            pub connect_ip: Option<::std::net::IpAddr>,
            /// Source address of the check. Default: chosen by routing.
            pub bindto: Option<::std::net::IpAddr>,
            /// Interface to bind to (needed for an IPv6 link-local `bindto`).
            pub bind_if: Option<String>,
            /// fwmark set on the check's packets. Default: none.
            pub fwmark: Option<u32>,
        ] [$($impls)*] $($rest)*);
    };
    (@munch $head:tt [$($fields:tt)*] [$($impls:tt)*] timing($defaults:ident), $($rest:tt)*) => {
        checker_table!(@munch $head [$($fields)*
            /// Seconds a check may take. Default: inherited, else 5.
            #[serde(default, deserialize_with = "crate::config::de::opt_seconds")]
            pub connect_timeout: Option<f64>,
        ] [$($impls)* { $defaults }] timing_without_connect_timeout, $($rest)*);
    };
    (@munch $head:tt [$($fields:tt)*] [$($impls:tt)*] timing_without_connect_timeout, $($rest:tt)*) => {
        checker_table!(@munch $head [$($fields)*
            /// Extra attempts before a server that is up is declared down (keepalived's
            /// `retry`, formerly `nb_get_retry`). Default: inherited, else the kind's.
            #[serde(default, alias = "nb_get_retry", deserialize_with = "crate::config::de::opt_count")]
            pub retry: Option<u32>,
            /// Seconds between those attempts. Default: inherited, else the kind's.
            #[serde(default, deserialize_with = "crate::config::de::opt_seconds")]
            pub delay_before_retry: Option<f64>,
            /// The first check starts after a random delay of up to this many seconds
            /// (0: at once). Default: inherited, else `delay_loop`.
            #[serde(default, deserialize_with = "crate::config::de::opt_seconds")]
            pub warmup: Option<f64>,
            /// Seconds between checks. Default: the real server's, else the virtual
            /// server's.
            #[serde(default, deserialize_with = "crate::config::de::opt_seconds")]
            pub delay_loop: Option<f64>,
            /// Start with the server considered down until a check passes. Default: the
            /// real server's `alpha`.
            pub alpha: Option<bool>,
            /// Log every failed attempt, not just transitions. Default:
            /// `global_defs.checker_log_all_failures` (false).
            pub log_all_failures: Option<bool>,
        ] [$($impls)*] $($rest)*);
    };
    (@munch $head:tt [$($fields:tt)*] $impls:tt
        $(#[$field_meta:meta])* pub $field:ident: $ty:ty, $($rest:tt)*) => {
        checker_table!(@munch $head [$($fields)* $(#[$field_meta])* pub $field: $ty,]
            $impls $($rest)*);
    };
    // Each element of the last list is `{ DEFAULTS }` of a `timing(DEFAULTS)` group.
    (@munch [$(#[$meta:meta])* $name:ident] [$($fields:tt)*] [$($impls:tt)*]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::serde::Deserialize, ::serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($fields)*
        }

        impl $name {
            /// The timing options as written on this checker.
            fn written_timing(&self) -> $crate::config::check::TimingOptions {
                $crate::config::check::TimingOptions {
                    connect_timeout: checker_table!(@connect_timeout self $($impls)*),
                    retry: self.retry,
                    delay_before_retry: self.delay_before_retry,
                    warmup: self.warmup,
                    delay_loop: self.delay_loop,
                    alpha: self.alpha,
                    log_all_failures: self.log_all_failures,
                }
            }

            $(checker_table!(@impl $impls);)*
        }
    };
    (@connect_timeout $self:ident { $defaults:ident }) => { $self.connect_timeout };
    (@connect_timeout $self:ident) => { None };
    (@impl { $defaults:ident }) => {
        /// The timing in force, given what the real server hands down.
        pub fn timing_in_force(
            &self,
            inherited: &$crate::config::check::TimingOptions,
        ) -> $crate::config::check::CheckTiming {
            self.written_timing()
                .over(inherited)
                .in_force(&$crate::config::check::KindDefaults::$defaults)
        }
    };
}
use checker_table;

checker_table! {
    /// `tcp_check = { ... }`: up when a TCP connection to the server completes within
    /// `connect_timeout`.
    pub struct TcpCheck {
        connection,
        timing(PLAIN),
    }
}

checker_table! {
    /// `misc_check = { misc_path = "...", ... }`: up when the command exits 0.
    /// `retry` defaults to 0 (keepalived's MISC_CHECK default).
    pub struct MiscCheck {
        /// Command line to run.
        pub misc_path: String,
        /// Seconds before the command is killed and the check fails. Default:
        /// `delay_loop`.
        #[serde(default, deserialize_with = "cde::opt_seconds")]
        pub misc_timeout: Option<f64>,
        /// Exit status 2..=255 sets the weight to status - 2 (keepalived's misc_dynamic).
        /// Default false.
        #[serde(default)]
        pub misc_dynamic: bool,
        /// `user [group]` to run as. Default: global `script_user`, else root.
        pub user: Option<String>,
        timing_without_connect_timeout,
    }
}

impl MiscCheck {
    /// The timing in force, given what the real server hands down; `connect_timeout` is
    /// `misc_timeout` (the real server's `connect_timeout` does not apply).
    pub fn timing_in_force(&self, inherited: &TimingOptions) -> CheckTiming {
        let mut t = self
            .written_timing()
            .over(inherited)
            .in_force(&KindDefaults::MISC);
        t.connect_timeout = self.misc_timeout.unwrap_or(t.delay_loop);
        t
    }
}

checker_table! {
    /// `ping_check = { ... }`: up when the server answers an ICMP (v6) echo request
    /// within `connect_timeout`, as keepalived's PING_CHECK.
    pub struct PingCheck {
        ping_target,
        timing(PLAIN),
    }
}

checker_table! {
    /// `smtp_check = { helo_name = "..." }`: up when the server greets with 220, answers
    /// `HELO` with 250, as keepalived's SMTP_CHECK (which then says `QUIT`).
    /// `connect_port` defaults to 25 (keepalived's SMTP_CHECK default);
    /// `connect_timeout` bounds the connection and the whole exchange.
    pub struct SmtpCheck {
        connection,
        /// Name given in `HELO`. Default: `global_defs.smtp_helo_name`, else the host name.
        pub helo_name: Option<String>,
        /// keepalived's `host { ... }` blocks: more hosts to check, e.g. `host = [{
        /// connect_ip = "198.18.0.31" }, { connect_ip = "198.18.0.32", connect_port =
        /// 587 }]`. As keepalived 2 does (each host becomes a checker of its own, and
        /// the check's own target stays one), the real server (or `connect_ip`) is
        /// checked, and each host on its own with its own retries; the real server is
        /// up only while every one passes. A key a host leaves out is this table's; a
        /// host that resolves to the check's own target is checked once. Default: none.
        #[serde(default)]
        pub host: Vec<SmtpHost>,
        timing(PLAIN),
    }
}

/// One `host` of an [`SmtpCheck`]: where to connect; each key defaults to the
/// `smtp_check`'s own.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpHost {
    /// Address to connect to. Default: the `smtp_check`'s, else the real server's.
    pub connect_ip: Option<::std::net::IpAddr>,
    /// Port. Default: the `smtp_check`'s, else 25.
    #[serde(default, deserialize_with = "crate::config::de::opt_port")]
    pub connect_port: Option<u16>,
    /// Source address. Default: the `smtp_check`'s.
    pub bindto: Option<::std::net::IpAddr>,
    /// Interface to bind to. Default: the `smtp_check`'s.
    pub bind_if: Option<String>,
    /// Source port. Default: the `smtp_check`'s.
    #[serde(default, deserialize_with = "crate::config::de::opt_port")]
    pub bind_port: Option<u16>,
    /// fwmark of the check's packets. Default: the `smtp_check`'s.
    pub fwmark: Option<u32>,
    /// Seconds the connection and the dialogue may take. Default: the `smtp_check`'s
    /// `connect_timeout` in force.
    #[serde(default, deserialize_with = "crate::config::de::opt_seconds")]
    pub connect_timeout: Option<f64>,
}

impl SmtpCheck {
    /// The targets to check: the check's own, then each `host` with the check's keys
    /// filled in.
    pub fn hosts(&self) -> Vec<SmtpHost> {
        let own = SmtpHost {
            connect_ip: self.connect_ip,
            connect_port: self.connect_port,
            bindto: self.bindto,
            bind_if: self.bind_if.clone(),
            bind_port: self.bind_port,
            fwmark: self.fwmark,
            connect_timeout: None,
        };
        let hosts = self.host.iter().map(|h| SmtpHost {
            connect_ip: h.connect_ip.or(own.connect_ip),
            connect_port: h.connect_port.or(own.connect_port),
            bindto: h.bindto.or(own.bindto),
            bind_if: h.bind_if.clone().or_else(|| own.bind_if.clone()),
            bind_port: h.bind_port.or(own.bind_port),
            fwmark: h.fwmark.or(own.fwmark),
            connect_timeout: h.connect_timeout,
        });
        std::iter::once(own.clone()).chain(hosts).collect()
    }
}

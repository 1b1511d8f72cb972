//! The timing options of a checker and keepalived's inheritance of them: a value
//! written on the checker wins, else the real server's, else the virtual server's
//! (`log_all_failures`: `global_defs.checker_log_all_failures`), else the checker
//! kind's default.

/// The timing options as written at one level (a checker, a real server, a virtual
/// server, `global_defs`); `None` where that level does not set them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimingOptions {
    pub connect_timeout: Option<f64>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<f64>,
    pub warmup: Option<f64>,
    pub delay_loop: Option<f64>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

impl TimingOptions {
    /// These values, with `lower`'s where these are not set.
    pub fn over(self, lower: &TimingOptions) -> TimingOptions {
        TimingOptions {
            connect_timeout: self.connect_timeout.or(lower.connect_timeout),
            retry: self.retry.or(lower.retry),
            delay_before_retry: self.delay_before_retry.or(lower.delay_before_retry),
            warmup: self.warmup.or(lower.warmup),
            delay_loop: self.delay_loop.or(lower.delay_loop),
            alpha: self.alpha.or(lower.alpha),
            log_all_failures: self.log_all_failures.or(lower.log_all_failures),
        }
    }

    /// The values in force: these, else the kind's defaults.
    pub fn in_force(&self, kind: &KindDefaults) -> CheckTiming {
        let delay_loop = self.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
        CheckTiming {
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            retry: self.retry.unwrap_or(kind.retry),
            delay_before_retry: self
                .delay_before_retry
                .or(kind.delay_before_retry)
                .unwrap_or(delay_loop),
            warmup: self.warmup.unwrap_or(delay_loop),
            delay_loop,
            alpha: self.alpha.unwrap_or(false),
            log_all_failures: self.log_all_failures.unwrap_or(false),
        }
    }
}

/// keepalived's `delay_loop` default (a virtual server's), seconds.
pub(crate) const DEFAULT_DELAY_LOOP: f64 = 60.0;
/// keepalived's `connect_timeout` default, seconds.
const DEFAULT_CONNECT_TIMEOUT: f64 = 5.0;

/// The defaults that differ between checker kinds (keepalived's, per checker).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindDefaults {
    pub retry: u32,
    /// `None`: the `delay_loop` in force (DNS_CHECK).
    pub delay_before_retry: Option<f64>,
}

impl KindDefaults {
    /// TCP_CHECK, UDP_CHECK, PING_CHECK, SMTP_CHECK.
    pub const PLAIN: KindDefaults = KindDefaults {
        retry: 1,
        delay_before_retry: Some(1.0),
    };
    /// HTTP_GET, SSL_GET.
    pub const HTTP: KindDefaults = KindDefaults {
        retry: 1,
        delay_before_retry: Some(3.0),
    };
    /// MISC_CHECK.
    pub const MISC: KindDefaults = KindDefaults {
        retry: 0,
        delay_before_retry: Some(1.0),
    };
    /// DNS_CHECK.
    pub const DNS: KindDefaults = KindDefaults {
        retry: 3,
        delay_before_retry: None,
    };
}

/// The timing options of one checker as in force: what the health monitor runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckTiming {
    /// Seconds a check may take (`misc_timeout` for `misc_check`).
    pub connect_timeout: f64,
    pub retry: u32,
    pub delay_before_retry: f64,
    /// Upper bound of the random delay before the first check, seconds.
    pub warmup: f64,
    pub delay_loop: f64,
    pub alpha: bool,
    pub log_all_failures: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(retry: Option<u32>, delay_loop: Option<f64>) -> TimingOptions {
        TimingOptions {
            retry,
            delay_loop,
            ..TimingOptions::default()
        }
    }

    #[test]
    fn config_timing_nothing_written_takes_the_kind_defaults() {
        let t = TimingOptions::default().in_force(&KindDefaults::PLAIN);
        assert_eq!(
            t,
            CheckTiming {
                connect_timeout: 5.0,
                retry: 1,
                delay_before_retry: 1.0,
                warmup: 60.0,
                delay_loop: 60.0,
                alpha: false,
                log_all_failures: false,
            }
        );
        let http = TimingOptions::default().in_force(&KindDefaults::HTTP);
        assert_eq!((http.retry, http.delay_before_retry), (1, 3.0));
        let misc = TimingOptions::default().in_force(&KindDefaults::MISC);
        assert_eq!((misc.retry, misc.delay_before_retry), (0, 1.0));
    }

    #[test]
    fn config_timing_checker_over_real_server_over_virtual_server() {
        let virtual_server = TimingOptions {
            connect_timeout: Some(7.0),
            retry: Some(4),
            delay_before_retry: Some(2.0),
            delay_loop: Some(30.0),
            log_all_failures: Some(true),
            ..TimingOptions::default()
        };
        let real_server = TimingOptions {
            retry: Some(6),
            delay_loop: Some(9.0),
            alpha: Some(true),
            ..TimingOptions::default()
        };
        let checker = written(Some(2), None);
        let t = checker
            .over(&real_server.over(&virtual_server))
            .in_force(&KindDefaults::PLAIN);
        assert_eq!(t.retry, 2, "the checker's own value");
        assert_eq!(
            t.delay_loop, 9.0,
            "the real server's, over the virtual server's"
        );
        assert_eq!(t.connect_timeout, 7.0, "the virtual server's");
        assert_eq!(t.delay_before_retry, 2.0);
        assert!(t.alpha && t.log_all_failures);
    }

    #[test]
    fn config_timing_warmup_and_dns_retry_delay_follow_delay_loop() {
        let t = written(None, Some(10.0)).in_force(&KindDefaults::DNS);
        assert_eq!(
            (t.retry, t.delay_before_retry, t.warmup, t.delay_loop),
            (3, 10.0, 10.0, 10.0)
        );
        let zero_warmup = TimingOptions {
            warmup: Some(0.0),
            ..written(None, Some(10.0))
        };
        assert_eq!(zero_warmup.in_force(&KindDefaults::DNS).warmup, 0.0);
    }
}

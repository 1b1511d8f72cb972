//! `deserialize_with` helpers: durations in seconds and integers with a documented range.
//! Their errors carry the value's span (the TOML deserializer attaches it), so a bad
//! value is reported at its own line and column with its key path.

use std::fmt::Display;

use serde::de::{Deserialize, Deserializer, Error};

/// Largest accepted duration, in seconds: keeps `Duration::from_secs_f64` far from
/// overflow while allowing anything an operator could mean (136 years).
const MAX_SECONDS: f64 = u32::MAX as f64;

fn check_seconds<E: Error>(v: f64) -> Result<f64, E> {
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(E::custom(format_args!(
            "{v} is not a duration: expected seconds, an integer or a decimal in 0..={MAX_SECONDS}"
        )))
    }
}

/// Seconds, integer or decimal, as keepalived's `<TIMER>`.
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    check_seconds(f64::deserialize(d)?)
}

/// Optional seconds (`None` when the key is absent; pair with `#[serde(default)]`).
pub(crate) fn opt_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    seconds(d).map(Some)
}

fn in_range<'de, D, T>(d: D, lo: i64, hi: i64) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
    <T as TryFrom<i64>>::Error: Display,
{
    let v = i64::deserialize(d)?;
    if !(lo..=hi).contains(&v) {
        return Err(D::Error::custom(format_args!(
            "{v} is out of range ({lo}..={hi})"
        )));
    }
    T::try_from(v).map_err(D::Error::custom)
}

/// `"IP:PORT"` (IPv6 as `"[2001:db8::1]:9471"`), present: `global_defs.metrics_listen`.
pub(crate) fn opt_socket_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(|_| {
        D::Error::custom(format_args!(
            "{s:?} is not an address to listen on: expected \"IP:PORT\", \
             e.g. \"127.0.0.1:9471\" or \"[::1]:9471\""
        ))
    })
}

/// A TCP/UDP port, 0..=65535.
pub(crate) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    in_range(d, 0, 65535)
}

pub(crate) fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    port(d).map(Some)
}

/// An IPVS real server weight, 0..=65535 (0: no new flows, keeps existing ones).
pub(crate) fn weight<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, 0, 65535)
}

/// VRRP virtual router id, 1..=255 (RFC 3768 5.3.3, RFC 5798 5.2.3).
pub(crate) fn vrid<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    in_range(d, 1, 255)
}

/// VRRP priority, 1..=255: 0 is reserved for "master resigning", 255 for the address
/// owner (RFC 5798 5.2.4).
pub(crate) fn priority<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    in_range(d, 1, 255)
}

/// VRRP version, 2 or 3.
pub(crate) fn vrrp_version<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    in_range(d, 2, 3)
}

/// Priority adjustment of a tracker, -253..=253 as keepalived.
pub(crate) fn track_weight<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    in_range(d, -253, 253)
}

/// keepalived's `down_timer_adverts`, 1..=100.
pub(crate) fn down_timer_adverts<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, 1, 100)
}

/// A count that must be at least 1 (`rise`, `fall`, `quorum`).
pub(crate) fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, 1, u32::MAX.into())
}

/// A count, 0..=u32::MAX, reported as out of range rather than as a type error.
pub(crate) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, 0, u32::MAX.into())
}

pub(crate) fn opt_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    count(d).map(Some)
}

/// Connection-table slots: a power of two in 2^12..=2^26 (IPv4; IPv6 gets a quarter).
pub(crate) fn conn_table_size<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v: u32 = in_range(d, 1 << 12, 1 << 26)?;
    if !v.is_power_of_two() {
        return Err(D::Error::custom(format_args!(
            "{v} is not a power of two (4096, 8192, ... 67108864)"
        )));
    }
    Ok(v)
}

/// A connection idle timeout: 1 s to 30 days (IPVS takes up to about 2^31 jiffies).
pub(crate) fn conn_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(1.0..=2_592_000.0).contains(&v) {
        return Err(D::Error::custom(format_args!(
            "{v} is out of range: a timeout in seconds, 1..=2592000 (30 days)"
        )));
    }
    Ok(v)
}

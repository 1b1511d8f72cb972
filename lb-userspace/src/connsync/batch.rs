//! Entries into datagrams: as many as fit `maxlen` each (header and HMAC included),
//! signed when there is a key. Pure, so the bench measures the bytes the task sends.

use super::{
    auth::Key,
    wire::{self, Entry, HEADER_LEN, HMAC_LEN, Kind},
};

/// The datagrams carrying `entries`, each with the number of entries it carries.
/// `sequence` is the last sequence number used; each datagram takes the next.
pub fn datagrams(
    entries: &[Entry],
    maxlen: u16,
    sync_id: u8,
    key: Option<&Key>,
    sequence: &mut u32,
) -> Vec<(Vec<u8>, usize)> {
    let mac = if key.is_some() { HMAC_LEN } else { 0 };
    let capacity = usize::from(maxlen).saturating_sub(HEADER_LEN + mac);
    let mut out = Vec::new();
    for run in runs(entries, capacity) {
        *sequence = sequence.wrapping_add(1);
        let mut d = Vec::with_capacity(usize::from(maxlen));
        wire::encode_header(&mut d, Kind::Entries, sync_id, *sequence, 0, key.is_some());
        let mut n = 0u16;
        for e in run {
            if wire::encode_entry(&mut d, e).is_some() {
                n += 1;
            }
        }
        wire::set_count(&mut d, n);
        if let Some(k) = key {
            k.sign(&mut d);
        }
        out.push((d, run.len()));
    }
    out
}

/// `entries` cut into runs that fit `capacity` payload bytes each (an entry larger than
/// the capacity goes alone).
fn runs(entries: &[Entry], capacity: usize) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, e) in entries.iter().enumerate() {
        let len = e.wire_len();
        if used + len > capacity && i > start {
            out.push(&entries[start..i]);
            start = i;
            used = 0;
        }
        used += len;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_fit_maxlen_and_carry_every_entry() {
        let e = Entry {
            protocol: 6,
            state: 0,
            flags: 0,
            remaining_s: 1,
            virtual_service: "198.18.0.100:80".parse().unwrap(),
            client: "198.18.0.1:1".parse().unwrap(),
            real: "198.18.0.11:80".parse().unwrap(),
        };
        let entries = vec![e; 101];
        let key = Key::new(b"k");
        let mut seq = 0;
        // 1472 - 16 - 32 = 1424 bytes: 50 entries of 28 bytes.
        let d = datagrams(&entries, 1472, 3, Some(&key), &mut seq);
        assert_eq!(d.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [50, 50, 1]);
        assert_eq!(seq, 3);
        assert!(d.iter().all(|(b, _)| b.len() <= 1472));
        let first = wire::decode(&d[0].0).unwrap();
        assert_eq!((first.header.sequence, first.header.sync_id), (1, 3));
        assert_eq!(first.entries.len(), 50);
        let (body, mac) = wire::signed_part(&d[2].0).unwrap();
        assert!(key.verify(body, mac));
        assert!(datagrams(&[], 1472, 0, None, &mut seq).is_empty());
    }
}

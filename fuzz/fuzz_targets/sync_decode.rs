//! `xlb::connsync::wire::decode` on arbitrary bytes: it must never panic, and whatever
//! it accepts encodes again to a datagram that decodes to the same entries. Seeds: the
//! fixtures in `lb-userspace/src/connsync/wire.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xlb::connsync::wire::{FLAG_HMAC, decode, encode_entry, encode_header};

fuzz_target!(|data: &[u8]| {
    let Ok(d) = decode(data) else {
        return;
    };
    let h = d.header;
    let mut again = Vec::new();
    encode_header(
        &mut again,
        h.kind,
        h.sync_id,
        h.sequence,
        h.count,
        h.flags & FLAG_HMAC != 0,
    );
    for e in &d.entries {
        encode_entry(&mut again, e).expect("a decoded entry has one family");
    }
    if let Some(digest) = d.digest {
        again.extend_from_slice(&digest);
    }
    if let Some(mac) = d.mac {
        again.extend_from_slice(&mac);
    }
    let back = decode(&again).expect("re-encoded datagram decodes");
    assert_eq!(
        (back.entries, back.digest, back.mac),
        (d.entries, d.digest, d.mac)
    );
    assert_eq!((back.header.kind, back.header.sequence), (h.kind, h.sequence));
});

//! The one hash xlb uses, in the kernel and in userspace: MurmurHash3 x86_32.
//!
//! It is fixed and documented so that two directors (and the test model) compute the same
//! flow-to-slot mapping and build byte-identical Maglev tables:
//! - `flow_hash(addr, port)` = MurmurHash3_x86_32(addr (16 bytes) ++ port as u32
//!   little-endian (4 bytes), seed `FLOW_SEED`). IPv4 addresses are hashed in their
//!   IPv4-mapped form; `port` is 0 unless the service hashes ports.
//! - Maglev offset / skip of a real server: MurmurHash3_x86_32 of its canonical 20 bytes
//!   (address ++ port as u32 little-endian) with seeds [`MAGLEV_OFFSET_SEED`] and
//!   [`MAGLEV_SKIP_SEED`].

const FLOW_SEED: u32 = 0x786c_6201; // "xlb\x01"
pub const MAGLEV_OFFSET_SEED: u32 = 0x786c_6202;
pub const MAGLEV_SKIP_SEED: u32 = 0x786c_6203;

pub(crate) const C1: u32 = 0xcc9e_2d51;
pub(crate) const C2: u32 = 0x1b87_3593;

#[inline(always)]
const fn mix_k(mut k: u32) -> u32 {
    k = k.wrapping_mul(C1);
    k = k.rotate_left(15);
    k.wrapping_mul(C2)
}

#[inline(always)]
const fn mix_h(mut h: u32, k: u32) -> u32 {
    h ^= mix_k(k);
    h = h.rotate_left(13);
    h.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

/// MurmurHash3's 32-bit finaliser (also the connection tables' last step).
#[inline(always)]
pub(crate) const fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// MurmurHash3_x86_32 of `data`.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    let mut h = seed;
    let blocks = data.len() / 4;
    let mut i = 0;
    while i < blocks {
        let b = [
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ];
        h = mix_h(h, u32::from_le_bytes(b));
        i += 1;
    }
    let tail = &data[blocks * 4..];
    let mut k = 0u32;
    if tail.len() >= 3 {
        k ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        k ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        k ^= tail[0] as u32;
        h ^= mix_k(k);
    }
    fmix(h ^ data.len() as u32)
}

/// The hash of a client (and optionally its port) that picks a slot in `sh` and `mh`
/// tables. Written over fixed-size words so the eBPF verifier sees no loop.
#[inline(always)]
pub fn flow_hash(addr: &[u8; 16], port: u16) -> u32 {
    let w = |i: usize| u32::from_le_bytes([addr[i], addr[i + 1], addr[i + 2], addr[i + 3]]);
    let mut h = FLOW_SEED;
    h = mix_h(h, w(0));
    h = mix_h(h, w(4));
    h = mix_h(h, w(8));
    h = mix_h(h, w(12));
    h = mix_h(h, port as u32);
    fmix(h ^ 20)
}

/// The canonical 20 bytes of a real server that Maglev hashes.
pub fn real_server_bytes(addr: &[u8; 16], port: u16) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[..16].copy_from_slice(addr);
    b[16..].copy_from_slice(&(port as u32).to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_reference_vectors() {
        // Published MurmurHash3_x86_32 vectors.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_32(&[0xff, 0xff, 0xff, 0xff], 0), 0x7629_3b50);
        assert_eq!(murmur3_32(&[0x21, 0x43, 0x65, 0x87], 0), 0xf55b_516b);
        assert_eq!(murmur3_32(&[0x21, 0x43, 0x65], 0), 0x7e4a_8634);
        assert_eq!(murmur3_32(&[0x21, 0x43], 0), 0xa0f7_b07a);
        assert_eq!(murmur3_32(&[0x21], 0), 0x7266_1cf4);
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
    }

    #[test]
    fn flow_hash_is_murmur3_of_the_documented_bytes() {
        let addr = crate::v4_mapped([198, 18, 0, 1]);
        let bytes = real_server_bytes(&addr, 4242);
        assert_eq!(flow_hash(&addr, 4242), murmur3_32(&bytes, FLOW_SEED));
        assert_ne!(flow_hash(&addr, 4242), flow_hash(&addr, 4243));
    }
}

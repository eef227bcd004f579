//! A small fast hasher for the short keys of flowwatch's hash maps (country, LoB and flow
//! names): the maps of flows ([`crate::FlowMap`]), of a batch's groups and of a replay.

use std::hash::{BuildHasherDefault, Hasher};

/// Builds [`FxHasher`]s: the `S` of a `HashMap<K, V, S>`.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// A small fast hasher for short keys (the Firefox/rustc "Fx" hash).
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Short strings (country, LoB, flow names) end here: one step, not one per byte.
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            let v = u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59);
            self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        // The low bits of a product depend only on the low bits of its factors, and hash maps
        // index by the low bits: without this, names that differ only in their later bytes
        // ("L000001", "L000002", …) share buckets and every lookup compares strings.
        self.hash.rotate_left(26)
    }
}

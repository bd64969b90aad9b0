//! SplitMix64: a tiny, fast, seedable generator, and the per-entity streams built on it.
//!
//! Every customer, product and order draws from its own stream, seeded from the shop's seed
//! and its id. An entity's rows can therefore be rebuilt at any time, in any order, without
//! generating the others.

/// Which kind of entity a stream belongs to, so that customer 7 and order 7 differ.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Plan = 1,
    Customer = 2,
    Product = 3,
    Order = 4,
}

/// The SplitMix64 generator (Steele, Lea and Flood, 2014).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finaliser: a bijective mix of all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The stream of one entity of the shop seeded with `seed`.
    pub(crate) fn entity(seed: u64, stream: Stream, id: i64) -> Self {
        let kind = mix(seed ^ mix(stream as u64));
        Self::new(mix(kind ^ id.cast_unsigned()))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is below 2^-40 for the sizes used here.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = hi.abs_diff(lo).saturating_add(1);
        lo.wrapping_add_unsigned(self.below(span))
    }

    /// An index in `0..len` (`len > 0`).
    pub(crate) fn index(&mut self, len: usize) -> usize {
        let len64 = u64::try_from(len).unwrap_or(u64::MAX);
        usize::try_from(self.below(len64)).unwrap_or(0)
    }

    /// True with probability `1/n`.
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// `+1` or `-1`, evenly.
    pub(crate) fn sign(&mut self) -> i64 {
        if self.one_in(2) { 1 } else { -1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn ranges_stay_inside_their_bounds() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..10_000 {
            let x = rng.range(-3, 5);
            assert!((-3..=5).contains(&x));
            assert!(rng.index(3) < 3);
        }
        assert_eq!(rng.range(4, 4), 4);
    }

    #[test]
    fn entity_streams_differ_by_kind_and_id() {
        let a = SplitMix64::entity(42, Stream::Order, 7).next_u64();
        assert_eq!(a, SplitMix64::entity(42, Stream::Order, 7).next_u64());
        assert_ne!(a, SplitMix64::entity(42, Stream::Customer, 7).next_u64());
        assert_ne!(a, SplitMix64::entity(42, Stream::Order, 8).next_u64());
        assert_ne!(a, SplitMix64::entity(43, Stream::Order, 7).next_u64());
    }
}

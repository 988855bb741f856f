//! The two sources of randomness a PocketNN run can draw from.
//!
//! The reference C++ draws its per-epoch shuffles and its DFA feedback matrices from an unseeded C `rand()`.
//! On Linux that is glibc's additive feedback generator, reproduced here bit for bit ([`GlibcRand`]) so a
//! run with `--rng glibc` replays the reference run exactly. New experiments default to [`Pcg32`], a
//! seedable generator whose bounded draws are unbiased (glibc's `rand() % n` is slightly biased).
#![deny(clippy::float_arithmetic)]

/// A generator the training loop can draw integers from.
pub trait DrawSource {
    /// An integer in `0..n` (`n >= 1`). [`GlibcRand`] returns `rand() % n`, as the reference does.
    fn below(&mut self, n: u32) -> u32;
}

/// glibc's `rand()` (the `TYPE_3` additive feedback generator, degree 31, separation 3).
///
/// `srandom(seed)` fills 31 words with `16807 * r[i-1] mod (2^31 - 1)` (Schrage's method, as glibc computes
/// it with a 64-bit `long`), then discards 310 outputs. Each output adds the word 3 places behind to the
/// word 31 places behind (mod 2^32) and returns that sum shifted right by one, so values lie in
/// `0..=RAND_MAX = 2^31 - 1`. A C program that never calls `srand` behaves as if it called `srand(1)`.
#[derive(Debug, Clone)]
pub struct GlibcRand {
    state: [u32; 31],
    front: usize,
    rear: usize,
}

impl GlibcRand {
    /// The state of `srand(seed)`; glibc maps seed 0 to 1.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 31];
        // glibc stores the seed in an int32_t word and iterates on a `long int`.
        let mut word = i64::from(if seed == 0 { 1 } else { seed } as i32);
        state[0] = word as u32;
        for slot in state.iter_mut().skip(1) {
            let hi = word / 127_773;
            let lo = word % 127_773;
            word = 16_807 * lo - 2_836 * hi;
            if word < 0 {
                word += 2_147_483_647;
            }
            *slot = word as u32;
        }
        let mut rng = GlibcRand {
            state,
            front: 3,
            rear: 0,
        };
        for _ in 0..310 {
            rng.rand();
        }
        rng
    }

    /// The next `rand()` value, in `0..=2^31 - 1`.
    pub fn rand(&mut self) -> u32 {
        let sum = self.state[self.front].wrapping_add(self.state[self.rear]);
        self.state[self.front] = sum;
        self.front = (self.front + 1) % 31;
        self.rear = (self.rear + 1) % 31;
        sum >> 1
    }
}

impl Default for GlibcRand {
    /// An unseeded C program: `srand(1)`.
    fn default() -> Self {
        GlibcRand::new(1)
    }
}

impl DrawSource for GlibcRand {
    fn below(&mut self, n: u32) -> u32 {
        self.rand() % n
    }
}

/// PCG32 (PCG-XSH-RR, 64-bit state, 32-bit output; O'Neill 2014), seeded like `pcg32_srandom(seed, seq)`.
#[derive(Debug, Clone)]
pub struct Pcg32 {
    state: u64,
    inc: u64,
}

impl Pcg32 {
    const MULTIPLIER: u64 = 6_364_136_223_846_793_005;

    /// The generator for `(seed, stream)`; distinct streams give independent sequences for one seed.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Pcg32 {
            state: 0,
            inc: (stream << 1) | 1,
        };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MULTIPLIER).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }
}

impl DrawSource for Pcg32 {
    /// Lemire's multiply-and-reject: exactly uniform on `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        assert!(n > 0, "below(0) has no value to draw");
        let mut product = u64::from(self.next_u32()) * u64::from(n);
        if (product as u32) < n {
            let threshold = n.wrapping_neg() % n;
            while (product as u32) < threshold {
                product = u64::from(self.next_u32()) * u64::from(n);
            }
        }
        (product >> 32) as u32
    }
}

/// The generator a run uses, chosen on the command line.
#[derive(Debug, Clone)]
pub enum RunRng {
    Glibc(GlibcRand),
    Pcg(Pcg32),
}

impl DrawSource for RunRng {
    fn below(&mut self, n: u32) -> u32 {
        match self {
            RunRng::Glibc(r) => r.below(n),
            RunRng::Pcg(r) => r.below(n),
        }
    }
}

/// Fisher–Yates exactly as the reference writes it: `i` from `len - 1` down to 1, `j = draw % (i + 1)`.
pub fn shuffle<T>(items: &mut [T], rng: &mut impl DrawSource) {
    for i in (1..items.len()).rev() {
        let j = rng.below((i + 1) as u32) as usize;
        items.swap(i, j);
    }
}

/// The reference's `randomRange(low, high)` retried while it yields 0: uniform on `[-r, r] \ {0}`.
pub fn nonzero_in_range(r: i32, rng: &mut impl DrawSource) -> i32 {
    assert!(r >= 1, "range {r} holds no non-zero integer");
    loop {
        let v = rng.below((2 * r + 1) as u32) as i32 - r;
        if v != 0 {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by `rand()` in a C program compiled with gcc against glibc on this machine.
    #[test]
    fn glibc_unseeded_sequence() {
        let mut r = GlibcRand::default();
        let got: Vec<u32> = (0..5).map(|_| r.rand()).collect();
        assert_eq!(
            got,
            [1804289383, 846930886, 1681692777, 1714636915, 1957747793]
        );
    }

    #[test]
    fn glibc_other_seeds() {
        let mut r = GlibcRand::new(42);
        let got: Vec<u32> = (0..3).map(|_| r.rand()).collect();
        assert_eq!(got, [71876166, 708592740, 1483128881]);
        assert_eq!(GlibcRand::new(0).rand(), 1804289383, "seed 0 acts as 1");
        // A seed above i32::MAX goes through glibc's int32_t word (negative) path.
        assert_eq!(GlibcRand::new(3_000_000_000).rand(), 2058147116);
    }

    #[test]
    fn glibc_long_run_sum() {
        let mut r = GlibcRand::default();
        let sum: u64 = (0..1_000_000).map(|_| u64::from(r.rand())).sum();
        assert_eq!(sum, 1_073_756_018_481_283);
    }

    /// The first outputs of the PCG reference demo (`pcg32-demo`, seed 42, stream 54).
    #[test]
    fn pcg32_reference_vector() {
        let mut r = Pcg32::new(42, 54);
        let got: Vec<u32> = (0..6).map(|_| r.next_u32()).collect();
        assert_eq!(
            got,
            [
                0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e
            ]
        );
    }

    #[test]
    fn pcg_below_stays_in_range_and_covers_it() {
        let mut r = Pcg32::new(7, 1);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[r.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn shuffle_uses_the_reference_draw_order() {
        // j = rand() % (i + 1) for i = 3, 2, 1 with the unseeded glibc stream.
        let mut r = GlibcRand::default();
        let draws: Vec<usize> = (1..4)
            .rev()
            .map(|i| (r.rand() % (i as u32 + 1)) as usize)
            .collect();
        let mut expected = [0, 1, 2, 3];
        for (i, j) in (1..4).rev().zip(draws) {
            expected.swap(i, j);
        }
        let mut items = [0, 1, 2, 3];
        shuffle(&mut items, &mut GlibcRand::default());
        assert_eq!(items, expected);
    }

    #[test]
    fn nonzero_draws_skip_zero() {
        let mut r = GlibcRand::default();
        for _ in 0..2000 {
            let v = nonzero_in_range(1, &mut r);
            assert!(v == 1 || v == -1);
        }
    }
}

//! Sliding replay window (RFC 3711 §3.3.2) over a 48-bit SRTP or 31-bit SRTCP index.

use super::SrtpError;

/// Replay window: the highest index seen so far and a bitmap of the `size` indices at and below
/// it. Bit `d` of the bitmap is set when `highest - d` was received.
///
/// The bitmap is allocated once, when the stream is created; checks and updates never allocate.
#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    highest: u64,
    bits: Box<[u64]>,
    size: u64,
}

impl ReplayWindow {
    /// A window of `size` packets (rounded up to a multiple of 64) whose highest index is
    /// `highest`, with only `highest` marked as received.
    pub(crate) fn new(size: usize, highest: u64) -> Self {
        let words = size.div_ceil(64).max(1);
        let mut bits = vec![0u64; words].into_boxed_slice();
        bits[0] = 1;
        Self {
            highest,
            bits,
            size: (words * 64) as u64,
        }
    }

    /// The highest index accepted so far.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Checks (without recording) whether `index` may be accepted.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let delta = self.highest - index;
        if delta >= self.size {
            return Err(SrtpError::TooOld {
                index,
                highest: self.highest,
            });
        }
        let word = (delta / 64) as usize;
        let bit = 1u64 << (delta % 64);
        if self.bits.get(word).is_some_and(|w| w & bit != 0) {
            return Err(SrtpError::Replayed { index });
        }
        Ok(())
    }

    /// Records `index` as received. Call only after [`check`](Self::check) and authentication
    /// succeeded.
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.shift_up(shift);
            self.highest = index;
            if let Some(w) = self.bits.first_mut() {
                *w |= 1;
            }
        } else {
            let delta = self.highest - index;
            if delta < self.size {
                let word = (delta / 64) as usize;
                if let Some(w) = self.bits.get_mut(word) {
                    *w |= 1u64 << (delta % 64);
                }
            }
        }
    }

    /// Shifts the bitmap towards older indices by `shift` positions.
    fn shift_up(&mut self, shift: u64) {
        if shift >= self.size {
            self.bits.fill(0);
            return;
        }
        let words = (shift / 64) as usize;
        let bits = (shift % 64) as u32;
        let n = self.bits.len();
        for i in (0..n).rev() {
            let src = i.checked_sub(words);
            let hi = src.and_then(|s| self.bits.get(s)).copied().unwrap_or(0);
            let lo = src
                .and_then(|s| s.checked_sub(1))
                .and_then(|s| self.bits.get(s))
                .copied()
                .unwrap_or(0);
            let v = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
            if let Some(w) = self.bits.get_mut(i) {
                *w = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_new_rejects_replays_and_too_old() {
        let mut w = ReplayWindow::new(64, 100);
        assert_eq!(w.check(100), Err(SrtpError::Replayed { index: 100 }));
        assert_eq!(w.check(101), Ok(()));
        w.accept(101);
        assert_eq!(w.check(99), Ok(()));
        w.accept(99);
        assert_eq!(w.check(99), Err(SrtpError::Replayed { index: 99 }));
        assert_eq!(w.check(38), Ok(()));
        assert_eq!(
            w.check(37),
            Err(SrtpError::TooOld {
                index: 37,
                highest: 101
            })
        );
        w.accept(300);
        assert_eq!(
            w.check(101),
            Err(SrtpError::TooOld {
                index: 101,
                highest: 300
            })
        );
        assert_eq!(w.check(299), Ok(()));
    }

    #[test]
    fn large_window_shifts_across_words() {
        let mut w = ReplayWindow::new(200, 1000);
        assert_eq!(w.size, 256);
        for i in [1001, 1003, 1070, 1130] {
            w.accept(i);
        }
        for i in [1000, 1001, 1003, 1070, 1130] {
            assert_eq!(w.check(i), Err(SrtpError::Replayed { index: i }), "{i}");
        }
        for i in [1002, 1004, 1069, 1129, 1131, 875] {
            assert_eq!(w.check(i), Ok(()), "{i}");
        }
        assert_eq!(
            w.check(874),
            Err(SrtpError::TooOld {
                index: 874,
                highest: 1130
            })
        );
        // A big jump clears everything but the new highest.
        w.accept(5000);
        assert_eq!(w.check(4999), Ok(()));
        assert_eq!(w.check(5000), Err(SrtpError::Replayed { index: 5000 }));
    }

    #[test]
    fn matches_a_naive_set_model() {
        // Deterministic pseudo-random walk compared against a HashSet model.
        let mut w = ReplayWindow::new(128, 500);
        let mut seen = std::collections::HashSet::from([500u64]);
        let mut highest = 500u64;
        let mut x = 12345u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let idx = (highest + 20).saturating_sub((x >> 33) % 200);
            let expected = if idx > highest {
                Ok(())
            } else if highest - idx >= 128 {
                Err(SrtpError::TooOld {
                    index: idx,
                    highest,
                })
            } else if seen.contains(&idx) {
                Err(SrtpError::Replayed { index: idx })
            } else {
                Ok(())
            };
            assert_eq!(w.check(idx), expected);
            if expected.is_ok() {
                w.accept(idx);
                seen.insert(idx);
                highest = highest.max(idx);
            }
        }
    }
}

//! Sequence-number and timestamp unwrapping (u16 → u64, u32 → u64).

/// Returns true if `a` is newer than `b` in 16-bit serial-number arithmetic (RFC 1982).
pub fn seq_is_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Unwraps 16-bit RTP sequence numbers into a monotonic 64-bit space.
///
/// Each value is placed at the 64-bit position closest to the highest value seen so far, so
/// reordered packets land before it and wraps carry into the high bits. The first value maps to
/// itself plus 2^16 (so that slightly older packets after it never go below zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    /// A fresh unwrapper.
    pub const fn new() -> Self {
        SeqUnwrapper { highest: None }
    }

    /// Unwraps `seq`, updating the highest value when it is newer.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let v = self.peek(seq);
        if self.highest.is_none_or(|h| v > h) {
            self.highest = Some(v);
        }
        v
    }

    /// Unwraps `seq` without updating state.
    pub fn peek(&self, seq: u16) -> u64 {
        match self.highest {
            None => (1 << 16) + u64::from(seq),
            Some(h) => {
                let delta = seq.wrapping_sub(h as u16) as i16;
                (h as i64 + i64::from(delta)).max(0) as u64
            }
        }
    }

    /// The highest unwrapped value so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

/// Unwraps 32-bit RTP timestamps into a monotonic 64-bit space (same rules as [`SeqUnwrapper`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimestampUnwrapper {
    highest: Option<u64>,
}

impl TimestampUnwrapper {
    /// A fresh unwrapper.
    pub const fn new() -> Self {
        TimestampUnwrapper { highest: None }
    }

    /// Unwraps `ts`, updating the highest value when it is newer.
    pub fn unwrap(&mut self, ts: u32) -> u64 {
        let v = match self.highest {
            None => (1 << 32) + u64::from(ts),
            Some(h) => {
                let delta = ts.wrapping_sub(h as u32) as i32;
                (h as i64 + i64::from(delta)).max(0) as u64
            }
        };
        if self.highest.is_none_or(|h| v > h) {
            self.highest = Some(v);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_reorders() {
        let mut u = SeqUnwrapper::new();
        let a = u.unwrap(65534);
        assert_eq!(u.unwrap(65535), a + 1);
        assert_eq!(u.unwrap(1), a + 3);
        assert_eq!(u.unwrap(0), a + 2, "late packet lands before the highest");
        assert_eq!(u.highest(), Some(a + 3));
        assert_eq!(u.unwrap(65533), a - 1);
        assert!(seq_is_newer(0, 65535));
        assert!(!seq_is_newer(65535, 0));

        let mut t = TimestampUnwrapper::new();
        let b = t.unwrap(u32::MAX - 10);
        assert_eq!(t.unwrap(5), b + 16);
        assert_eq!(t.unwrap(u32::MAX), b + 10);
    }

    #[test]
    fn long_run_is_monotonic() {
        let mut u = SeqUnwrapper::new();
        let first = u.unwrap(100);
        for i in 1..300_000u64 {
            assert_eq!(u.unwrap((100 + i) as u16), first + i);
        }
    }
}

//! Packet status chunk choice for transport-wide CC feedback, decided per chunk rather than
//! per status.
//!
//! Statuses arrive as 2-bit symbols (0 not received, 1 small delta, 2 large delta). The greedy
//! rule (libwebrtc's, and the one this crate has always written) is a function of the symbols
//! from a chunk's first status onwards only, so it can be decided for a whole chunk at once from
//! a window of upcoming symbols:
//!
//! - a run of `r` equal symbols becomes a run-length chunk when it reaches the end, when
//!   `r >= 14`, or when `r >= 7` and the run or the symbol after it is a large delta;
//! - otherwise a status vector: the last `n <= 7` statuses in a 2-bit vector; 7 statuses in a
//!   2-bit vector if one of them is large; else as many (up to 14) statuses as precede the next
//!   large one in a 1-bit vector when that is 14 or reaches the end, otherwise 7 in a 2-bit
//!   vector.
//!
//! Runs longer than the window are carried as an open run (symbol, length) until they break or
//! reach the 13-bit run-length limit. Checked against the per-status encoder it replaces by a
//! property test (same chunks for any symbol sequence).

/// Longest run a run-length chunk holds.
const MAX_RUN: u32 = 0x1FFF;
/// `symbol` repeated over a 64-bit window.
const BROADCAST: [u64; 4] = [0, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA, u64::MAX];
/// The high bit of every 2-bit symbol: set for large deltas.
const LARGE_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;
/// Symbols needed to decide a chunk that does not reach the end of the statuses.
const LOOKAHEAD: u32 = 14;

/// Chooses chunks for symbols pushed in groups; no allocation, a few words of state.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChunkChooser {
    /// Undecided symbols, the oldest in the top two bits; bits after the last are zero.
    window: u64,
    /// Symbols in `window` (at most `LOOKAHEAD - 1` between calls, so 16 more fit).
    len: u32,
    /// Symbol of the open run (see `run_len`).
    run_sym: u32,
    /// Length of a run already known to become a run-length chunk, not yet ended (0 = none).
    run_len: u32,
}

impl ChunkChooser {
    /// Appends `n` (≤ 16) symbols held in the low `2n` bits of `group` (oldest in the highest
    /// bits, nothing above them) and emits every chunk they decide.
    #[inline]
    pub(crate) fn push_group(&mut self, group: u32, n: u32, emit: &mut impl FnMut(u16)) {
        debug_assert!(n <= 16 && self.len < LOOKAHEAD && u64::from(group) >> (2 * n) == 0);
        if n == 0 {
            return;
        }
        self.window |= (u64::from(group) << (64 - 2 * n)) >> (2 * self.len);
        self.len += n;
        if self.len >= LOOKAHEAD || self.run_len > 0 {
            self.drain(false, emit);
        }
    }

    /// Emits the chunks of every remaining symbol.
    pub(crate) fn finish(&mut self, emit: &mut impl FnMut(u16)) {
        self.drain(true, emit);
    }

    /// Length of the run of `sym` at the start of the window.
    #[inline(always)]
    fn leading(&self, sym: u32) -> u32 {
        ((self.window ^ BROADCAST[sym as usize]).leading_zeros() / 2).min(self.len)
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.window = self.window.checked_shl(2 * n).unwrap_or(0);
        self.len -= n;
    }

    /// Decides chunks while that is possible: with `last`, until every symbol is emitted;
    /// otherwise while at least `LOOKAHEAD` symbols are known.
    fn drain(&mut self, last: bool, emit: &mut impl FnMut(u16)) {
        loop {
            if self.run_len > 0 {
                let take = self.leading(self.run_sym).min(MAX_RUN - self.run_len);
                self.run_len += take;
                self.consume(take);
                if self.len == 0 && self.run_len < MAX_RUN && !last {
                    return; // the run may go on
                }
                emit(run_length(self.run_sym, self.run_len));
                self.run_len = 0;
                continue;
            }
            if self.len == 0 || (!last && self.len < LOOKAHEAD) {
                return;
            }
            self.decide(last, emit);
        }
    }

    /// Emits the chunk starting at the first symbol of the window (or opens a run).
    #[inline(always)]
    fn decide(&mut self, last: bool, emit: &mut impl FnMut(u16)) {
        let (w, len) = (self.window, self.len);
        let first = (w >> 62) as u32;
        let run = self.leading(first);
        if run == len && !last {
            // len >= LOOKAHEAD: a run-length chunk whatever follows.
            self.run_sym = first;
            self.run_len = run;
            self.consume(run);
            return;
        }
        let after = (w >> 62u32.saturating_sub(2 * run)) & 3;
        if run == len || run >= 14 || (run >= 7 && (first == 2 || after == 2)) {
            emit(run_length(first, run));
            self.consume(run);
            return;
        }
        let large = w & LARGE_BITS;
        let (chunk, n) = if last && len <= 7 {
            (two_bit(w, len), len)
        } else if large >> 50 != 0 {
            (two_bit(w, 7), 7)
        } else {
            let small_after_7 = ((large << 14).leading_zeros() / 2).min(7);
            let m = if last {
                (7 + small_after_7).min(len)
            } else {
                7 + small_after_7
            };
            if m == 14 || (last && m == len) {
                (one_bit(w, m), m)
            } else {
                (two_bit(w, 7), 7)
            }
        };
        emit(chunk);
        self.consume(n);
    }
}

/// Encodes statuses (`None` not received, else the receive delta in 250 µs ticks; at most
/// `max`, the iterator is not advanced beyond) in one pass: deltas go to the start of
/// `deltas`, chunks to the start of `chunks`. Returns (chunk bytes, delta bytes, statuses).
///
/// Symbols are packed 16 at a time and handed to the [`ChunkChooser`] through an out-of-line
/// call that sees only the chunk output, so the per-status state stays in registers.
#[inline(always)]
pub(crate) fn encode_statuses(
    chunks: &mut [u8],
    deltas: &mut [u8],
    max: usize,
    statuses: impl Iterator<Item = Option<i16>>,
) -> (usize, usize, usize) {
    let mut out = ChunkOut {
        chooser: ChunkChooser::default(),
        chunks,
        len: 0,
    };
    let (mut dlen, mut count) = (0usize, 0usize);
    let mut statuses = statuses.take(max);
    loop {
        // One group of up to 16 statuses: deltas into a local buffer (masked indices, no
        // bounds checks), then copied out at once.
        let mut local = [0u8; 34];
        let (mut used, mut group, mut n) = (0usize, 0u32, 0u32);
        while n < 16 {
            let Some(d) = statuses.next() else { break };
            // Branch-free for small and large deltas (they interleave unpredictably): both
            // bytes are stored whatever the symbol; only `symbol` of them count.
            let (symbol, [b0, b1]) = match d {
                None => (0, [0, 0]),
                Some(v) => {
                    let v = v as u16;
                    let large = u32::from(v > 255);
                    let [hi, lo] = v.to_be_bytes();
                    (1 + large, [if large != 0 { hi } else { lo }, lo])
                }
            };
            let at = used & 31;
            local[at] = b0;
            local[at + 1] = b1;
            used += symbol as usize;
            group = (group << 2) | symbol;
            n += 1;
        }
        if let Some(dst) = deltas.get_mut(dlen..dlen + 32) {
            dst.copy_from_slice(&local[..32]);
        } else if let Some(dst) = deltas.get_mut(dlen..dlen + used) {
            dst.copy_from_slice(&local[..used]);
        }
        dlen += used;
        count += n as usize;
        out.push_group(group, n);
        if n < 16 {
            break;
        }
    }
    let (chunks, len) = (&mut *out.chunks, &mut out.len);
    out.chooser.finish(&mut |c| put_chunk(chunks, len, c));
    (out.len, dlen, count)
}

/// Where chosen chunks go.
#[derive(Debug)]
struct ChunkOut<'a> {
    chooser: ChunkChooser,
    chunks: &'a mut [u8],
    len: usize,
}

impl ChunkOut<'_> {
    #[inline(never)]
    fn push_group(&mut self, group: u32, n: u32) {
        let (chunks, len) = (&mut *self.chunks, &mut self.len);
        self.chooser
            .push_group(group, n, &mut |c| put_chunk(chunks, len, c));
    }
}

#[inline(always)]
fn put_chunk(chunks: &mut [u8], len: &mut usize, c: u16) {
    if let Some(slot) = chunks.get_mut(*len..*len + 2) {
        slot.copy_from_slice(&c.to_be_bytes());
    }
    *len += 2;
}

#[inline(always)]
fn run_length(sym: u32, len: u32) -> u16 {
    ((sym << 13) | len) as u16
}

/// 2-bit status vector of the first `n` (1..=7) symbols of `w`.
#[inline(always)]
fn two_bit(w: u64, n: u32) -> u16 {
    0xC000 | (((w >> (64 - 2 * n)) << (14 - 2 * n)) as u16)
}

/// 1-bit status vector of the first `n` (8..=14) symbols of `w`, none of them large.
#[inline(always)]
fn one_bit(w: u64, n: u32) -> u16 {
    // The low bits of the first 14 symbols sit at even positions 26..=0: gather them.
    let mut x = (w >> 36) as u32 & 0x0555_5555;
    x = (x | (x >> 1)) & 0x3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF;
    0x8000 | ((x >> (14 - n)) << (14 - n)) as u16
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The per-status encoder this module replaced, kept as the reference: holds the last
    /// ≤ 14 undecided symbols and emits a chunk when the next symbol does not fit.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct ReferenceEncoder {
        b1: u32,
        b2: u32,
        size: u32,
        first: u32,
        all_same: bool,
        has_large: bool,
    }

    const fn low_bits(n: usize) -> u32 {
        (1u32 << n) - 1
    }

    impl ReferenceEncoder {
        pub(crate) fn new() -> Self {
            ReferenceEncoder {
                b1: 0,
                b2: 0,
                size: 0,
                first: 0,
                all_same: true,
                has_large: false,
            }
        }

        pub(crate) fn push(&mut self, s: u8) -> Option<u16> {
            let s32 = u32::from(s);
            let fits = self.size < 7
                || (self.size < 14 && !self.has_large && s < 2)
                || (self.all_same && self.first == s32 && self.size < 0x1FFF);
            if fits {
                self.add(s);
                return None;
            }
            let c = self.emit();
            self.add(s);
            Some(c)
        }

        fn add(&mut self, s: u8) {
            let s = u32::from(s);
            if self.size == 0 {
                self.first = s;
            }
            self.b1 = (self.b1 << 1) | (s & 1);
            self.b2 = (self.b2 << 2) | s;
            self.all_same &= self.first == s;
            self.has_large |= s >> 1 != 0;
            self.size += 1;
        }

        fn run_length(&self) -> u16 {
            ((self.first << 13) | self.size) as u16
        }

        fn one_bit(&self, n: usize) -> u16 {
            0x8000 | ((self.b1 & low_bits(n)) << (14 - n)) as u16
        }

        fn two_bit(&self, n: usize) -> u16 {
            0xC000 | ((self.b2 & low_bits(2 * n)) << (14 - 2 * n)) as u16
        }

        fn emit(&mut self) -> u16 {
            if self.all_same {
                let c = self.run_length();
                *self = Self::new();
                return c;
            }
            if self.size == 14 {
                let c = self.one_bit(14);
                *self = Self::new();
                return c;
            }
            let rest = self.size as usize - 7;
            let c = 0xC000 | ((self.b2 >> (2 * rest)) & 0x3FFF) as u16;
            self.b2 &= low_bits(2 * rest);
            self.b1 &= low_bits(rest);
            self.size = rest as u32;
            self.has_large = self.b2 & 0xAAAA_AAAA != 0;
            if rest > 0 {
                let first = (self.b2 >> (2 * (rest - 1))) & 3;
                self.first = first;
                self.all_same = self.b2 == first * (0x5555_5555 & low_bits(2 * rest));
            } else {
                self.all_same = true;
            }
            c
        }

        pub(crate) fn finish(&mut self) -> Option<u16> {
            let c = match self.size as usize {
                0 => return None,
                _ if self.all_same => self.run_length(),
                n @ 1..=7 => self.two_bit(n),
                n => self.one_bit(n),
            };
            *self = Self::new();
            Some(c)
        }
    }

    pub(crate) fn reference_chunks(symbols: &[u8]) -> Vec<u16> {
        let mut enc = ReferenceEncoder::new();
        let mut out: Vec<u16> = symbols.iter().filter_map(|&s| enc.push(s)).collect();
        out.extend(enc.finish());
        out
    }

    /// A whole TWCC feedback packet as the per-status encoder wrote it: header, chunks from
    /// [`ReferenceEncoder`], deltas, zero padding.
    pub(crate) fn reference_packet(
        hdr: &crate::rtcp::TwccHeader,
        statuses: &[Option<i16>],
    ) -> Vec<u8> {
        let symbols: Vec<u8> = statuses
            .iter()
            .map(|d| match d {
                None => 0,
                Some(0..=255) => 1,
                Some(_) => 2,
            })
            .collect();
        let mut body = Vec::new();
        body.extend(hdr.sender_ssrc.to_be_bytes());
        body.extend(hdr.media_ssrc.to_be_bytes());
        body.extend(hdr.base_seq.to_be_bytes());
        body.extend((statuses.len() as u16).to_be_bytes());
        body.extend(&(hdr.reference_time as u32).to_be_bytes()[1..]);
        body.push(hdr.fb_pkt_count);
        body.extend(
            reference_chunks(&symbols)
                .iter()
                .flat_map(|c| c.to_be_bytes()),
        );
        for d in statuses.iter().flatten() {
            match d {
                0..=255 => body.push(*d as u8),
                _ => body.extend(d.to_be_bytes()),
            }
        }
        body.resize(body.len().div_ceil(4) * 4, 0);
        let mut out = vec![0x80 | 15, 205];
        out.extend(((body.len() / 4) as u16).to_be_bytes());
        out.extend(body);
        out
    }

    fn deltas() -> impl Strategy<Value = Vec<Option<i16>>> {
        let piece = prop_oneof![
            (prop::option::of(0i16..=255), 1usize..40).prop_map(|(d, n)| vec![d; n]),
            (prop::option::of(any::<i16>()), 1usize..3000).prop_map(|(d, n)| vec![d; n]),
            prop::collection::vec(prop::option::of(0i16..=255), 1..30),
            prop::collection::vec(prop::option::of(any::<i16>()), 1..30),
        ];
        prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// `RtcpWriter::transport_cc` writes the bytes the per-status encoder wrote, with room
        /// to spare (worst-case layout) and in a buffer of exactly the packet's size.
        #[test]
        fn transport_cc_writes_the_reference_bytes(
            deltas in deltas(), base in any::<u16>(), rt in -(1i32 << 23)..(1 << 23), fb in any::<u8>(),
        ) {
            let hdr = crate::rtcp::TwccHeader { sender_ssrc: 5, media_ssrc: 6, base_seq: base, reference_time: rt, fb_pkt_count: fb };
            let want = reference_packet(&hdr, &deltas);
            let mut roomy = vec![0xEE; 4 + want.len() + 3 * deltas.len() + 64];
            let mut w = crate::rtcp::RtcpWriter::new(&mut roomy);
            w.transport_cc(&hdr, &deltas).unwrap();
            prop_assert_eq!(w.as_bytes(), &want[..]);
            let mut tight = vec![0xEE; want.len()];
            let mut w = crate::rtcp::RtcpWriter::new(&mut tight);
            w.transport_cc(&hdr, &deltas).unwrap();
            prop_assert_eq!(w.as_bytes(), &want[..]);
        }
    }

    fn new_chunks(symbols: &[u8]) -> Vec<u16> {
        let mut out = Vec::new();
        let mut emit = |c| out.push(c);
        let mut ch = ChunkChooser::default();
        for group in symbols.chunks(16) {
            let g = group.iter().fold(0u32, |g, &s| (g << 2) | u32::from(s));
            ch.push_group(g, group.len() as u32, &mut emit);
        }
        ch.finish(&mut emit);
        out
    }

    /// Symbol sequences made of runs (short and long, up to past the 13-bit limit) and noise.
    fn symbols() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            (0u8..3, 1usize..20).prop_map(|(s, n)| vec![s; n]),
            (0u8..3, 20usize..200).prop_map(|(s, n)| vec![s; n]),
            (0u8..3, 8180usize..8210).prop_map(|(s, n)| vec![s; n]),
            prop::collection::vec(0u8..2, 1..30),
            prop::collection::vec(0u8..3, 1..30),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn same_chunks_as_the_per_status_encoder(symbols in symbols()) {
            prop_assert_eq!(new_chunks(&symbols), reference_chunks(&symbols));
        }
    }

    /// Every sequence of up to 9 symbols, and of up to 30 symbols over two symbol kinds.
    #[test]
    fn same_chunks_exhaustively_for_short_sequences() {
        for len in 0..=9u32 {
            for code in 0..3u32.pow(len) {
                let syms: Vec<u8> = (0..len).map(|i| (code / 3u32.pow(i) % 3) as u8).collect();
                assert_eq!(new_chunks(&syms), reference_chunks(&syms), "{syms:?}");
            }
        }
        for len in [15, 16, 17, 29, 30] {
            for bits in (0..1u32 << len).step_by(((1usize << len) / 3000).max(1)) {
                for (a, b) in [(0u8, 1u8), (1, 2), (0, 2)] {
                    let syms: Vec<u8> = (0..len)
                        .map(|i| if bits >> i & 1 == 1 { b } else { a })
                        .collect();
                    assert_eq!(new_chunks(&syms), reference_chunks(&syms), "{syms:?}");
                }
            }
        }
    }
}

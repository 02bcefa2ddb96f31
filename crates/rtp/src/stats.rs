//! RTP receiver and sender statistics (RFC 3550 §6.4, Appendix A.1, A.3, A.8) and RTT.
//!
//! Sans-IO: every method takes the current `Instant` from the caller. NTP times come from an
//! [`NtpClock`] the caller anchors once (e.g. from `SystemTime` at startup).

use std::time::{Duration, Instant};

use crate::rtcp::{ReportBlock, SenderInfo};

const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u32 = 3000;
const MAX_MISORDER: u32 = 100;
const MIN_SEQUENTIAL: u32 = 2;

/// The middle 32 bits of a 64-bit NTP timestamp (the "compact" form used by LSR/DLSR).
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in 1/65536 s units (the LSR/DLSR unit), saturating at `u32::MAX`.
pub fn to_compact(d: Duration) -> u32 {
    ((d.as_micros() << 16) / 1_000_000).min(u128::from(u32::MAX)) as u32
}

/// A duration from 1/65536 s units.
pub fn from_compact(v: u32) -> Duration {
    Duration::from_micros((u64::from(v) * 1_000_000) >> 16)
}

/// Maps `Instant`s to 64-bit NTP timestamps from one anchor supplied by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpClock {
    anchor: Instant,
    anchor_ntp: u64,
}

impl NtpClock {
    /// `anchor_ntp` is the NTP time (32.32) at `anchor`.
    pub fn new(anchor: Instant, anchor_ntp: u64) -> Self {
        NtpClock { anchor, anchor_ntp }
    }

    /// NTP time at `at`.
    pub fn ntp(&self, at: Instant) -> u64 {
        let fwd = at.saturating_duration_since(self.anchor);
        let back = self.anchor.saturating_duration_since(at);
        let to_ntp = |d: Duration| {
            (d.as_secs() << 32) + ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
        };
        self.anchor_ntp
            .wrapping_add(to_ntp(fwd))
            .wrapping_sub(to_ntp(back))
    }
}

/// Round-trip time from a report block received at NTP time `arrival_ntp` (RFC 3550 §6.4.1:
/// A − LSR − DLSR). `None` if the block carries no LSR or the result is negative.
pub fn rtt_from_report(block: &ReportBlock, arrival_ntp: u64) -> Option<Duration> {
    rtt_compact(block.last_sr, block.delay_since_last_sr, arrival_ntp)
}

/// RTT from a compact last-timestamp / delay pair (also used for XR DLRR).
pub fn rtt_compact(last: u32, delay: u32, arrival_ntp: u64) -> Option<Duration> {
    if last == 0 {
        return None;
    }
    let rtt = ntp_middle32(arrival_ntp)
        .wrapping_sub(last)
        .wrapping_sub(delay);
    if rtt > 0x8000_0000 {
        return None;
    }
    Some(from_compact(rtt))
}

/// Per-source receive statistics (RFC 3550 Appendix A.1, A.3, A.8).
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    ssrc: u32,
    clock_rate: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<i64>,
    jitter_q4: u32,
    base_time: Option<Instant>,
    last_sr: Option<(u32, Instant)>,
    initialized: bool,
}

/// What [`ReceiverStats::on_packet`] decided about a packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// Accepted (counts toward statistics).
    Valid,
    /// Source still on probation (RFC 3550 A.1).
    Probation,
    /// A jump too large; the source will be resynchronised if the next packet follows it.
    BadSequence,
}

impl ReceiverStats {
    /// Statistics for media source `ssrc` with RTP clock rate `clock_rate`.
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        ReceiverStats {
            ssrc,
            clock_rate,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            base_time: None,
            last_sr: None,
            initialized: false,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Records a packet with `seq` and RTP timestamp `rtp_ts` that arrived at `now`.
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, now: Instant) -> SeqStatus {
        if !self.initialized {
            self.initialized = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
        }
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        let status = if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    SeqStatus::Valid
                } else {
                    SeqStatus::Probation
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
                SeqStatus::Probation
            }
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
            self.received += 1;
            SeqStatus::Valid
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                self.received += 1;
                SeqStatus::Valid
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqStatus::BadSequence;
            }
        } else {
            // Duplicate or reordered packet.
            self.received += 1;
            SeqStatus::Valid
        };
        if status == SeqStatus::Valid {
            self.update_jitter(rtp_ts, now);
        }
        status
    }

    fn update_jitter(&mut self, rtp_ts: u32, now: Instant) {
        let base = *self.base_time.get_or_insert(now);
        let arrival = (now.saturating_duration_since(base).as_micros() as u64
            * u64::from(self.clock_rate)
            / 1_000_000) as u32;
        let transit = i64::from(arrival.wrapping_sub(rtp_ts) as i32);
        if let Some(prev) = self.transit {
            let d = (transit - prev)
                .unsigned_abs()
                .min(u64::from(u32::MAX >> 4)) as u32;
            // RFC 3550 A.8: jitter += (|D| - jitter) / 16, kept scaled by 16.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Records an SR from this source (its NTP time) received at `now`.
    pub fn on_sender_report(&mut self, ntp_time: u64, now: Instant) {
        self.last_sr = Some((ntp_middle32(ntp_time), now));
    }

    /// Extended highest sequence number received.
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected so far.
    pub fn expected(&self) -> u32 {
        self.extended_highest_seq()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Packets received so far (including duplicates, as RFC 3550 counts them).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Cumulative packets lost (may be negative with duplicates), clamped to 24 bits.
    pub fn cumulative_lost(&self) -> i32 {
        (i64::from(self.expected()) - i64::from(self.received)).clamp(-0x80_0000, 0x7F_FFFF) as i32
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Builds a report block at `now` and starts a new reporting interval.
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => (lsr, to_compact(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.cumulative_lost(),
            extended_highest_seq: self.extended_highest_seq(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// Per-stream send counters for building sender reports.
#[derive(Debug, Clone, Copy)]
pub struct SenderStats {
    ssrc: u32,
    clock_rate: u32,
    packets: u32,
    octets: u32,
    last: Option<(u32, Instant)>,
}

impl SenderStats {
    /// Counters for outgoing stream `ssrc` with RTP clock rate `clock_rate`.
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        SenderStats {
            ssrc,
            clock_rate,
            packets: 0,
            octets: 0,
            last: None,
        }
    }

    /// Records a sent packet with `payload_len` payload bytes and timestamp `rtp_ts` sent at `now`
    /// (`rtp_ts` should be the capture time of the media, which we approximate by send time).
    pub fn on_sent(&mut self, payload_len: usize, rtp_ts: u32, now: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
        self.last = Some((rtp_ts, now));
    }

    /// The sender info for an SR sent at `now`; the RTP time is extrapolated from the last packet.
    pub fn sender_info(&self, now: Instant, clock: &NtpClock) -> SenderInfo {
        let rtp_time = match self.last {
            Some((ts, at)) => {
                let ticks = now.saturating_duration_since(at).as_micros() as u64
                    * u64::from(self.clock_rate)
                    / 1_000_000;
                ts.wrapping_add(ticks as u32)
            }
            None => 0,
        };
        SenderInfo {
            ssrc: self.ssrc,
            ntp_time: clock.ntp(now),
            rtp_time,
            packet_count: self.packets,
            octet_count: self.octets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_fraction_and_wrap() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(7, 90_000);
        // 65530..=65535, 0..=9 with 2 and 5 missing: 16 expected, 14 received.
        for (i, seq) in (65530u16..=65535)
            .chain(0..10)
            .filter(|s| *s != 2 && *s != 5)
            .enumerate()
        {
            let i = i as u32;
            s.on_packet(seq, 3000 * i, t0 + Duration::from_millis(33 * u64::from(i)));
        }
        assert_eq!(s.extended_highest_seq(), (1 << 16) + 9);
        let rb = s.report_block(t0 + Duration::from_secs(1));
        assert_eq!(rb.cumulative_lost, 2);
        // RFC 3550 A.1 probation: the first packet only validates the source, so 15 are expected.
        assert_eq!(rb.fraction_lost, (2 * 256 / 15) as u8);
        assert_eq!(rb.last_sr, 0);
    }

    #[test]
    fn jitter_of_constant_offset_is_small_and_of_alternating_delay_converges() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(1, 90_000);
        for i in 0..200u32 {
            // Every other packet 10 ms late: |D| = 900 ticks each time, jitter → 900.
            let late = if i % 2 == 1 { 10 } else { 0 };
            s.on_packet(
                i as u16,
                2700 * i,
                t0 + Duration::from_millis(30 * u64::from(i) + late),
            );
        }
        let j = s.jitter();
        assert!((850..=900).contains(&j), "jitter {j}");
    }

    #[test]
    fn rtt_from_lsr_dlsr() {
        let t0 = Instant::now();
        let clock = NtpClock::new(t0, 0xE000_0000_0000_0000);
        let sr_ntp = clock.ntp(t0 + Duration::from_millis(100));
        let mut s = ReceiverStats::new(1, 8000);
        s.on_packet(1, 0, t0);
        s.on_packet(2, 160, t0);
        // Remote receives our SR after 20 ms one-way, replies 50 ms later; reply takes 20 ms.
        s.on_sender_report(sr_ntp, t0 + Duration::from_millis(120));
        let rb = s.report_block(t0 + Duration::from_millis(170));
        let rtt = rtt_from_report(&rb, clock.ntp(t0 + Duration::from_millis(190))).unwrap();
        assert!((rtt.as_micros() as i64 - 40_000).abs() < 100, "{rtt:?}");
    }
}

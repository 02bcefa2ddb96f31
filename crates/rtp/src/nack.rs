//! Retransmission: a receiver-side NACK generator (RFC 4585 generic NACK) and a sender-side
//! packet history that answers NACKs, optionally wrapped as RTX (RFC 4588).
//!
//! Sans-IO: the caller passes `Instant`s; [`NackGenerator::poll`] returns what to NACK now and
//! [`NackGenerator::poll_timeout`] when to call it next. Memory is allocated at construction only.

use std::time::{Duration, Instant};

use crate::rtp::{RtpError, RtpPacket, RtpPacketMut};
use crate::seq::SeqUnwrapper;

/// Receiver-side NACK policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackConfig {
    /// Most sequence numbers tracked as missing; on a larger gap the oldest are forgotten.
    pub max_missing: usize,
    /// A gap is NACKed once this many newer packets arrived after it …
    pub reorder_packets: u16,
    /// … or once it has been missing this long, whichever comes first.
    pub reorder_delay: Duration,
    /// Minimum time between NACKs of the same packet (typically about one RTT).
    pub retry_interval: Duration,
    /// NACKs per packet before giving up.
    pub max_retries: u8,
}

impl Default for NackConfig {
    fn default() -> Self {
        NackConfig {
            max_missing: 1000,
            reorder_packets: 3,
            reorder_delay: Duration::from_millis(10),
            retry_interval: Duration::from_millis(100),
            max_retries: 10,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    seq: u64,
    since: Instant,
    last_sent: Option<Instant>,
    retries: u8,
}

/// Tracks missing sequence numbers of one stream and decides when to NACK them.
#[derive(Debug, Clone)]
pub struct NackGenerator {
    config: NackConfig,
    unwrap: SeqUnwrapper,
    highest: Option<u64>,
    missing: Vec<Missing>,
}

impl NackGenerator {
    /// A generator with `config`.
    pub fn new(config: NackConfig) -> Self {
        NackGenerator {
            config,
            unwrap: SeqUnwrapper::new(),
            highest: None,
            missing: Vec::with_capacity(config.max_missing),
        }
    }

    /// Records a received packet (original or repaired). Returns true if it filled a gap.
    pub fn on_packet(&mut self, seq: u16, now: Instant) -> bool {
        let ext = self.unwrap.unwrap(seq);
        let Some(h) = self.highest else {
            self.highest = Some(ext);
            return false;
        };
        if ext > h {
            let gap_start = (h + 1).max(ext.saturating_sub(self.config.max_missing as u64));
            let room = self.config.max_missing;
            let new = (ext - gap_start) as usize;
            if self.missing.len() + new > room {
                let drop = (self.missing.len() + new - room).min(self.missing.len());
                self.missing.drain(..drop);
            }
            for s in gap_start..ext {
                self.missing.push(Missing {
                    seq: s,
                    since: now,
                    last_sent: None,
                    retries: 0,
                });
            }
            self.highest = Some(ext);
            false
        } else if let Ok(i) = self.missing.binary_search_by_key(&ext, |m| m.seq) {
            self.missing.remove(i);
            true
        } else {
            false
        }
    }

    /// Number of sequence numbers currently missing.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    fn due(&self, m: &Missing, now: Instant) -> bool {
        let h = self.highest.unwrap_or(0);
        let ready = h - m.seq >= u64::from(self.config.reorder_packets)
            || now.saturating_duration_since(m.since) >= self.config.reorder_delay;
        ready
            && m.last_sent
                .is_none_or(|t| now.saturating_duration_since(t) >= self.config.retry_interval)
    }

    /// Appends the sequence numbers to NACK at `now` to `out` (ascending), counting a retry for
    /// each, and forgets packets that ran out of retries.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<u16>) {
        let max = self.config.max_retries;
        for i in 0..self.missing.len() {
            let m = self.missing[i];
            if m.retries < max && self.due(&m, now) {
                out.push(m.seq as u16);
                let m = &mut self.missing[i];
                m.retries += 1;
                m.last_sent = Some(now);
            }
        }
        // Keep those that may still be NACKed (a packet just NACKed for the last time stays
        // until its retry interval passes, so a late repair is still recognised).
        let retry = self.config.retry_interval;
        self.missing.retain(|m| {
            m.retries < max
                || m.last_sent
                    .is_some_and(|t| now.saturating_duration_since(t) < retry)
        });
    }

    /// The next time `poll` may produce something, if anything is missing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let h = self.highest?;
        self.missing
            .iter()
            .map(|m| match m.last_sent {
                Some(t) => t + self.config.retry_interval,
                None if h - m.seq >= u64::from(self.config.reorder_packets) => m.since,
                None => m.since + self.config.reorder_delay,
            })
            .min()
    }
}

/// RTX parameters of a stream (RFC 4588).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxConfig {
    /// SSRC of the RTX stream.
    pub ssrc: u32,
    /// Payload type of the RTX stream (`a=rtpmap:… rtx/…` with `apt` = original PT).
    pub payload_type: u8,
}

#[derive(Debug, Clone)]
struct Slot {
    seq: Option<u64>,
    len: usize,
    last_resent: Option<Instant>,
    data: Box<[u8]>,
}

/// Sender-side history of sent packets, answering NACKs.
#[derive(Debug, Clone)]
pub struct PacketHistory {
    slots: Vec<Slot>,
    unwrap: SeqUnwrapper,
    rtx: Option<RtxConfig>,
    rtx_seq: u16,
    min_resend_interval: Duration,
}

impl PacketHistory {
    /// A history of `packets` packets of at most `max_packet_len` bytes each, resending a
    /// packet at most once per `min_resend_interval`, wrapped as RTX if `rtx` is given.
    pub fn new(
        packets: usize,
        max_packet_len: usize,
        rtx: Option<RtxConfig>,
        min_resend_interval: Duration,
    ) -> Self {
        let slot = Slot {
            seq: None,
            len: 0,
            last_resent: None,
            data: vec![0u8; max_packet_len].into_boxed_slice(),
        };
        PacketHistory {
            slots: vec![slot; packets.max(1)],
            unwrap: SeqUnwrapper::new(),
            rtx,
            rtx_seq: 0,
            min_resend_interval,
        }
    }

    /// Sets the next RTX sequence number (RFC 4588 recommends a random start).
    pub fn set_rtx_sequence(&mut self, seq: u16) {
        self.rtx_seq = seq;
    }

    /// Stores a copy of a sent packet. Packets longer than the slot size are not stored.
    pub fn insert(&mut self, packet: &RtpPacket<'_>) -> bool {
        let bytes = packet.as_bytes();
        let ext = self.unwrap.unwrap(packet.sequence_number());
        let n = self.slots.len();
        let slot = &mut self.slots[(ext % n as u64) as usize];
        if bytes.len() > slot.data.len() {
            return false;
        }
        slot.data[..bytes.len()].copy_from_slice(bytes);
        slot.len = bytes.len();
        slot.seq = Some(ext);
        slot.last_resent = None;
        true
    }

    /// Writes the retransmission of `seq` into `out` (as RTX if configured) and returns its
    /// length; `Ok(None)` if the packet is not in history or was resent too recently.
    pub fn resend(
        &mut self,
        seq: u16,
        now: Instant,
        out: &mut [u8],
    ) -> Result<Option<usize>, RtpError> {
        let ext = self.unwrap.peek(seq);
        let n = self.slots.len();
        let min = self.min_resend_interval;
        let slot = &mut self.slots[(ext % n as u64) as usize];
        if slot.seq != Some(ext)
            || slot
                .last_resent
                .is_some_and(|t| now.saturating_duration_since(t) < min)
        {
            return Ok(None);
        }
        let orig = &slot.data[..slot.len];
        let len = match self.rtx {
            None => {
                let available = out.len();
                let dst = out.get_mut(..orig.len()).ok_or(RtpError::BufferTooSmall {
                    needed: orig.len(),
                    available,
                })?;
                dst.copy_from_slice(orig);
                orig.len()
            }
            Some(rtx) => {
                let len = rtx_wrap(orig, rtx, self.rtx_seq, out)?;
                self.rtx_seq = self.rtx_seq.wrapping_add(1);
                len
            }
        };
        slot.last_resent = Some(now);
        Ok(Some(len))
    }
}

/// Wraps an RTP packet as RTX (RFC 4588 §4): same header (padding dropped) with the RTX SSRC,
/// payload type and sequence number, payload = original sequence number + original payload.
pub fn rtx_wrap(
    original: &[u8],
    rtx: RtxConfig,
    rtx_seq: u16,
    out: &mut [u8],
) -> Result<usize, RtpError> {
    let p = RtpPacket::parse(original)?;
    let hl = p.header_len();
    let payload = p.payload();
    let total = hl + 2 + payload.len();
    if out.len() < total {
        return Err(RtpError::BufferTooSmall {
            needed: total,
            available: out.len(),
        });
    }
    out[..hl].copy_from_slice(&original[..hl]);
    out[0] &= !0x20;
    out[hl..hl + 2].copy_from_slice(&p.sequence_number().to_be_bytes());
    out[hl + 2..total].copy_from_slice(payload);
    let mut r = RtpPacketMut::parse(&mut out[..total])?;
    r.set_ssrc(rtx.ssrc);
    r.set_payload_type(rtx.payload_type);
    r.set_sequence_number(rtx_seq);
    Ok(total)
}

/// Unwraps an RTX packet into the original packet (RFC 4588 §4) given the original stream's
/// SSRC and payload type.
pub fn rtx_unwrap(
    rtx_packet: &[u8],
    ssrc: u32,
    payload_type: u8,
    out: &mut [u8],
) -> Result<usize, RtpError> {
    let p = RtpPacket::parse(rtx_packet)?;
    let hl = p.header_len();
    let payload = p.payload();
    if payload.len() < 2 {
        return Err(RtpError::Truncated {
            field: "RTX original sequence number",
            needed: hl + 2,
            len: rtx_packet.len(),
        });
    }
    let osn = u16::from_be_bytes([payload[0], payload[1]]);
    let total = hl + payload.len() - 2;
    if out.len() < total {
        return Err(RtpError::BufferTooSmall {
            needed: total,
            available: out.len(),
        });
    }
    out[..hl].copy_from_slice(&rtx_packet[..hl]);
    out[0] &= !0x20;
    out[hl..total].copy_from_slice(&payload[2..]);
    let mut r = RtpPacketMut::parse(&mut out[..total])?;
    r.set_ssrc(ssrc);
    r.set_payload_type(payload_type);
    r.set_sequence_number(osn);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpWriter;

    #[test]
    fn generator_reorder_tolerance_and_retries() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let cfg = NackConfig {
            reorder_packets: 2,
            reorder_delay: Duration::from_millis(20),
            retry_interval: Duration::from_millis(50),
            max_retries: 2,
            max_missing: 100,
        };
        let mut g = NackGenerator::new(cfg);
        let mut out = Vec::new();
        g.on_packet(65534, ms(0));
        g.on_packet(1, ms(1)); // 65535 and 0 missing
        g.poll(ms(1), &mut out);
        assert_eq!(out, [65535], "65535 has 2 newer packets, 0 only 1");
        out.clear();
        g.on_packet(0, ms(2)); // reordered, not lost
        assert_eq!(g.missing(), 1);
        assert_eq!(g.poll_timeout(), Some(ms(51)));
        g.poll(ms(30), &mut out);
        assert!(out.is_empty(), "retry interval not yet elapsed");
        g.poll(ms(51), &mut out);
        assert_eq!(out, [65535]);
        out.clear();
        g.poll(ms(200), &mut out);
        assert!(out.is_empty(), "max retries reached");
        assert_eq!(g.missing(), 0);
        assert_eq!(g.poll_timeout(), None);
    }

    #[test]
    fn history_answers_with_rtx_and_unwraps_back() {
        let t0 = Instant::now();
        let rtx = RtxConfig {
            ssrc: 0x5555,
            payload_type: 97,
        };
        let mut h = PacketHistory::new(64, 1500, Some(rtx), Duration::from_millis(10));
        h.set_rtx_sequence(900);
        let exts: [(u8, &[u8]); 1] = [(1, &[1, 2])];
        let mut orig = [0u8; 100];
        for seq in 0..100u16 {
            let payload = [seq as u8; 20];
            let w = RtpWriter {
                extensions: &exts,
                padding: 4,
                ..RtpWriter::new(96, seq, 1000, 0x1111, &payload)
            };
            let n = w.write(&mut orig).unwrap();
            assert!(h.insert(&RtpPacket::parse(&orig[..n]).unwrap()));
        }
        let mut out = [0u8; 200];
        assert_eq!(
            h.resend(10, t0, &mut out).unwrap(),
            None,
            "evicted from the 64-packet history"
        );
        let n = h.resend(90, t0, &mut out).unwrap().unwrap();
        let r = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(
            (r.ssrc(), r.payload_type(), r.sequence_number()),
            (0x5555, 97, 900)
        );
        assert_eq!(&r.payload()[..2], &90u16.to_be_bytes());
        assert_eq!(r.extension(1), Some(&[1, 2][..]));
        assert_eq!(
            h.resend(90, t0 + Duration::from_millis(5), &mut out)
                .unwrap(),
            None,
            "too soon"
        );
        let mut back = [0u8; 200];
        let m = rtx_unwrap(&out[..n], 0x1111, 96, &mut back).unwrap();
        let o = RtpPacket::parse(&back[..m]).unwrap();
        assert_eq!(
            (o.ssrc(), o.payload_type(), o.sequence_number(), o.payload()),
            (0x1111, 96, 90, &[90u8; 20][..])
        );
    }
}

//! A forwarding rewriter: maps packets of one or more source streams (e.g. simulcast layers the
//! SFU switches between) onto one continuous outgoing SSRC / sequence / timestamp space.
//!
//! The caller decides which packets to forward (switching sources at a keyframe) and passes
//! only those to [`ForwardRewriter::rewrite`]. A packet whose SSRC differs from the current
//! source starts a new source: its sequence numbers continue right after the highest one sent,
//! and its timestamps continue after the last one sent, advanced by the wall-clock time since
//! (converted with the clock rate). Packets of the current source that are older than the
//! switch point are dropped, so the output has no repeats and the switch introduces no gaps.

use std::time::Instant;

use crate::rtp::RtpPacketMut;
use crate::seq::{SeqUnwrapper, TimestampUnwrapper};

/// Outgoing stream parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewriterConfig {
    /// SSRC written on every forwarded packet.
    pub ssrc: u32,
    /// RTP clock rate of the media (e.g. 90000 for video).
    pub clock_rate: u32,
    /// Sequence number of the first forwarded packet.
    pub initial_sequence: u16,
    /// Timestamp of the first forwarded packet.
    pub initial_timestamp: u32,
}

/// What happened to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// The packet was rewritten in place and should be sent.
    Forward {
        /// Outgoing sequence number.
        sequence_number: u16,
        /// Outgoing timestamp.
        timestamp: u32,
        /// True if this packet started a new source.
        switched: bool,
    },
    /// The packet precedes the point where its source was switched in; do not send it.
    DropBeforeSwitch,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    seq: SeqUnwrapper,
    ts: TimestampUnwrapper,
    first_seq: u64,
    first_ts: u64,
    out_seq_base: u64,
    out_ts_base: u64,
}

/// Maps forwarded packets onto one outgoing SSRC/sequence/timestamp space.
#[derive(Debug, Clone)]
pub struct ForwardRewriter {
    config: RewriterConfig,
    source: Option<Source>,
    /// Highest outgoing (unwrapped) sequence number sent.
    highest_out_seq: Option<u64>,
    /// Highest outgoing (unwrapped) timestamp sent and when it was sent.
    highest_out_ts: Option<(u64, Instant)>,
}

impl ForwardRewriter {
    /// A rewriter for the given outgoing stream.
    pub fn new(config: RewriterConfig) -> Self {
        ForwardRewriter {
            config,
            source: None,
            highest_out_seq: None,
            highest_out_ts: None,
        }
    }

    /// The SSRC of the source currently forwarded.
    pub fn current_source(&self) -> Option<u32> {
        self.source.map(|s| s.ssrc)
    }

    /// Rewrites `packet` in place (SSRC, sequence number, timestamp) for forwarding at `now`.
    pub fn rewrite(&mut self, packet: &mut RtpPacketMut<'_>, now: Instant) -> Rewrite {
        let ssrc = packet.ssrc();
        let mut switched = false;
        let src = match &mut self.source {
            Some(s) if s.ssrc == ssrc => s,
            _ => {
                switched = true;
                let mut seq = SeqUnwrapper::new();
                let mut ts = TimestampUnwrapper::new();
                let first_seq = seq.unwrap(packet.sequence_number());
                let first_ts = ts.unwrap(packet.timestamp());
                let out_seq_base = match self.highest_out_seq {
                    Some(h) => h + 1,
                    None => u64::from(self.config.initial_sequence) + (1 << 16),
                };
                let out_ts_base = match self.highest_out_ts {
                    Some((t, at)) => {
                        let ticks = now.saturating_duration_since(at).as_micros() as u64
                            * u64::from(self.config.clock_rate)
                            / 1_000_000;
                        t + ticks.max(1)
                    }
                    None => u64::from(self.config.initial_timestamp) + (1 << 32),
                };
                self.source.insert(Source {
                    ssrc,
                    seq,
                    ts,
                    first_seq,
                    first_ts,
                    out_seq_base,
                    out_ts_base,
                })
            }
        };
        let ext_seq = src.seq.unwrap(packet.sequence_number());
        if ext_seq < src.first_seq {
            return Rewrite::DropBeforeSwitch;
        }
        let ext_ts = src.ts.unwrap(packet.timestamp()) as i64;
        let out_seq = src.out_seq_base + (ext_seq - src.first_seq);
        let out_ts = (src.out_ts_base as i64 + (ext_ts - src.first_ts as i64)).max(0) as u64;
        if self.highest_out_seq.is_none_or(|h| out_seq > h) {
            self.highest_out_seq = Some(out_seq);
        }
        if self.highest_out_ts.is_none_or(|(h, _)| out_ts > h) {
            self.highest_out_ts = Some((out_ts, now));
        }
        let (sequence_number, timestamp) = (out_seq as u16, out_ts as u32);
        packet.set_ssrc(self.config.ssrc);
        packet.set_sequence_number(sequence_number);
        packet.set_timestamp(timestamp);
        Rewrite::Forward {
            sequence_number,
            timestamp,
            switched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpWriter;
    use std::time::Duration;

    fn forward(rw: &mut ForwardRewriter, ssrc: u32, seq: u16, ts: u32, now: Instant) -> Rewrite {
        let mut buf = [0u8; 32];
        let n = RtpWriter::new(96, seq, ts, ssrc, &[1, 2, 3])
            .write(&mut buf)
            .unwrap();
        let mut p = RtpPacketMut::parse(&mut buf[..n]).unwrap();
        let r = rw.rewrite(&mut p, now);
        if let Rewrite::Forward {
            sequence_number,
            timestamp,
            ..
        } = r
        {
            assert_eq!(
                (p.ssrc(), p.sequence_number(), p.timestamp()),
                (42, sequence_number, timestamp)
            );
            assert_eq!(p.payload(), &[1, 2, 3]);
        }
        r
    }

    #[test]
    fn switching_sources_is_continuous() {
        let t0 = Instant::now();
        let cfg = RewriterConfig {
            ssrc: 42,
            clock_rate: 90_000,
            initial_sequence: 65530,
            initial_timestamp: u32::MAX - 1000,
        };
        let mut rw = ForwardRewriter::new(cfg);
        let mut out = Vec::new();
        // Source A: 10 packets, 2 per frame, 30 fps.
        for i in 0..10u16 {
            let now = t0 + Duration::from_millis(33 * u64::from(i / 2));
            out.push(forward(
                &mut rw,
                1,
                1000 + i,
                5000 + 3000 * u32::from(i / 2),
                now,
            ));
        }
        // Switch to source B (different seq/ts spaces) 33 ms after A's last frame.
        let t1 = t0 + Duration::from_millis(33 * 5);
        out.push(forward(&mut rw, 2, 60000, 123, t1));
        // A reordered B packet from before the switch point is dropped.
        assert_eq!(
            forward(&mut rw, 2, 59999, 120, t1),
            Rewrite::DropBeforeSwitch
        );
        for i in 1..10u16 {
            out.push(forward(
                &mut rw,
                2,
                60000 + i,
                123 + 3000 * u32::from(i / 2),
                t1,
            ));
        }
        let seqs: Vec<u16> = out
            .iter()
            .map(|r| match r {
                Rewrite::Forward {
                    sequence_number, ..
                } => *sequence_number,
                _ => unreachable!(),
            })
            .collect();
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1), "no gaps or repeats: {seqs:?}");
        }
        let ts: Vec<u32> = out
            .iter()
            .map(|r| match r {
                Rewrite::Forward { timestamp, .. } => *timestamp,
                _ => unreachable!(),
            })
            .collect();
        // The timestamp advances across the switch by ~33 ms of 90 kHz clock.
        assert_eq!(ts[10].wrapping_sub(ts[9]), 2970);
        assert!(matches!(out[10], Rewrite::Forward { switched: true, .. }));
    }
}

//! RTP/RTCP stream machinery of one peer: receiver/sender statistics, NACK generation,
//! retransmission history (plain or RTX, RFC 4588), transport-wide CC feedback, SR/RR/SDES
//! reports (RFC 3550) and PLI/FIR (RFC 4585 / RFC 5104).
//!
//! Sans-IO: every method takes the time from the caller. Memory is allocated when streams are
//! added (and on rare events such as a keyframe request naming a mid); the per-packet paths
//! ([`MediaStreams::on_rtp`], [`MediaStreams::on_rtcp`], [`MediaStreams::on_send_rtp`],
//! [`MediaStreams::poll_rtcp`], [`MediaStreams::poll_retransmit`]) do not allocate
//! (`tests/media_alloc.rs` counts).
//!
//! How the peer drives it:
//! - media in: [`MediaStreams::on_rtp`] on each decrypted RTP packet (RTX is unwrapped in place),
//!   [`MediaStreams::on_rtcp`] on each decrypted RTCP compound;
//! - media out: [`MediaStreams::on_send_rtp`] for each RTP packet sent;
//! - after `on_rtcp`, drain [`MediaStreams::poll_retransmit`] (answers to NACKs) and
//!   [`MediaStreams::poll_event`];
//! - at [`MediaStreams::poll_timeout`] call [`MediaStreams::handle_timeout`], then drain
//!   [`MediaStreams::poll_rtcp`] (reports, NACKs, PLI/FIR, TWCC feedback), which can also be
//!   drained at any other time: it only writes what is due at `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tympan_rtp::extensions::{ExtensionKind, ExtensionMap, KnownExtension};
use tympan_rtp::nack::{NackConfig, NackGenerator, PacketHistory};
use tympan_rtp::rtcp::{
    CompoundIter, FirEntry, NackPair, ReportBlock, RtcpPacket, RtcpWriter, SdesItem,
};
use tympan_rtp::rtp::{RtpPacket, RtpPacketMut};
use tympan_rtp::stats::{NtpClock, ReceiverStats, SenderStats, rtt_from_report};
use tympan_rtp::twcc::TwccReceiver;

use super::{DropReason, TimeoutReason};

/// NTP seconds at which the clock is anchored (2024-01-01T00:00:00Z): the shell only gives
/// `Instant`s, so `now` at construction is mapped to this arbitrary but plausible wall time.
pub(crate) const NTP_ANCHOR_SECS: u64 = 3_913_056_000;
/// Interval between RTCP report rounds (SR/RR + SDES).
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Interval between transport-wide CC feedback packets while packets arrive.
pub(crate) const TWCC_INTERVAL: Duration = Duration::from_millis(100);
/// Largest RTCP compound written (leaves room for the SRTCP trailer under a 1280-byte MTU).
pub(crate) const MAX_RTCP_LEN: usize = 1200;
/// Largest RTP packet kept in the send history (browsers send at most ~1200 bytes).
pub(crate) const HISTORY_PACKET_LEN: usize = 1300;
/// A received stream's SSRC is replaced by a new one seen on its mid only after this silence.
const SSRC_SWITCH_QUIET: Duration = Duration::from_millis(500);
/// Smallest `poll_rtcp` buffer accepted (RR + longest SDES + a NACK or TWCC packet).
const MIN_RTCP_BUF: usize = 600;
/// A packet is retransmitted at most once per this interval.
const MIN_RESEND_INTERVAL: Duration = Duration::from_millis(15);
/// Queued retransmission requests (sequence numbers) at most; more are dropped.
const RETRANSMIT_QUEUE: usize = 1024;
/// Arrivals buffered between two TWCC feedbacks at most.
const TWCC_CAPACITY: usize = 2048;
/// Sequence numbers tracked as missing per received stream at most.
const NACK_MAX_MISSING: usize = 500;
/// NACK FCI entries per NACK packet at most.
const MAX_NACK_PAIRS: usize = 64;
/// SSRCs per compound at most (SDES chunk count limit).
const MAX_SSRCS_PER_COMPOUND: usize = 31;
/// SDES CNAME byte length at most.
const MAX_CNAME: usize = 255;
/// Sizes of an SR/RR without report blocks and of one report block.
const RTCP_SR_LEN: usize = 28;
const RTCP_RR_LEN: usize = 8;
const RTCP_BLOCK_LEN: usize = 24;

/// Configuration of a stream we receive (a publisher track).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecvStreamConfig {
    /// Media section id.
    pub(crate) mid: String,
    /// The SSRC if signalled (`a=ssrc`); else learned from the mid header extension.
    pub(crate) ssrc: Option<u32>,
    /// The RTX SSRC if signalled (`a=ssrc-group:FID`); else learned.
    pub(crate) rtx_ssrc: Option<u32>,
    /// RTP clock rate (for jitter).
    pub(crate) clock_rate: u32,
    /// `(rtx payload type, apt)` pairs.
    pub(crate) rtx_payload_types: Vec<(u8, u8)>,
    /// `a=rtcp-fb:* nack` negotiated: NACK lost packets.
    pub(crate) nack: bool,
    /// `nack pli` negotiated.
    pub(crate) pli: bool,
    /// `ccm fir` negotiated.
    pub(crate) fir: bool,
}

/// Configuration of a stream we send (a subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendStreamConfig {
    /// Media section id.
    pub(crate) mid: String,
    /// Our SSRC on it.
    pub(crate) ssrc: u32,
    /// Our RTX SSRC, if RTX is negotiated.
    pub(crate) rtx_ssrc: Option<u32>,
    /// RTP clock rate (for the SR RTP timestamp).
    pub(crate) clock_rate: u32,
    /// `(rtx payload type, apt)` pairs.
    pub(crate) rtx_payload_types: Vec<(u8, u8)>,
    /// Packets kept for retransmission (e.g. 512 video, 128 audio).
    pub(crate) history: usize,
}

/// Something the peer must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaEvent {
    /// The remote asked (PLI/FIR) for a keyframe on a section we send.
    KeyframeRequested {
        /// The section.
        mid: String,
    },
}

#[allow(dead_code)] // fields read through `MediaStreams::counters` (stats, tests)
/// Counters of the media machinery (for `PeerStats` and debugging).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MediaCounters {
    /// RTP packets accepted by `on_rtp` (RTX included).
    pub(crate) rtp_in: u64,
    /// Payload bytes of those.
    pub(crate) rtp_bytes_in: u64,
    /// Of those, RTX packets unwrapped.
    pub(crate) rtx_in: u64,
    /// RTX padding-only packets (bandwidth probes) counted for TWCC and dropped.
    pub(crate) probes_in: u64,
    /// RTP packets recorded by `on_send_rtp`.
    pub(crate) rtp_out: u64,
    /// Payload bytes of those.
    pub(crate) rtp_bytes_out: u64,
    /// RTCP compounds received.
    pub(crate) rtcp_in: u64,
    /// RTCP packets that did not parse (the rest of their compound is skipped).
    pub(crate) rtcp_errors: u64,
    /// Sequence numbers NACKed by the remote.
    pub(crate) nacked_in: u64,
    /// Retransmissions written by `poll_retransmit`.
    pub(crate) retransmits: u64,
    /// NACKed packets not (or no longer) in the history, or resent too recently.
    pub(crate) retransmit_misses: u64,
    /// PLIs received on sections we send.
    pub(crate) plis_in: u64,
    /// FIRs received on sections we send.
    pub(crate) firs_in: u64,
    /// REMB packets received (ignored for now).
    pub(crate) remb_in: u64,
    /// TWCC feedback packets received (ignored for now).
    pub(crate) twcc_in: u64,
    /// RTCP compounds written.
    pub(crate) rtcp_out: u64,
    /// NACK packets sent.
    pub(crate) nacks_out: u64,
    /// Sequence numbers NACKed by us.
    pub(crate) nacked_out: u64,
    /// PLIs sent.
    pub(crate) plis_out: u64,
    /// FIRs sent.
    pub(crate) firs_out: u64,
    /// TWCC feedback packets sent.
    pub(crate) twcc_out: u64,
}

#[derive(Debug)]
struct RecvStream {
    cfg: RecvStreamConfig,
    /// Created when the SSRC is known.
    stats: Option<ReceiverStats>,
    nack: NackGenerator,
    keyframe_pending: bool,
    fir_seq: u8,
    /// When the last media (not RTX) packet arrived.
    last_rtp: Option<Instant>,
}

impl RecvStream {
    fn new(cfg: RecvStreamConfig) -> Self {
        let stats = cfg.ssrc.map(|s| ReceiverStats::new(s, cfg.clock_rate));
        RecvStream {
            cfg,
            stats,
            nack: new_nack_generator(),
            keyframe_pending: false,
            fir_seq: 0,
            last_rtp: None,
        }
    }

    /// Adopts `ssrc` as the stream's media SSRC, resetting its state if it changed.
    fn learn_ssrc(&mut self, ssrc: u32) {
        if self.cfg.ssrc != Some(ssrc) || self.stats.is_none() {
            let fresh = self.cfg.ssrc.is_none();
            self.cfg.ssrc = Some(ssrc);
            self.stats = Some(ReceiverStats::new(ssrc, self.cfg.clock_rate));
            if !fresh {
                self.nack = new_nack_generator();
            }
        }
    }

    fn apt(&self, rtx_pt: u8) -> Option<u8> {
        self.cfg
            .rtx_payload_types
            .iter()
            .find(|(rtx, _)| *rtx == rtx_pt)
            .map(|(_, apt)| *apt)
    }
}

fn new_nack_generator() -> NackGenerator {
    NackGenerator::new(NackConfig {
        max_missing: NACK_MAX_MISSING,
        ..NackConfig::default()
    })
}

#[derive(Debug)]
struct SendStream {
    cfg: SendStreamConfig,
    history: PacketHistory,
    stats: SenderStats,
    sent_any: bool,
    rtx_seq: u16,
    last_fir_seq: Option<(u32, u8)>,
    rtt: Option<Duration>,
    /// The last report block the remote sent about this stream.
    remote_report: Option<ReportBlock>,
}

impl SendStream {
    fn new(cfg: SendStreamConfig) -> Self {
        SendStream {
            history: PacketHistory::new(cfg.history, HISTORY_PACKET_LEN, None, MIN_RESEND_INTERVAL),
            stats: SenderStats::new(cfg.ssrc, cfg.clock_rate),
            sent_any: false,
            // Not random, but not predictable from the media sequence either (RFC 4588 §8.1
            // asks for a random start; the peer's SSRCs already come from its seeded RNG).
            rtx_seq: cfg.rtx_ssrc.map_or(0, |s| (s ^ (s >> 16)) as u16),
            last_fir_seq: None,
            rtt: None,
            remote_report: None,
            cfg,
        }
    }

    fn rtx_pt(&self, pt: u8) -> Option<u8> {
        self.cfg
            .rtx_payload_types
            .iter()
            .find(|(_, apt)| *apt == pt)
            .map(|(rtx, _)| *rtx)
    }
}

/// Progress of the current SR/RR round (it may span several compounds).
#[derive(Debug, Clone, Copy, Default)]
struct ReportRound {
    active: bool,
    send_cursor: usize,
    recv_cursor: usize,
}

/// The RTP/RTCP state of all media streams of one peer.
#[derive(Debug)]
pub(crate) struct MediaStreams {
    rtcp_ssrc: u32,
    cname: String,
    clock: NtpClock,
    extensions: ExtensionMap,
    twcc_enabled: bool,
    twcc: Option<TwccReceiver>,
    next_twcc: Instant,
    recv: Vec<RecvStream>,
    send: Vec<SendStream>,
    events: VecDeque<MediaEvent>,
    /// `(our ssrc, sequence number, when asked)`.
    retransmits: VecDeque<(u32, u16, Instant)>,
    next_report: Instant,
    round: ReportRound,
    nack_scratch: Vec<u16>,
    rtt: Option<Duration>,
    last_now: Instant,
    counters: MediaCounters,
}

impl MediaStreams {
    /// State for a peer sending its receiver-only RTCP as `rtcp_ssrc`, with SDES `cname`.
    /// The NTP clock of its sender reports is anchored at `now`.
    pub(crate) fn new(rtcp_ssrc: u32, mut cname: String, now: Instant) -> Self {
        if cname.len() > MAX_CNAME {
            let mut end = MAX_CNAME;
            while !cname.is_char_boundary(end) {
                end -= 1;
            }
            cname.truncate(end);
        }
        MediaStreams {
            rtcp_ssrc,
            cname,
            clock: NtpClock::new(now, NTP_ANCHOR_SECS << 32),
            extensions: ExtensionMap::new(),
            twcc_enabled: false,
            twcc: None,
            next_twcc: now,
            recv: Vec::new(),
            send: Vec::new(),
            events: VecDeque::with_capacity(8),
            retransmits: VecDeque::with_capacity(RETRANSMIT_QUEUE),
            next_report: now + REPORT_INTERVAL,
            round: ReportRound::default(),
            nack_scratch: Vec::with_capacity(NACK_MAX_MISSING),
            rtt: None,
            last_now: now,
            counters: MediaCounters::default(),
        }
    }

    /// The negotiated header extensions (ids of the remote's packets and of ours).
    pub(crate) fn set_extensions(&mut self, map: ExtensionMap) {
        self.extensions = map;
    }

    /// Whether transport-cc feedback was negotiated (`a=rtcp-fb:* transport-cc`).
    pub(crate) fn set_twcc(&mut self, enabled: bool) {
        self.twcc_enabled = enabled;
        if !enabled {
            if let Some(t) = &mut self.twcc {
                t.reset();
            }
        }
    }

    /// Adds (or reconfigures) the stream we receive on `cfg.mid`.
    pub(crate) fn add_recv_stream(&mut self, cfg: RecvStreamConfig) {
        match self.recv.iter_mut().find(|s| s.cfg.mid == cfg.mid) {
            Some(s) => {
                let known = s.cfg.ssrc;
                let new_ssrc = cfg.ssrc;
                s.cfg = RecvStreamConfig {
                    ssrc: known,
                    rtx_ssrc: cfg.rtx_ssrc.or(s.cfg.rtx_ssrc),
                    ..cfg
                };
                if let Some(ssrc) = new_ssrc {
                    s.learn_ssrc(ssrc);
                }
            }
            None => self.recv.push(RecvStream::new(cfg)),
        }
    }

    /// Adds (or reconfigures) the stream we send on `cfg.mid`. The history is kept when the
    /// SSRC and history size are unchanged.
    pub(crate) fn add_send_stream(&mut self, cfg: SendStreamConfig) {
        match self.send.iter_mut().find(|s| s.cfg.mid == cfg.mid) {
            Some(s) if s.cfg.ssrc == cfg.ssrc && s.cfg.history == cfg.history => {
                if s.cfg.rtx_ssrc != cfg.rtx_ssrc {
                    s.rtx_seq = cfg.rtx_ssrc.map_or(0, |x| (x ^ (x >> 16)) as u16);
                }
                s.cfg = cfg;
            }
            Some(s) => *s = SendStream::new(cfg),
            None => self.send.push(SendStream::new(cfg)),
        }
    }

    /// Forgets the streams of `mid` (both directions) and their queued work.
    pub(crate) fn remove_mid(&mut self, mid: &str) {
        self.recv.retain(|s| s.cfg.mid != mid);
        self.send.retain(|s| s.cfg.mid != mid);
        let send = &self.send;
        self.retransmits
            .retain(|(ssrc, _, _)| send.iter().any(|s| s.cfg.ssrc == *ssrc));
        self.round = ReportRound::default();
    }

    fn recv_by_ssrc(&self, ssrc: u32) -> Option<(usize, bool)> {
        self.recv.iter().enumerate().find_map(|(i, s)| {
            if s.cfg.ssrc == Some(ssrc) {
                Some((i, false))
            } else if s.cfg.rtx_ssrc == Some(ssrc) {
                Some((i, true))
            } else {
                None
            }
        })
    }

    /// Incoming plaintext RTP: find its stream (by SSRC, else by the mid header extension,
    /// learning the SSRC), unwrap RTX in place, update receiver stats, NACK generator, TWCC.
    /// Returns the mid and the new length of the (unwrapped) packet, or a drop reason
    /// (`Garbage` for unparseable packets and padding-only RTX probes, which still count for
    /// TWCC; `UnknownStream` for SSRCs no section claims).
    pub(crate) fn on_rtp<'s>(
        &'s mut self,
        now: Instant,
        packet: &mut [u8],
    ) -> Result<(&'s str, usize), DropReason> {
        self.last_now = now;
        let (ssrc, pt, seq, ts, header_len, payload_len, twcc_seq, found) = {
            let p = RtpPacket::parse(packet).map_err(|_| DropReason::Garbage)?;
            let twcc_seq = if self.twcc_enabled {
                self.extensions.transport_cc(&p)
            } else {
                None
            };
            let ssrc = p.ssrc();
            let found = match self.recv_by_ssrc(ssrc) {
                Some(f) => Some(f),
                None => match self.extensions.get(&p, ExtensionKind::Mid) {
                    Some(Ok(KnownExtension::Mid(mid))) => self
                        .recv
                        .iter()
                        .position(|s| s.cfg.mid.as_bytes() == mid)
                        .map(|i| (i, self.recv[i].apt(p.payload_type()).is_some())),
                    _ => None,
                },
            };
            (
                ssrc,
                p.payload_type(),
                p.sequence_number(),
                p.timestamp(),
                p.header_len(),
                p.payload().len(),
                twcc_seq,
                found,
            )
        };
        // Transport-wide CC covers every packet of the transport, probes included.
        if let Some(tseq) = twcc_seq {
            let rtcp_ssrc = self.rtcp_ssrc;
            self.twcc
                .get_or_insert_with(|| TwccReceiver::new(rtcp_ssrc, ssrc, TWCC_CAPACITY))
                .on_packet(tseq, now);
        }
        let Some((idx, is_rtx)) = found else {
            return Err(DropReason::UnknownStream);
        };
        let stream = &mut self.recv[idx];
        let (seq, ts, len) = if is_rtx {
            let Some(apt) = stream.apt(pt) else {
                return Err(DropReason::UnknownStream);
            };
            if stream.cfg.rtx_ssrc != Some(ssrc) {
                stream.cfg.rtx_ssrc = Some(ssrc);
            }
            if payload_len < 2 {
                // Padding-only RTX: a bandwidth probe (RFC 4588 allows no OSN-less packet).
                self.counters.probes_in += 1;
                return Err(DropReason::Garbage);
            }
            let Some(media_ssrc) = stream.cfg.ssrc else {
                return Err(DropReason::UnknownStream);
            };
            let osn = u16::from_be_bytes([packet[header_len], packet[header_len + 1]]);
            let end = header_len + payload_len;
            packet.copy_within(header_len + 2..end, header_len);
            packet[0] &= !0x20; // the RTX packet's padding is not the original's
            let len = end - 2;
            let mut p = RtpPacketMut::parse(&mut packet[..len]).map_err(|_| DropReason::Garbage)?;
            p.set_ssrc(media_ssrc);
            p.set_payload_type(apt);
            p.set_sequence_number(osn);
            self.counters.rtx_in += 1;
            (osn, ts, len)
        } else {
            if stream.cfg.ssrc != Some(ssrc) {
                // A new SSRC on the mid replaces the old one only once the old one went quiet
                // (an encoder restart), not while both arrive (e.g. unnegotiated simulcast).
                if stream
                    .last_rtp
                    .is_some_and(|t| now.saturating_duration_since(t) < SSRC_SWITCH_QUIET)
                {
                    return Err(DropReason::UnknownStream);
                }
                stream.learn_ssrc(ssrc);
            }
            stream.last_rtp = Some(now);
            (seq, ts, packet.len())
        };
        if let Some(stats) = &mut stream.stats {
            stats.on_packet(seq, ts, now);
        }
        if stream.cfg.nack {
            stream.nack.on_packet(seq, now);
        }
        self.counters.rtp_in += 1;
        self.counters.rtp_bytes_in += payload_len as u64;
        Ok((self.recv[idx].cfg.mid.as_str(), len))
    }

    /// Incoming plaintext RTCP compound: SR (for LSR/DLSR), RR (RTT), NACK (queue
    /// retransmissions from history), PLI/FIR (events), TWCC/REMB (counted, ignored for now).
    pub(crate) fn on_rtcp(&mut self, now: Instant, compound: &[u8]) {
        self.last_now = now;
        self.counters.rtcp_in += 1;
        for packet in CompoundIter::new(compound) {
            let packet = match packet {
                Ok(p) => p,
                Err(_) => {
                    self.counters.rtcp_errors += 1;
                    break;
                }
            };
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    if let Some(s) = self
                        .recv
                        .iter_mut()
                        .find(|s| s.cfg.ssrc == Some(sr.info.ssrc))
                        && let Some(stats) = &mut s.stats
                    {
                        stats.on_sender_report(sr.info.ntp_time, now);
                    }
                    for block in sr.reports {
                        self.on_report_block(now, &block);
                    }
                }
                RtcpPacket::ReceiverReport(rr) => {
                    for block in rr.reports {
                        self.on_report_block(now, &block);
                    }
                }
                RtcpPacket::Nack(nack) => {
                    if !self.send.iter().any(|s| s.cfg.ssrc == nack.media_ssrc) {
                        continue;
                    }
                    for seq in nack.pairs().flat_map(|p| p.lost()) {
                        self.counters.nacked_in += 1;
                        if self.retransmits.len() < RETRANSMIT_QUEUE {
                            self.retransmits.push_back((nack.media_ssrc, seq, now));
                        } else {
                            self.counters.retransmit_misses += 1;
                        }
                    }
                }
                RtcpPacket::Pli(pli) => {
                    if let Some(i) = self.send.iter().position(|s| s.cfg.ssrc == pli.media_ssrc) {
                        self.counters.plis_in += 1;
                        self.keyframe_requested(i);
                    }
                }
                RtcpPacket::Fir(fir) => {
                    for entry in fir.entries() {
                        let Some(i) = self.send.iter().position(|s| s.cfg.ssrc == entry.ssrc)
                        else {
                            continue;
                        };
                        // A repeated command sequence number is a retransmitted request.
                        let key = (fir.sender_ssrc, entry.seq_nr);
                        if self.send[i].last_fir_seq == Some(key) {
                            continue;
                        }
                        self.send[i].last_fir_seq = Some(key);
                        self.counters.firs_in += 1;
                        self.keyframe_requested(i);
                    }
                }
                RtcpPacket::TransportCc(_) => self.counters.twcc_in += 1,
                RtcpPacket::Remb(_) => self.counters.remb_in += 1,
                _ => {}
            }
        }
    }

    fn on_report_block(&mut self, now: Instant, block: &ReportBlock) {
        let Some(s) = self.send.iter_mut().find(|s| s.cfg.ssrc == block.ssrc) else {
            return;
        };
        s.remote_report = Some(*block);
        if let Some(rtt) = rtt_from_report(block, self.clock.ntp(now)) {
            s.rtt = Some(rtt);
            self.rtt = Some(rtt);
        }
    }

    fn keyframe_requested(&mut self, send_idx: usize) {
        let mid = &self.send[send_idx].cfg.mid;
        let already = self
            .events
            .iter()
            .any(|e| matches!(e, MediaEvent::KeyframeRequested { mid: m } if m == mid));
        if !already {
            self.events
                .push_back(MediaEvent::KeyframeRequested { mid: mid.clone() });
        }
    }

    /// Records an outgoing plaintext RTP packet on `mid` (history + sender stats).
    pub(crate) fn on_send_rtp(
        &mut self,
        now: Instant,
        mid: &str,
        packet: &[u8],
    ) -> Result<(), DropReason> {
        self.last_now = now;
        let s = self
            .send
            .iter_mut()
            .find(|s| s.cfg.mid == mid)
            .ok_or(DropReason::UnknownStream)?;
        let p = RtpPacket::parse(packet).map_err(|_| DropReason::Garbage)?;
        s.history.insert(&p);
        s.stats.on_sent(p.payload().len(), p.timestamp(), now);
        s.sent_any = true;
        self.counters.rtp_out += 1;
        self.counters.rtp_bytes_out += p.payload().len() as u64;
        Ok(())
    }

    /// Asks the remote sender on `mid` for a keyframe: PLI if negotiated, else FIR if
    /// negotiated, else nothing. Sent by the next `poll_rtcp` once the SSRC is known.
    pub(crate) fn request_keyframe(&mut self, now: Instant, mid: &str) {
        self.last_now = now;
        if let Some(s) = self.recv.iter_mut().find(|s| s.cfg.mid == mid)
            && (s.cfg.pli || s.cfg.fir)
        {
            s.keyframe_pending = true;
        }
    }

    /// The next event (keyframe requests from the remote).
    pub(crate) fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Next plaintext RTP retransmission (plain or RTX-wrapped) into `buf`; returns its length.
    pub(crate) fn poll_retransmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some((ssrc, seq, at)) = self.retransmits.pop_front() {
            let Some(s) = self.send.iter_mut().find(|s| s.cfg.ssrc == ssrc) else {
                continue;
            };
            let len = match s.history.resend(seq, at, buf) {
                Ok(Some(len)) => len,
                _ => {
                    self.counters.retransmit_misses += 1;
                    continue;
                }
            };
            self.counters.retransmits += 1;
            if let Some(rtx_ssrc) = s.cfg.rtx_ssrc
                && let Some(len) = rtx_wrap_in_place(buf, len, rtx_ssrc, s, seq)
            {
                return Some(len);
            }
            return Some(len);
        }
        None
    }

    fn reportable(&self) -> bool {
        self.send.iter().any(|s| s.sent_any) || self.recv.iter().any(|s| s.stats.is_some())
    }

    fn start_round_if_due(&mut self, now: Instant) {
        if !self.round.active && now >= self.next_report && self.reportable() {
            self.round = ReportRound {
                active: true,
                send_cursor: 0,
                recv_cursor: 0,
            };
            self.next_report = now + REPORT_INTERVAL;
        }
    }

    fn nack_due(&self, now: Instant) -> bool {
        self.recv.iter().any(|s| {
            s.cfg.nack && s.stats.is_some() && s.nack.poll_timeout().is_some_and(|t| t <= now)
        })
    }

    fn keyframe_due(&self) -> bool {
        self.recv
            .iter()
            .any(|s| s.keyframe_pending && s.cfg.ssrc.is_some())
    }

    fn twcc_due(&self, now: Instant) -> bool {
        self.twcc_enabled
            && now >= self.next_twcc
            && self.twcc.as_ref().is_some_and(|t| t.pending() > 0)
    }

    /// Next plaintext RTCP compound to send now into `buf`; returns its length. A compound
    /// always starts with an SR or RR and carries SDES CNAME (RFC 3550 §6.1; no reduced-size
    /// RTCP): the report round every ~1 s (one SR per sending SSRC, each in its own compound,
    /// report blocks of the received streams attached, spilling into additional RRs), then
    /// what is due of PLI/FIR, NACKs and TWCC feedback (every 100 ms). At most 1200 bytes are
    /// written; `buf` must hold at least 600 (else nothing is written).
    pub(crate) fn poll_rtcp(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.last_now = now;
        self.start_round_if_due(now);
        let keyframe = self.keyframe_due();
        let nack = self.nack_due(now);
        let twcc = self.twcc_due(now);
        if !self.round.active && !keyframe && !nack && !twcc {
            return None;
        }
        let budget = buf.len().min(MAX_RTCP_LEN);
        if budget < MIN_RTCP_BUF {
            // Not even RR + SDES + one feedback packet would fit: no progress possible.
            return None;
        }
        let mut w = RtcpWriter::new(&mut buf[..budget]);
        let mut ssrcs = [0u32; MAX_SSRCS_PER_COMPOUND];
        let mut n_ssrcs = 0;
        let chunk_len = 4 + (2 + self.cname.len() + 1).div_ceil(4) * 4;
        let sdes_len = |n: usize| 4 + n * chunk_len;

        if self.round.active {
            self.write_reports(now, &mut w, &mut ssrcs, &mut n_ssrcs, budget, &sdes_len);
        }
        if n_ssrcs == 0 {
            // A feedback-only compound: empty RR as the mandatory first packet.
            if w.receiver_report(self.rtcp_ssrc, &[]).is_err() {
                return None;
            }
            ssrcs[0] = self.rtcp_ssrc;
            n_ssrcs = 1;
        }
        let item = [SdesItem {
            kind: 1,
            value: self.cname.as_bytes(),
        }];
        let mut chunks: [(u32, &[SdesItem<'_>]); MAX_SSRCS_PER_COMPOUND] =
            [(0, &item[..]); MAX_SSRCS_PER_COMPOUND];
        for (c, s) in chunks.iter_mut().zip(&ssrcs[..n_ssrcs]) {
            c.0 = *s;
        }
        if w.sdes(&chunks[..n_ssrcs]).is_err() {
            return None;
        }

        // Keyframe requests first: small and urgent.
        for s in &mut self.recv {
            let Some(media_ssrc) = s.cfg.ssrc else {
                continue;
            };
            if !s.keyframe_pending || budget - w.len() < 20 {
                continue;
            }
            let ok = if s.cfg.pli {
                let r = w.pli(self.rtcp_ssrc, media_ssrc).is_ok();
                self.counters.plis_out += u64::from(r);
                r
            } else {
                s.fir_seq = s.fir_seq.wrapping_add(1);
                let entry = FirEntry {
                    ssrc: media_ssrc,
                    seq_nr: s.fir_seq,
                };
                let r = w.fir(self.rtcp_ssrc, &[entry]).is_ok();
                self.counters.firs_out += u64::from(r);
                r
            };
            if ok {
                s.keyframe_pending = false;
            }
        }

        // NACKs.
        for s in &mut self.recv {
            let Some(media_ssrc) = s.cfg.ssrc else {
                continue;
            };
            if !s.cfg.nack || s.nack.poll_timeout().is_none_or(|t| t > now) {
                continue;
            }
            let room = budget - w.len();
            if room < 16 {
                break;
            }
            let max_pairs = ((room - 12) / 4).min(MAX_NACK_PAIRS);
            self.nack_scratch.clear();
            s.nack.poll(now, &mut self.nack_scratch);
            let mut pairs = [NackPair { pid: 0, blp: 0 }; MAX_NACK_PAIRS];
            let mut n = 0;
            NackPair::pack(self.nack_scratch.iter().copied(), |p| {
                if n < max_pairs {
                    pairs[n] = p;
                    n += 1;
                }
            });
            if n > 0 && w.nack(self.rtcp_ssrc, media_ssrc, &pairs[..n]).is_ok() {
                self.counters.nacks_out += 1;
                self.counters.nacked_out += pairs[..n]
                    .iter()
                    .map(|p| 1 + u64::from(p.blp.count_ones()))
                    .sum::<u64>();
            }
        }

        // Transport-wide CC feedback.
        if twcc && let Some(t) = &mut self.twcc {
            while t.pending() > 0 && budget - w.len() >= 64 {
                match t.build_feedback(&mut w) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => self.counters.twcc_out += 1,
                }
            }
            if t.pending() == 0 {
                self.next_twcc = now + TWCC_INTERVAL;
            }
        }

        self.counters.rtcp_out += 1;
        Some(w.len())
    }

    /// Writes the SR/RR packets of the current round that fit, recording their sender SSRCs.
    fn write_reports(
        &mut self,
        now: Instant,
        w: &mut RtcpWriter<'_>,
        ssrcs: &mut [u32; MAX_SSRCS_PER_COMPOUND],
        n_ssrcs: &mut usize,
        budget: usize,
        sdes_len: &dyn Fn(usize) -> usize,
    ) {
        let mut blocks = [ReportBlock::default(); MAX_SSRCS_PER_COMPOUND];
        loop {
            let next_send =
                (self.round.send_cursor..self.send.len()).find(|&i| self.send[i].sent_any);
            let blocks_left = self.recv[self.round.recv_cursor.min(self.recv.len())..]
                .iter()
                .filter(|s| s.stats.is_some())
                .count();
            if next_send.is_none() && blocks_left == 0 {
                self.round = ReportRound::default();
                return;
            }
            if next_send.is_some() && !w.is_empty() {
                // One SR per compound, as its first packet (RFC 3550 §6.1: report packet
                // first, then only additional RRs before the SDES).
                return;
            }
            let sender = match next_send {
                Some(i) => self.send[i].cfg.ssrc,
                None => self.rtcp_ssrc,
            };
            let new_ssrc = !ssrcs[..*n_ssrcs].contains(&sender);
            if new_ssrc && *n_ssrcs == MAX_SSRCS_PER_COMPOUND {
                return;
            }
            let fixed = if next_send.is_some() {
                RTCP_SR_LEN
            } else {
                RTCP_RR_LEN
            };
            let used = w.len() + sdes_len(*n_ssrcs + usize::from(new_ssrc));
            let Some(room) = budget.checked_sub(used + fixed) else {
                return;
            };
            let nb = (room / RTCP_BLOCK_LEN)
                .min(MAX_SSRCS_PER_COMPOUND)
                .min(blocks_left);
            if next_send.is_none() && nb == 0 {
                return;
            }
            let mut n = 0;
            while n < nb && self.round.recv_cursor < self.recv.len() {
                if let Some(stats) = &mut self.recv[self.round.recv_cursor].stats {
                    blocks[n] = stats.report_block(now);
                    n += 1;
                }
                self.round.recv_cursor += 1;
            }
            let written = match next_send {
                Some(i) => {
                    let info = self.send[i].stats.sender_info(now, &self.clock);
                    self.round.send_cursor = i + 1;
                    w.sender_report(&info, &blocks[..n])
                }
                None => w.receiver_report(self.rtcp_ssrc, &blocks[..n]),
            };
            if written.is_err() {
                // Cannot happen with the sizes computed above; end the round rather than loop.
                self.round = ReportRound::default();
                return;
            }
            if new_ssrc {
                ssrcs[*n_ssrcs] = sender;
                *n_ssrcs += 1;
            }
        }
    }

    /// Advances timers: starts the report round when due. Then drain `poll_rtcp(now)`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.start_round_if_due(now);
    }

    /// When `handle_timeout` + `poll_rtcp` should run next, and why.
    pub(crate) fn poll_timeout(&self) -> Option<(Instant, TimeoutReason)> {
        let mut best: Option<(Instant, TimeoutReason)> = None;
        let mut offer = |t: Instant, r: TimeoutReason| {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, r));
            }
        };
        if self.round.active || self.keyframe_due() {
            offer(self.last_now, TimeoutReason::Rtcp);
        } else if self.reportable() {
            offer(self.next_report, TimeoutReason::Rtcp);
        }
        for s in &self.recv {
            if s.cfg.nack
                && s.stats.is_some()
                && let Some(t) = s.nack.poll_timeout()
            {
                offer(t, TimeoutReason::Nack);
            }
        }
        if self.twcc_enabled && self.twcc.as_ref().is_some_and(|t| t.pending() > 0) {
            offer(self.next_twcc, TimeoutReason::Twcc);
        }
        best
    }

    /// The latest round-trip time measured from the remote's report blocks (RFC 3550 §6.4.1).
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    #[allow(dead_code)] // for stats and tests; the peer may not use it yet
    /// Counters since construction.
    pub(crate) fn counters(&self) -> MediaCounters {
        self.counters
    }

    #[allow(dead_code)] // for stats and tests; the peer may not use it yet
    /// The NTP time (64-bit fixed point) our sender reports state for `now`.
    pub(crate) fn ntp_time(&self, now: Instant) -> u64 {
        self.clock.ntp(now)
    }

    #[allow(dead_code)] // for stats and tests; the peer may not use it yet
    /// The SSRC learned (or configured) for the stream received on `mid`.
    pub(crate) fn recv_ssrc(&self, mid: &str) -> Option<u32> {
        self.recv
            .iter()
            .find(|s| s.cfg.mid == mid)
            .and_then(|s| s.cfg.ssrc)
    }

    #[allow(dead_code)] // for stats and tests; the peer may not use it yet
    /// The last report block the remote sent about the stream we send on `mid`.
    pub(crate) fn remote_report(&self, mid: &str) -> Option<ReportBlock> {
        self.send
            .iter()
            .find(|s| s.cfg.mid == mid)
            .and_then(|s| s.remote_report)
    }
}

/// Reception quality of one direction of a peer's media, over all its streams: what the
/// server measured on the remote's streams (inbound), or what the remote's RTCP receiver
/// reports say about ours (outbound).
// Public through `peer::LinkQuality`; the tests that include this file do not read it.
#[allow(unreachable_pub, dead_code)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkQuality {
    /// Streams that have statistics (inbound: received packets; outbound: a report arrived).
    pub streams: u32,
    /// Packets expected so far (inbound only: from the extended highest sequence numbers).
    pub packets_expected: u64,
    /// Packets received so far (inbound only, duplicates included as RFC 3550 counts).
    pub packets_received: u64,
    /// Cumulative packets lost (RFC 3550; negative with duplicates), summed over streams.
    pub packets_lost: i64,
    /// Fraction lost of the last report interval, 1/256 units, the worst stream (outbound
    /// only: inbound fractions are computed by the engine over its own window).
    pub fraction_lost_q8: u8,
    /// Interarrival jitter, the worst stream.
    pub jitter: Duration,
}

impl MediaStreams {
    #[allow(dead_code)] // used by the peer, not by the tests that include this file
    /// Loss and jitter over all streams: inbound from our receiver statistics, outbound from
    /// the remote's latest report block about each stream we send.
    pub(crate) fn quality(&self) -> (LinkQuality, LinkQuality) {
        let jitter = |units: u32, clock_rate: u32| {
            if clock_rate == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros(u64::from(units) * 1_000_000 / u64::from(clock_rate))
            }
        };
        let mut q = (LinkQuality::default(), LinkQuality::default());
        for s in &self.recv {
            let Some(stats) = &s.stats else { continue };
            let i = &mut q.0;
            i.streams += 1;
            i.packets_expected += u64::from(stats.expected());
            i.packets_received += u64::from(stats.received());
            i.packets_lost += i64::from(stats.cumulative_lost());
            i.jitter = i.jitter.max(jitter(stats.jitter(), s.cfg.clock_rate));
        }
        for s in &self.send {
            let Some(block) = &s.remote_report else {
                continue;
            };
            let o = &mut q.1;
            o.streams += 1;
            o.packets_lost += i64::from(block.cumulative_lost);
            o.fraction_lost_q8 = o.fraction_lost_q8.max(block.fraction_lost);
            o.jitter = o.jitter.max(jitter(block.jitter, s.cfg.clock_rate));
        }
        q
    }
}

/// Fuzz entry point (`fuzz/fuzz_targets/media_streams.rs`, replayed by
/// `tests/media_fuzz_regressions.rs`): drives a `MediaStreams` with two received streams (one
/// with RTX, one learned from the mid extension), two sent streams and TWCC, from records
/// `[op, len_hi, len_lo, bytes...]` of `data`, with simulated time from `t0`. Checks that whatever it
/// writes is well-formed: every RTCP compound validates and every retransmission parses as RTP.
/// Returns the number of records processed.
#[allow(dead_code)] // used by the fuzz target and its regression test only
pub(crate) fn fuzz_media_input(t0: Instant, data: &[u8]) -> usize {
    use tympan_rtp::extensions::{URI_MID, URI_TRANSPORT_CC};
    let mut now = t0;
    let mut m = MediaStreams::new(0xAAAA, "fuzz".into(), t0);
    let mut map = ExtensionMap::new();
    map.insert_uri(3, URI_TRANSPORT_CC);
    map.insert_uri(4, URI_MID);
    m.set_extensions(map);
    m.set_twcc(true);
    let recv = |mid: &str, ssrc: Option<u32>, rtx_ssrc: Option<u32>| RecvStreamConfig {
        mid: mid.into(),
        ssrc,
        rtx_ssrc,
        clock_rate: 90_000,
        rtx_payload_types: vec![(97, 96)],
        nack: true,
        pli: mid == "0",
        fir: true,
    };
    m.add_recv_stream(recv("0", Some(0x1111), Some(0x1112)));
    m.add_recv_stream(recv("1", None, None));
    for (mid, ssrc, rtx) in [("2", 0x2222, Some(0x2223)), ("3", 0x3333, None)] {
        m.add_send_stream(SendStreamConfig {
            mid: mid.into(),
            ssrc,
            rtx_ssrc: rtx,
            clock_rate: 90_000,
            rtx_payload_types: vec![(97, 96)],
            history: 64,
        });
    }
    let ssrcs = [0x1111u32, 0x1112, 0x2222, 0x3333, 0x4444];
    let mut buf = [0u8; 1500];
    let mut scratch = [0u8; 1500];
    let mut rest = data;
    let mut records = 0;
    while let [op, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo))
            .min(tail.len())
            .min(1400);
        let (body, next) = tail.split_at(len);
        rest = next;
        records += 1;
        now += Duration::from_millis(u64::from(op >> 3));
        match op & 7 {
            0 | 1 => {
                // RTP in, with a plausible header so the stream logic is reached.
                let p = &mut scratch[..len];
                p.copy_from_slice(body);
                if len >= 12 {
                    p[0] = 0x80 | (p[0] & 0x3F);
                    p[1] = (p[1] & 0x80) | if op & 1 == 1 { 97 } else { 96 };
                    let ssrc = ssrcs[usize::from(p[8]) % ssrcs.len()];
                    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
                }
                if let Ok((_, n)) = m.on_rtp(now, p) {
                    assert!(n <= len, "unwrapped packet longer than the input");
                    assert!(
                        RtpPacket::parse(&p[..n]).is_ok(),
                        "unwrapped RTP does not parse"
                    );
                }
            }
            2 => m.on_rtcp(now, body),
            3 | 4 => {
                let _ = m.on_send_rtp(now, if op & 7 == 3 { "2" } else { "3" }, body);
            }
            5 => m.request_keyframe(
                now,
                if body.first().is_some_and(|b| b & 1 == 1) {
                    "1"
                } else {
                    "0"
                },
            ),
            _ => m.handle_timeout(now),
        }
        while let Some(n) = m.poll_retransmit(&mut buf) {
            assert!(
                RtpPacket::parse(&buf[..n]).is_ok(),
                "retransmission does not parse"
            );
        }
        while m.poll_event().is_some() {}
        let mut compounds = 0;
        while let Some(n) = m.poll_rtcp(now, &mut buf) {
            assert!(n <= MAX_RTCP_LEN);
            assert!(
                tympan_rtp::rtcp::validate_full_compound(&buf[..n]).is_ok(),
                "invalid RTCP compound written"
            );
            compounds += 1;
            assert!(compounds < 1000, "poll_rtcp does not stop");
        }
        if let Some((t, _)) = m.poll_timeout() {
            assert!(
                t + Duration::from_secs(3600) > now,
                "deadline far in the past"
            );
        }
    }
    records
}

/// Turns the plain retransmission of `seq` (`len` bytes at the start of `buf`) into its RTX
/// form in place (RFC 4588 §4: RTX SSRC, payload type and sequence number; payload = original
/// sequence number + original payload; padding dropped). `None` (leave it plain) if no RTX
/// payload type maps to the packet's or `buf` has no room for the two extra bytes.
fn rtx_wrap_in_place(
    buf: &mut [u8],
    len: usize,
    rtx_ssrc: u32,
    s: &mut SendStream,
    seq: u16,
) -> Option<usize> {
    let (header_len, payload_len, pt) = {
        let p = RtpPacket::parse(buf.get(..len)?).ok()?;
        (p.header_len(), p.payload().len(), p.payload_type())
    };
    let rtx_pt = s.rtx_pt(pt)?;
    let total = header_len + 2 + payload_len;
    if buf.len() < total {
        return None;
    }
    buf.copy_within(header_len..header_len + payload_len, header_len + 2);
    buf[header_len..header_len + 2].copy_from_slice(&seq.to_be_bytes());
    buf[0] &= !0x20;
    let mut p = RtpPacketMut::parse(&mut buf[..total]).ok()?;
    p.set_ssrc(rtx_ssrc);
    p.set_payload_type(rtx_pt);
    p.set_sequence_number(s.rtx_seq);
    s.rtx_seq = s.rtx_seq.wrapping_add(1);
    Some(total)
}

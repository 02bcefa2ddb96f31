//! RTCP (RFC 3550, 4585, 5104, 3611, draft-holmer transport-wide CC, REMB): zero-copy parsing of
//! compound and reduced-size (RFC 5506) packets and in-place building.
//!
//! [`CompoundIter`] walks a compound packet without allocating and yields one [`RtcpPacket`]
//! view per packet; each view is validated when yielded, so its iterators never fail. Packet
//! types this crate does not know come out as [`RtcpPacket::Unknown`] and can be skipped.
//! [`RtcpWriter`] appends packets to a caller-provided buffer.

use crate::twcc_chunks::{ChunkChooser, encode_statuses};
use core::fmt;

/// Why RTCP could not be parsed or written. Offsets are from the start of the compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpError {
    /// The data ends before `field` (which needs bytes up to `needed`).
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Offset one past what the field needs.
        needed: usize,
        /// Length available.
        len: usize,
    },
    /// The version bits at `offset` are not 2.
    BadVersion {
        /// Offset of the packet.
        offset: usize,
        /// Version found.
        version: u8,
    },
    /// A packet is structurally wrong.
    Malformed {
        /// Offset where the problem was found.
        offset: usize,
        /// Packet type.
        packet_type: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed in total.
        needed: usize,
        /// Buffer length.
        available: usize,
    },
    /// A value does not fit the wire format.
    InvalidValue {
        /// Which value.
        field: &'static str,
    },
}

impl fmt::Display for RtcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtcpError::Truncated { field, needed, len } => {
                write!(
                    f,
                    "RTCP truncated in {field}: needs {needed} bytes, has {len}"
                )
            }
            RtcpError::BadVersion { offset, version } => {
                write!(f, "RTCP version {version} at offset {offset}")
            }
            RtcpError::Malformed {
                offset,
                packet_type,
                reason,
            } => {
                write!(
                    f,
                    "RTCP packet type {packet_type} at offset {offset}: {reason}"
                )
            }
            RtcpError::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed}, have {available}")
            }
            RtcpError::InvalidValue { field } => write!(f, "value out of range for {field}"),
        }
    }
}

impl std::error::Error for RtcpError {}

/// Packet type SR.
pub const PT_SR: u8 = 200;
/// Packet type RR.
pub const PT_RR: u8 = 201;
/// Packet type SDES.
pub const PT_SDES: u8 = 202;
/// Packet type BYE.
pub const PT_BYE: u8 = 203;
/// Packet type APP.
pub const PT_APP: u8 = 204;
/// Packet type RTPFB (transport-layer feedback).
pub const PT_RTPFB: u8 = 205;
/// Packet type PSFB (payload-specific feedback).
pub const PT_PSFB: u8 = 206;
/// Packet type XR.
pub const PT_XR: u8 = 207;

#[inline]
fn be16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}
#[inline]
fn be32(d: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}
#[inline]
fn be64(d: &[u8], o: usize) -> u64 {
    (u64::from(be32(d, o)) << 32) | u64::from(be32(d, o + 4))
}

/// Returns true if `buf` looks like RTCP rather than RTP (RFC 5761 §4: PT 192–223).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

/// One report block of an SR or RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// SSRC of the source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report (fixed point /256).
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR.
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn read(d: &[u8], o: usize) -> Self {
        let lost = be32(d, o + 4);
        let cum = ((lost & 0x00FF_FFFF) << 8) as i32 >> 8;
        ReportBlock {
            ssrc: be32(d, o),
            fraction_lost: (lost >> 24) as u8,
            cumulative_lost: cum,
            extended_highest_seq: be32(d, o + 8),
            jitter: be32(d, o + 12),
            last_sr: be32(d, o + 16),
            delay_since_last_sr: be32(d, o + 20),
        }
    }
    fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        let lost =
            (u32::from(self.fraction_lost) << 24) | (self.cumulative_lost as u32 & 0x00FF_FFFF);
        out[4..8].copy_from_slice(&lost.to_be_bytes());
        out[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// Iterator over the report blocks of an SR/RR.
#[derive(Debug, Clone, Copy)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl ReportBlocks<'_> {
    /// Number of blocks.
    pub fn count(&self) -> usize {
        self.data.len() / 24
    }
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        if self.data.len() < 24 {
            return None;
        }
        let b = ReportBlock::read(self.data, 0);
        self.data = &self.data[24..];
        Some(b)
    }
}

/// Sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// SSRC of the sender.
    pub ssrc: u32,
    /// NTP timestamp (32.32 fixed point).
    pub ntp_time: u64,
    /// RTP timestamp corresponding to `ntp_time`.
    pub rtp_time: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// A sender report.
#[derive(Debug, Clone, Copy)]
pub struct SenderReport<'a> {
    /// The sender information.
    pub info: SenderInfo,
    /// The report blocks.
    pub reports: ReportBlocks<'a>,
    /// Profile-specific extension bytes.
    pub extension: &'a [u8],
}

/// A receiver report.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverReport<'a> {
    /// SSRC of the packet sender.
    pub ssrc: u32,
    /// The report blocks.
    pub reports: ReportBlocks<'a>,
    /// Profile-specific extension bytes.
    pub extension: &'a [u8],
}

/// SDES item type CNAME.
pub const SDES_CNAME: u8 = 1;

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (1 = CNAME, …).
    pub kind: u8,
    /// Item value.
    pub value: &'a [u8],
}

/// One SDES chunk: an SSRC and its items.
#[derive(Debug, Clone, Copy)]
pub struct SdesChunk<'a> {
    /// SSRC/CSRC described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// Iterates the items.
    pub fn items(&self) -> impl Iterator<Item = SdesItem<'a>> + use<'a> {
        let mut d = self.items;
        core::iter::from_fn(move || {
            if d.len() < 2 || d[0] == 0 {
                return None;
            }
            let l = d[1] as usize;
            let item = SdesItem {
                kind: d[0],
                value: d.get(2..2 + l)?,
            };
            d = &d[2 + l..];
            Some(item)
        })
    }
}

/// A source description packet.
#[derive(Debug, Clone, Copy)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// Number of chunks.
    pub fn count(&self) -> usize {
        self.count as usize
    }
    /// Iterates the chunks.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + use<'a> {
        let mut d = self.body;
        let mut left = self.count;
        core::iter::from_fn(move || {
            if left == 0 || d.len() < 4 {
                return None;
            }
            left -= 1;
            let ssrc = be32(d, 0);
            let end = sdes_items_end(d, 4)?;
            let items = &d[4..end];
            let next = (end + 1).div_ceil(4) * 4;
            d = d.get(next..).unwrap_or(&[]);
            Some(SdesChunk { ssrc, items })
        })
    }
}

/// Returns the offset of the terminating null item of a chunk's item list.
fn sdes_items_end(d: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        match d.get(pos)? {
            0 => return Some(pos),
            _ => {
                let l = *d.get(pos + 1)? as usize;
                pos += 2 + l;
            }
        }
    }
}

/// A goodbye packet.
#[derive(Debug, Clone, Copy)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// Reason for leaving, if given.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    /// The SSRCs leaving.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + use<'a> {
        self.ssrcs.chunks_exact(4).map(|c| be32(c, 0))
    }
}

/// An application-defined packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    /// Subtype (5 bits).
    pub subtype: u8,
    /// SSRC.
    pub ssrc: u32,
    /// Four ASCII characters.
    pub name: [u8; 4],
    /// Application data (multiple of 4 bytes).
    pub data: &'a [u8],
}

/// One generic NACK FCI entry: a lost packet id and a bitmask of the following 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackPair {
    /// Packet id.
    pub pid: u16,
    /// Bitmask of following lost packets.
    pub blp: u16,
}

impl NackPair {
    /// The sequence numbers this entry reports lost.
    pub fn lost(&self) -> impl Iterator<Item = u16> + use<> {
        let (pid, blp) = (self.pid, self.blp);
        core::iter::once(pid).chain(
            (0..16)
                .filter(move |i| blp & (1 << i) != 0)
                .map(move |i| pid.wrapping_add(i + 1)),
        )
    }

    /// Packs ascending sequence numbers (wrapping allowed) into NACK pairs, calling `emit` for
    /// each pair. No allocation.
    pub fn pack(seqs: impl IntoIterator<Item = u16>, mut emit: impl FnMut(NackPair)) {
        let mut cur: Option<NackPair> = None;
        for s in seqs {
            if let Some(p) = &mut cur {
                let d = s.wrapping_sub(p.pid);
                if (1..=16).contains(&d) {
                    p.blp |= 1 << (d - 1);
                    continue;
                }
                if d == 0 {
                    continue;
                }
                emit(*p);
            }
            cur = Some(NackPair { pid: s, blp: 0 });
        }
        if let Some(p) = cur {
            emit(p);
        }
    }
}

/// A generic NACK (RFC 4585 §6.2.1).
#[derive(Debug, Clone, Copy)]
pub struct Nack<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    /// The FCI entries.
    pub fn pairs(&self) -> impl Iterator<Item = NackPair> + use<'a> {
        self.fci.chunks_exact(4).map(|c| NackPair {
            pid: be16(c, 0),
            blp: be16(c, 2),
        })
    }
}

/// A picture loss indication (RFC 4585 §6.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pli {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
}

/// One FIR entry (RFC 5104 §4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirEntry {
    /// SSRC of the media sender asked for a keyframe.
    pub ssrc: u32,
    /// Command sequence number.
    pub seq_nr: u8,
}

/// A full intra request.
#[derive(Debug, Clone, Copy)]
pub struct Fir<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source (unused, usually 0).
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Fir<'a> {
    /// The entries.
    pub fn entries(&self) -> impl Iterator<Item = FirEntry> + use<'a> {
        self.fci.chunks_exact(8).map(|c| FirEntry {
            ssrc: be32(c, 0),
            seq_nr: c[4],
        })
    }
}

/// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb).
#[derive(Debug, Clone, Copy)]
pub struct Remb<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// Estimated bitrate in bits per second.
    pub bitrate: u64,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    /// The SSRCs the estimate applies to.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + use<'a> {
        self.ssrcs.chunks_exact(4).map(|c| be32(c, 0))
    }
}

/// One packet's status in transport-wide CC feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccStatus {
    /// Transport-wide sequence number.
    pub seq: u16,
    /// Receive delta in 250 µs ticks, or `None` if the packet was not received.
    pub delta: Option<i16>,
}

/// Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-01 §3.1).
#[derive(Debug, Clone, Copy)]
pub struct TwccFeedback<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
    /// First transport sequence number reported.
    pub base_seq: u16,
    /// Number of packets reported.
    pub status_count: u16,
    /// Reference time in 64 ms units (24-bit signed).
    pub reference_time: i32,
    /// Feedback packet counter.
    pub fb_pkt_count: u8,
    chunks: &'a [u8],
    deltas: &'a [u8],
}

fn chunk_symbol(chunk: u16, idx: u16) -> u8 {
    if chunk & 0x8000 == 0 {
        ((chunk >> 13) & 0x3) as u8
    } else if chunk & 0x4000 == 0 {
        ((chunk >> (13 - idx)) & 0x1) as u8
    } else {
        ((chunk >> (12 - 2 * idx)) & 0x3) as u8
    }
}

fn chunk_capacity(chunk: u16) -> u16 {
    if chunk & 0x8000 == 0 {
        chunk & 0x1FFF
    } else if chunk & 0x4000 == 0 {
        14
    } else {
        7
    }
}

impl<'a> TwccFeedback<'a> {
    /// Iterates the per-packet statuses in sequence order.
    pub fn statuses(&self) -> TwccStatusIter<'a> {
        TwccStatusIter {
            chunks: self.chunks,
            deltas: self.deltas,
            chunk: 0,
            idx: 0,
            cap: 0,
            seq: self.base_seq,
            left: self.status_count,
        }
    }

    /// Reference time in microseconds (reference_time × 64 ms).
    pub fn reference_time_us(&self) -> i64 {
        i64::from(self.reference_time) * 64_000
    }

    fn validate(
        chunks_and_more: &'a [u8],
        status_count: u16,
        base: usize,
    ) -> Result<(&'a [u8], &'a [u8]), RtcpError> {
        let err = |offset, reason| RtcpError::Malformed {
            offset,
            packet_type: PT_RTPFB,
            reason,
        };
        let mut pos = 0;
        let mut left = status_count;
        let mut delta_bytes = 0usize;
        while left > 0 {
            if pos + 2 > chunks_and_more.len() {
                return Err(err(
                    base + pos,
                    "packet status chunks end before status count is reached",
                ));
            }
            let c = be16(chunks_and_more, pos);
            let n = chunk_capacity(c).min(left);
            if c & 0x8000 == 0 {
                match chunk_symbol(c, 0) {
                    3 => return Err(err(base + pos, "reserved status symbol")),
                    s => delta_bytes += n as usize * s as usize,
                }
            } else {
                for i in 0..n {
                    match chunk_symbol(c, i) {
                        3 => return Err(err(base + pos, "reserved status symbol")),
                        s => delta_bytes += s as usize,
                    }
                }
            }
            left -= n;
            pos += 2;
        }
        let chunks = &chunks_and_more[..pos];
        let deltas = chunks_and_more
            .get(pos..pos + delta_bytes)
            .ok_or(err(base + pos, "receive deltas overrun packet"))?;
        Ok((chunks, deltas))
    }
}

/// Iterator over the statuses of a [`TwccFeedback`].
#[derive(Debug, Clone)]
pub struct TwccStatusIter<'a> {
    chunks: &'a [u8],
    deltas: &'a [u8],
    chunk: u16,
    idx: u16,
    cap: u16,
    seq: u16,
    left: u16,
}

impl Iterator for TwccStatusIter<'_> {
    type Item = TwccStatus;
    fn next(&mut self) -> Option<TwccStatus> {
        if self.left == 0 {
            return None;
        }
        while self.idx >= self.cap {
            if self.chunks.len() < 2 {
                return None;
            }
            self.chunk = be16(self.chunks, 0);
            self.chunks = &self.chunks[2..];
            self.cap = chunk_capacity(self.chunk);
            self.idx = 0;
        }
        let sym = chunk_symbol(self.chunk, self.idx);
        self.idx += 1;
        self.left -= 1;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let delta = match sym {
            1 => {
                let (&d, rest) = self.deltas.split_first()?;
                self.deltas = rest;
                Some(i16::from(d))
            }
            2 => {
                if self.deltas.len() < 2 {
                    return None;
                }
                let d = be16(self.deltas, 0) as i16;
                self.deltas = &self.deltas[2..];
                Some(d)
            }
            _ => None,
        };
        Some(TwccStatus { seq, delta })
    }
}

/// Extended report block types this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XrBlock<'a> {
    /// Receiver reference time (RFC 3611 §4.4).
    ReceiverReferenceTime {
        /// NTP timestamp.
        ntp_time: u64,
    },
    /// DLRR (RFC 3611 §4.5).
    Dlrr(DlrrItems<'a>),
    /// Any other block type, passed through.
    Unknown {
        /// Block type.
        block_type: u8,
        /// Type-specific byte.
        type_specific: u8,
        /// Block contents.
        data: &'a [u8],
    },
}

/// One DLRR sub-block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DlrrItem {
    /// SSRC of the receiver.
    pub ssrc: u32,
    /// Last RR timestamp (middle 32 bits of the RRTR NTP time).
    pub last_rr: u32,
    /// Delay since last RR in 1/65536 s.
    pub delay_since_last_rr: u32,
}

/// The sub-blocks of a DLRR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DlrrItems<'a> {
    data: &'a [u8],
}

impl Iterator for DlrrItems<'_> {
    type Item = DlrrItem;
    fn next(&mut self) -> Option<DlrrItem> {
        if self.data.len() < 12 {
            return None;
        }
        let d = self.data;
        self.data = &d[12..];
        Some(DlrrItem {
            ssrc: be32(d, 0),
            last_rr: be32(d, 4),
            delay_since_last_rr: be32(d, 8),
        })
    }
}

/// An extended report packet (RFC 3611).
#[derive(Debug, Clone, Copy)]
pub struct Xr<'a> {
    /// SSRC of the packet sender.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> Xr<'a> {
    /// Iterates the report blocks.
    pub fn blocks(&self) -> impl Iterator<Item = XrBlock<'a>> + use<'a> {
        let mut d = self.blocks;
        core::iter::from_fn(move || {
            if d.len() < 4 {
                return None;
            }
            let (bt, ts) = (d[0], d[1]);
            let len = 4 + 4 * be16(d, 2) as usize;
            let body = d.get(4..len)?;
            d = &d[len..];
            Some(match bt {
                4 if body.len() == 8 => XrBlock::ReceiverReferenceTime {
                    ntp_time: be64(body, 0),
                },
                5 => XrBlock::Dlrr(DlrrItems { data: body }),
                _ => XrBlock::Unknown {
                    block_type: bt,
                    type_specific: ts,
                    data: body,
                },
            })
        })
    }
}

/// One RTCP packet of a compound.
#[derive(Debug, Clone, Copy)]
pub enum RtcpPacket<'a> {
    /// Sender report.
    SenderReport(SenderReport<'a>),
    /// Receiver report.
    ReceiverReport(ReceiverReport<'a>),
    /// Source description.
    Sdes(Sdes<'a>),
    /// Goodbye.
    Bye(Bye<'a>),
    /// Application-defined.
    App(App<'a>),
    /// Generic NACK.
    Nack(Nack<'a>),
    /// Transport-wide CC feedback.
    TransportCc(TwccFeedback<'a>),
    /// Picture loss indication.
    Pli(Pli),
    /// Full intra request.
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate.
    Remb(Remb<'a>),
    /// Extended report.
    Xr(Xr<'a>),
    /// A packet this crate does not interpret.
    Unknown {
        /// Packet type.
        packet_type: u8,
        /// Count / FMT field.
        count: u8,
        /// Body after the 4-byte header, without padding.
        body: &'a [u8],
    },
}

/// Iterates the packets of a compound (or reduced-size) RTCP packet without allocating.
/// After the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> CompoundIter<'a> {
    /// Iterates `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        CompoundIter { buf, pos: 0 }
    }
}

impl<'a> Iterator for CompoundIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let r = parse_one(self.buf, self.pos);
        match r {
            Ok((p, next)) => {
                self.pos = next;
                Some(Ok(p))
            }
            Err(e) => {
                self.pos = self.buf.len();
                Some(Err(e))
            }
        }
    }
}

/// Parses every packet of `buf`, calling `f` on each; returns the number parsed.
pub fn parse_compound<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(RtcpPacket<'a>),
) -> Result<usize, RtcpError> {
    let mut n = 0;
    for p in CompoundIter::new(buf) {
        f(p?);
        n += 1;
    }
    if n == 0 {
        return Err(RtcpError::Truncated {
            field: "header",
            needed: 4,
            len: buf.len(),
        });
    }
    Ok(n)
}

/// Checks the RFC 3550 §6.1 compound rules: the first packet is SR or RR and only the last
/// packet is padded. (RFC 5506 reduced-size RTCP relaxes these; [`CompoundIter`] accepts both.)
pub fn validate_full_compound(buf: &[u8]) -> Result<(), RtcpError> {
    let mut pos = 0;
    let mut first = true;
    while pos < buf.len() {
        let (_, next) = parse_one(buf, pos)?;
        let pt = buf[pos + 1];
        if first && pt != PT_SR && pt != PT_RR {
            return Err(RtcpError::Malformed {
                offset: pos,
                packet_type: pt,
                reason: "compound does not start with SR or RR",
            });
        }
        if buf[pos] & 0x20 != 0 && next != buf.len() {
            return Err(RtcpError::Malformed {
                offset: pos,
                packet_type: pt,
                reason: "padding on a packet that is not last",
            });
        }
        first = false;
        pos = next;
    }
    if first {
        return Err(RtcpError::Truncated {
            field: "header",
            needed: 4,
            len: buf.len(),
        });
    }
    Ok(())
}

fn parse_one(buf: &[u8], off: usize) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    let len = buf.len();
    if off + 4 > len {
        return Err(RtcpError::Truncated {
            field: "header",
            needed: off + 4,
            len,
        });
    }
    let b0 = buf[off];
    if b0 >> 6 != 2 {
        return Err(RtcpError::BadVersion {
            offset: off,
            version: b0 >> 6,
        });
    }
    let count = b0 & 0x1F;
    let pt = buf[off + 1];
    let end = off + 4 * (be16(buf, off + 2) as usize + 1);
    if end > len {
        return Err(RtcpError::Truncated {
            field: "packet length",
            needed: end,
            len,
        });
    }
    let mut body_end = end;
    if b0 & 0x20 != 0 {
        let p = buf[end - 1] as usize;
        if p == 0 || p > end - off - 4 {
            return Err(RtcpError::Malformed {
                offset: end - 1,
                packet_type: pt,
                reason: "bad padding count",
            });
        }
        body_end = end - p;
    }
    let b = off + 4;
    let body = &buf[b..body_end];
    let bl = body.len();
    let mal = |o: usize, reason| RtcpError::Malformed {
        offset: b + o,
        packet_type: pt,
        reason,
    };
    let need = |n: usize, field| {
        if bl < n {
            Err(RtcpError::Truncated {
                field,
                needed: b + n,
                len: body_end,
            })
        } else {
            Ok(())
        }
    };
    let p = match pt {
        PT_SR => {
            need(24 + 24 * count as usize, "sender report")?;
            let rb = 24 + 24 * count as usize;
            RtcpPacket::SenderReport(SenderReport {
                info: SenderInfo {
                    ssrc: be32(body, 0),
                    ntp_time: be64(body, 4),
                    rtp_time: be32(body, 12),
                    packet_count: be32(body, 16),
                    octet_count: be32(body, 20),
                },
                reports: ReportBlocks {
                    data: &body[24..rb],
                },
                extension: &body[rb..],
            })
        }
        PT_RR => {
            let rb = 4 + 24 * count as usize;
            need(rb, "receiver report")?;
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: be32(body, 0),
                reports: ReportBlocks { data: &body[4..rb] },
                extension: &body[rb..],
            })
        }
        PT_SDES => {
            let mut pos = 0;
            for _ in 0..count {
                if pos + 4 > bl {
                    return Err(mal(pos, "SDES chunk truncated"));
                }
                let e =
                    sdes_items_end(body, pos + 4).ok_or(mal(pos, "SDES items overrun packet"))?;
                pos = (e + 1).div_ceil(4) * 4;
                if pos > bl {
                    return Err(mal(e, "SDES chunk padding overruns packet"));
                }
            }
            RtcpPacket::Sdes(Sdes { count, body })
        }
        PT_BYE => {
            let n = 4 * count as usize;
            need(n, "BYE SSRC list")?;
            let reason = if bl > n {
                let l = body[n] as usize;
                Some(
                    body.get(n + 1..n + 1 + l)
                        .ok_or(mal(n, "BYE reason overruns packet"))?,
                )
            } else {
                None
            };
            RtcpPacket::Bye(Bye {
                ssrcs: &body[..n],
                reason,
            })
        }
        PT_APP => {
            need(8, "APP header")?;
            RtcpPacket::App(App {
                subtype: count,
                ssrc: be32(body, 0),
                name: [body[4], body[5], body[6], body[7]],
                data: &body[8..],
            })
        }
        PT_RTPFB | PT_PSFB => {
            need(8, "feedback SSRCs")?;
            let sender_ssrc = be32(body, 0);
            let media_ssrc = be32(body, 4);
            let fci = &body[8..];
            match (pt, count) {
                (PT_RTPFB, 1) => {
                    if fci.len() % 4 != 0 {
                        return Err(mal(8, "NACK FCI not a multiple of 4"));
                    }
                    RtcpPacket::Nack(Nack {
                        sender_ssrc,
                        media_ssrc,
                        fci,
                    })
                }
                (PT_RTPFB, 15) => {
                    need(16, "transport-cc header")?;
                    let (chunks, deltas) =
                        TwccFeedback::validate(&body[16..], be16(body, 10), b + 16)?;
                    let rt = (u32::from(body[12]) << 16)
                        | (u32::from(body[13]) << 8)
                        | u32::from(body[14]);
                    RtcpPacket::TransportCc(TwccFeedback {
                        sender_ssrc,
                        media_ssrc,
                        base_seq: be16(body, 8),
                        status_count: be16(body, 10),
                        reference_time: ((rt << 8) as i32) >> 8,
                        fb_pkt_count: body[15],
                        chunks,
                        deltas,
                    })
                }
                (PT_PSFB, 1) => RtcpPacket::Pli(Pli {
                    sender_ssrc,
                    media_ssrc,
                }),
                (PT_PSFB, 4) => {
                    if fci.len() % 8 != 0 {
                        return Err(mal(8, "FIR FCI not a multiple of 8"));
                    }
                    RtcpPacket::Fir(Fir {
                        sender_ssrc,
                        media_ssrc,
                        fci,
                    })
                }
                (PT_PSFB, 15) if fci.starts_with(b"REMB") => {
                    if fci.len() < 8 {
                        return Err(mal(8, "REMB truncated"));
                    }
                    let n = fci[4] as usize;
                    let exp = fci[5] >> 2;
                    let mantissa = (u64::from(fci[5] & 0x03) << 16)
                        | (u64::from(fci[6]) << 8)
                        | u64::from(fci[7]);
                    let ssrcs = fci
                        .get(8..8 + 4 * n)
                        .ok_or(mal(12, "REMB SSRC list overruns packet"))?;
                    RtcpPacket::Remb(Remb {
                        sender_ssrc,
                        bitrate: mantissa << exp,
                        ssrcs,
                    })
                }
                _ => RtcpPacket::Unknown {
                    packet_type: pt,
                    count,
                    body,
                },
            }
        }
        PT_XR => {
            need(4, "XR SSRC")?;
            let mut pos = 4;
            while pos < bl {
                if pos + 4 > bl {
                    return Err(mal(pos, "XR block header truncated"));
                }
                let l = 4 + 4 * be16(body, pos + 2) as usize;
                if pos + l > bl {
                    return Err(mal(pos, "XR block overruns packet"));
                }
                if body[pos] == 4 && l != 12 {
                    return Err(mal(pos, "RRTR block must be 2 words"));
                }
                if body[pos] == 5 && (l - 4) % 12 != 0 {
                    return Err(mal(pos, "DLRR block not a multiple of 3 words"));
                }
                pos += l;
            }
            RtcpPacket::Xr(Xr {
                ssrc: be32(body, 0),
                blocks: &body[4..],
            })
        }
        _ => RtcpPacket::Unknown {
            packet_type: pt,
            count,
            body,
        },
    };
    Ok((p, end))
}

/// An XR block to write.
#[derive(Debug, Clone, Copy)]
pub enum XrBlockOut<'a> {
    /// Receiver reference time.
    ReceiverReferenceTime {
        /// NTP timestamp.
        ntp_time: u64,
    },
    /// DLRR.
    Dlrr(&'a [DlrrItem]),
}

/// Appends RTCP packets to a caller-provided buffer (a compound packet). No allocation.
#[derive(Debug)]
pub struct RtcpWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> RtcpWriter<'b> {
    /// A writer appending to the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        RtcpWriter { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Reserves a packet of `body_len` bytes (a multiple of 4) and writes its header.
    fn begin(&mut self, count: usize, pt: u8, body_len: usize) -> Result<&mut [u8], RtcpError> {
        debug_assert!(body_len % 4 == 0);
        if count > 31 {
            return Err(RtcpError::InvalidValue { field: "count" });
        }
        let total = self.len + 4 + body_len;
        if total > self.buf.len() {
            return Err(RtcpError::BufferTooSmall {
                needed: total,
                available: self.buf.len(),
            });
        }
        let words = body_len / 4;
        if words > 0xFFFF {
            return Err(RtcpError::InvalidValue { field: "length" });
        }
        let p = &mut self.buf[self.len..total];
        p[0] = 0x80 | count as u8;
        p[1] = pt;
        p[2..4].copy_from_slice(&(words as u16).to_be_bytes());
        p[4..].fill(0);
        self.len = total;
        Ok(&mut p[4..])
    }

    /// Appends a sender report.
    pub fn sender_report(
        &mut self,
        info: &SenderInfo,
        reports: &[ReportBlock],
    ) -> Result<(), RtcpError> {
        let b = self.begin(reports.len(), PT_SR, 24 + 24 * reports.len())?;
        b[0..4].copy_from_slice(&info.ssrc.to_be_bytes());
        b[4..12].copy_from_slice(&info.ntp_time.to_be_bytes());
        b[12..16].copy_from_slice(&info.rtp_time.to_be_bytes());
        b[16..20].copy_from_slice(&info.packet_count.to_be_bytes());
        b[20..24].copy_from_slice(&info.octet_count.to_be_bytes());
        for (i, r) in reports.iter().enumerate() {
            r.write(&mut b[24 + 24 * i..]);
        }
        Ok(())
    }

    /// Appends a receiver report.
    pub fn receiver_report(&mut self, ssrc: u32, reports: &[ReportBlock]) -> Result<(), RtcpError> {
        let b = self.begin(reports.len(), PT_RR, 4 + 24 * reports.len())?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        for (i, r) in reports.iter().enumerate() {
            r.write(&mut b[4 + 24 * i..]);
        }
        Ok(())
    }

    /// Appends an SDES packet; each chunk is `(ssrc, items)` with items `(type, value)`.
    pub fn sdes(&mut self, chunks: &[(u32, &[SdesItem<'_>])]) -> Result<(), RtcpError> {
        let mut body = 0;
        for (_, items) in chunks {
            let mut l = 4;
            for it in *items {
                if it.kind == 0 || it.value.len() > 255 {
                    return Err(RtcpError::InvalidValue { field: "SDES item" });
                }
                l += 2 + it.value.len();
            }
            body += (l + 1).div_ceil(4) * 4;
        }
        let b = self.begin(chunks.len(), PT_SDES, body)?;
        let mut pos = 0;
        for (ssrc, items) in chunks {
            b[pos..pos + 4].copy_from_slice(&ssrc.to_be_bytes());
            pos += 4;
            for it in *items {
                b[pos] = it.kind;
                b[pos + 1] = it.value.len() as u8;
                b[pos + 2..pos + 2 + it.value.len()].copy_from_slice(it.value);
                pos += 2 + it.value.len();
            }
            pos = (pos + 1).div_ceil(4) * 4;
        }
        Ok(())
    }

    /// Appends a BYE.
    pub fn bye(&mut self, ssrcs: &[u32], reason: Option<&[u8]>) -> Result<(), RtcpError> {
        let r = reason.map_or(0, |r| (1 + r.len()).div_ceil(4) * 4);
        if reason.is_some_and(|r| r.len() > 255) {
            return Err(RtcpError::InvalidValue {
                field: "BYE reason",
            });
        }
        let b = self.begin(ssrcs.len(), PT_BYE, 4 * ssrcs.len() + r)?;
        for (i, s) in ssrcs.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&s.to_be_bytes());
        }
        if let Some(reason) = reason {
            let o = 4 * ssrcs.len();
            b[o] = reason.len() as u8;
            b[o + 1..o + 1 + reason.len()].copy_from_slice(reason);
        }
        Ok(())
    }

    /// Appends an APP packet (`data` must be a multiple of 4 bytes).
    pub fn app(&mut self, app: &App<'_>) -> Result<(), RtcpError> {
        if app.data.len() % 4 != 0 {
            return Err(RtcpError::InvalidValue {
                field: "APP data length",
            });
        }
        let b = self.begin(usize::from(app.subtype), PT_APP, 8 + app.data.len())?;
        b[0..4].copy_from_slice(&app.ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&app.name);
        b[8..].copy_from_slice(app.data);
        Ok(())
    }

    fn feedback(
        &mut self,
        pt: u8,
        fmt: u8,
        sender: u32,
        media: u32,
        fci_len: usize,
    ) -> Result<&mut [u8], RtcpError> {
        let b = self.begin(usize::from(fmt), pt, 8 + fci_len)?;
        b[0..4].copy_from_slice(&sender.to_be_bytes());
        b[4..8].copy_from_slice(&media.to_be_bytes());
        Ok(&mut b[8..])
    }

    /// Appends a generic NACK.
    pub fn nack(
        &mut self,
        sender_ssrc: u32,
        media_ssrc: u32,
        pairs: &[NackPair],
    ) -> Result<(), RtcpError> {
        let f = self.feedback(PT_RTPFB, 1, sender_ssrc, media_ssrc, 4 * pairs.len())?;
        for (i, p) in pairs.iter().enumerate() {
            f[4 * i..4 * i + 2].copy_from_slice(&p.pid.to_be_bytes());
            f[4 * i + 2..4 * i + 4].copy_from_slice(&p.blp.to_be_bytes());
        }
        Ok(())
    }

    /// Appends a PLI.
    pub fn pli(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Result<(), RtcpError> {
        self.feedback(PT_PSFB, 1, sender_ssrc, media_ssrc, 0)
            .map(|_| ())
    }

    /// Appends a FIR.
    pub fn fir(&mut self, sender_ssrc: u32, entries: &[FirEntry]) -> Result<(), RtcpError> {
        let f = self.feedback(PT_PSFB, 4, sender_ssrc, 0, 8 * entries.len())?;
        for (i, e) in entries.iter().enumerate() {
            f[8 * i..8 * i + 4].copy_from_slice(&e.ssrc.to_be_bytes());
            f[8 * i + 4] = e.seq_nr;
        }
        Ok(())
    }

    /// Appends a REMB. The bitrate is rounded down to what 18 bits of mantissa can express.
    pub fn remb(&mut self, sender_ssrc: u32, bitrate: u64, ssrcs: &[u32]) -> Result<(), RtcpError> {
        if ssrcs.len() > 255 {
            return Err(RtcpError::InvalidValue {
                field: "REMB SSRC count",
            });
        }
        let mut exp = 0u32;
        while bitrate >> exp >= 1 << 18 {
            exp += 1;
        }
        if exp > 63 {
            return Err(RtcpError::InvalidValue {
                field: "REMB bitrate",
            });
        }
        let m = (bitrate >> exp) as u32;
        let f = self.feedback(PT_PSFB, 15, sender_ssrc, 0, 8 + 4 * ssrcs.len())?;
        f[0..4].copy_from_slice(b"REMB");
        f[4] = ssrcs.len() as u8;
        f[5] = ((exp as u8) << 2) | ((m >> 16) as u8 & 0x03);
        f[6] = (m >> 8) as u8;
        f[7] = m as u8;
        for (i, s) in ssrcs.iter().enumerate() {
            f[8 + 4 * i..12 + 4 * i].copy_from_slice(&s.to_be_bytes());
        }
        Ok(())
    }

    /// Appends transport-wide CC feedback. `deltas[i]` is the receive delta (250 µs ticks) of
    /// packet `base_seq + i`, or `None` if it was not received. Chunks are chosen greedily in
    /// one pass (libwebrtc-style): statuses accumulate in a chunk of up to 14 pending symbols
    /// that becomes a run-length chunk while they are all equal, else a 1-bit (14 statuses) or
    /// 2-bit (7 statuses) vector. Deltas are written straight into `buf`.
    pub fn transport_cc(
        &mut self,
        hdr: &TwccHeader,
        deltas: &[Option<i16>],
    ) -> Result<(), RtcpError> {
        let n = deltas.len();
        if n > 0xFFFF {
            return Err(RtcpError::InvalidValue {
                field: "TWCC status count",
            });
        }
        let cap = self.buf.len();
        let slots = twcc_chunk_slots(n);
        let worst = twcc_worst_end(self.len, n);
        let (slots, end) = if worst <= cap {
            (slots, worst)
        } else {
            // Exact size, to report a precise error or to fit a tight buffer.
            let mut chooser = ChunkChooser::default();
            let mut chunks = 0;
            let mut count = |_| chunks += 1;
            let mut delta_bytes = 0;
            for group in deltas.chunks(16) {
                let mut g = 0;
                for d in group {
                    let s = twcc_symbol(*d);
                    delta_bytes += s as usize;
                    g = (g << 2) | u32::from(s);
                }
                chooser.push_group(g, group.len() as u32, &mut count);
            }
            chooser.finish(&mut count);
            let end = self.len + (20 + 2 * chunks + delta_bytes).div_ceil(4) * 4;
            if end > cap {
                return Err(RtcpError::BufferTooSmall {
                    needed: end,
                    available: cap,
                });
            }
            (chunks, end)
        };
        self.twcc_builder_at(hdr, n, slots, end)?
            .write(deltas.iter().copied())
            .map(|_| ())
    }

    /// Appends an already encoded TWCC feedback (e.g. one parsed from another compound, to
    /// forward it) as is: header fields, status chunks and deltas are copied, not re-encoded.
    pub fn transport_cc_copy(&mut self, fb: &TwccFeedback<'_>) -> Result<(), RtcpError> {
        let (nc, nd) = (fb.chunks.len(), fb.deltas.len());
        let body = (8 + nc + nd).div_ceil(4) * 4;
        let f = self.feedback(PT_RTPFB, 15, fb.sender_ssrc, fb.media_ssrc, body)?;
        f[0..2].copy_from_slice(&fb.base_seq.to_be_bytes());
        f[2..4].copy_from_slice(&fb.status_count.to_be_bytes());
        f[4..7].copy_from_slice(&(fb.reference_time as u32).to_be_bytes()[1..]);
        f[7] = fb.fb_pkt_count;
        f[8..8 + nc].copy_from_slice(fb.chunks);
        f[8 + nc..8 + nc + nd].copy_from_slice(fb.deltas);
        Ok(())
    }

    /// The most TWCC statuses (at most `want`) whose worst-case encoding fits in the space
    /// left in the buffer.
    pub(crate) fn twcc_fit(&self, want: usize) -> usize {
        let room = self.buf.len().saturating_sub(self.len);
        // worst = 20 + 2 * (n / 7 + 1) + 2 * n + 3 bytes
        let Some(r) = room.checked_sub(25) else {
            return 0;
        };
        let mut n = r * 7 / 16;
        while n < want && twcc_worst_end(0, n + 1) <= room {
            n += 1;
        }
        n.min(want)
    }

    /// Starts a TWCC feedback packet of at most `max_statuses` statuses, pushed one by one.
    pub(crate) fn twcc_builder<'w>(
        &'w mut self,
        hdr: &TwccHeader,
        max_statuses: usize,
    ) -> Result<TwccBuilder<'w, 'b>, RtcpError> {
        let end = twcc_worst_end(self.len, max_statuses);
        self.twcc_builder_at(hdr, max_statuses, twcc_chunk_slots(max_statuses), end)
    }

    /// Starts a TWCC packet whose deltas go after `slots` chunk slots and which needs the
    /// buffer up to `end`.
    fn twcc_builder_at<'w>(
        &'w mut self,
        hdr: &TwccHeader,
        max: usize,
        slots: usize,
        end: usize,
    ) -> Result<TwccBuilder<'w, 'b>, RtcpError> {
        if max > 0xFFFF {
            return Err(RtcpError::InvalidValue {
                field: "TWCC status count",
            });
        }
        if !(-(1 << 23)..(1 << 23)).contains(&hdr.reference_time) {
            return Err(RtcpError::InvalidValue {
                field: "TWCC reference time",
            });
        }
        if end > self.buf.len() {
            return Err(RtcpError::BufferTooSmall {
                needed: end,
                available: self.buf.len(),
            });
        }
        let start = self.len;
        let cpos = start + 20;
        let dstart = cpos + 2 * slots;
        Ok(TwccBuilder {
            hdr: *hdr,
            w: self,
            start,
            cpos,
            dstart,
            max,
        })
    }

    /// Appends an extended report.
    pub fn xr(&mut self, ssrc: u32, blocks: &[XrBlockOut<'_>]) -> Result<(), RtcpError> {
        let mut body = 4;
        for blk in blocks {
            body += match blk {
                XrBlockOut::ReceiverReferenceTime { .. } => 12,
                XrBlockOut::Dlrr(items) => 4 + 12 * items.len(),
            };
        }
        let b = self.begin(0, PT_XR, body)?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        let mut pos = 4;
        for blk in blocks {
            match blk {
                XrBlockOut::ReceiverReferenceTime { ntp_time } => {
                    b[pos..pos + 4].copy_from_slice(&[4, 0, 0, 2]);
                    b[pos + 4..pos + 12].copy_from_slice(&ntp_time.to_be_bytes());
                    pos += 12;
                }
                XrBlockOut::Dlrr(items) => {
                    if items.len() * 3 > 0xFFFF {
                        return Err(RtcpError::InvalidValue {
                            field: "DLRR length",
                        });
                    }
                    b[pos] = 5;
                    b[pos + 2..pos + 4].copy_from_slice(&((items.len() * 3) as u16).to_be_bytes());
                    pos += 4;
                    for it in *items {
                        b[pos..pos + 4].copy_from_slice(&it.ssrc.to_be_bytes());
                        b[pos + 4..pos + 8].copy_from_slice(&it.last_rr.to_be_bytes());
                        b[pos + 8..pos + 12].copy_from_slice(&it.delay_since_last_rr.to_be_bytes());
                        pos += 12;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Fixed fields of a transport-wide CC feedback packet to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TwccHeader {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
    /// First transport sequence number reported.
    pub base_seq: u16,
    /// Reference time in 64 ms units (24-bit signed).
    pub reference_time: i32,
    /// Feedback packet counter.
    pub fb_pkt_count: u8,
}

#[inline]
fn twcc_symbol(d: Option<i16>) -> u8 {
    match d {
        None => 0,
        Some(v) if (0..=255).contains(&v) => 1,
        Some(_) => 2,
    }
}

/// Chunk slots reserved for `n` statuses: every chunk but the last carries at least 7.
fn twcc_chunk_slots(n: usize) -> usize {
    n / 7 + 1
}

/// End of a TWCC packet starting at `start` with `n` statuses, all large deltas, in the
/// reserved layout (header, chunk slots, deltas, padding).
fn twcc_worst_end(start: usize, n: usize) -> usize {
    start + 20 + 2 * twcc_chunk_slots(n) + 2 * n + 3
}

/// Writes one TWCC feedback packet: chunks go right after the header, deltas into a region
/// after the worst-case chunk area and are moved down once at the end.
#[derive(Debug)]
pub(crate) struct TwccBuilder<'w, 'b> {
    w: &'w mut RtcpWriter<'b>,
    hdr: TwccHeader,
    start: usize,
    cpos: usize,
    dstart: usize,
    max: usize,
}

impl TwccBuilder<'_, '_> {
    /// Encodes the statuses (`None` = lost, at most the builder's maximum; the iterator is not
    /// advanced beyond it) in one pass and completes the packet. Returns the status count.
    #[inline(always)]
    pub(crate) fn write(
        self,
        statuses: impl Iterator<Item = Option<i16>>,
    ) -> Result<usize, RtcpError> {
        let end = twcc_worst_end(self.start, self.max).min(self.w.buf.len());
        let (head, delta_area) = self.w.buf[..end].split_at_mut(self.dstart);
        let (chunk_bytes, dlen, count) =
            encode_statuses(&mut head[self.cpos..], delta_area, self.max, statuses);
        let cpos = self.cpos + chunk_bytes;
        let buf = &mut *self.w.buf;
        let dpos = self.dstart + dlen;
        let start = self.start;
        buf.copy_within(self.dstart..dpos, cpos);
        let pos = cpos + (dpos - self.dstart);
        let end = start + (pos - start).div_ceil(4) * 4;
        buf[pos..end].fill(0);
        let words = (end - start) / 4 - 1;
        if words > 0xFFFF {
            return Err(RtcpError::InvalidValue { field: "length" });
        }
        let hdr = &self.hdr;
        let h = &mut buf[start..start + 20];
        h[0] = 0x80 | 15;
        h[1] = PT_RTPFB;
        h[2..4].copy_from_slice(&(words as u16).to_be_bytes());
        h[4..8].copy_from_slice(&hdr.sender_ssrc.to_be_bytes());
        h[8..12].copy_from_slice(&hdr.media_ssrc.to_be_bytes());
        h[12..14].copy_from_slice(&hdr.base_seq.to_be_bytes());
        h[14..16].copy_from_slice(&(count as u16).to_be_bytes());
        h[16..19].copy_from_slice(&(hdr.reference_time as u32).to_be_bytes()[1..]);
        h[19] = hdr.fb_pkt_count;
        self.w.len = end;
        Ok(count)
    }
}

/// Fuzzing entry point: parses a compound and walks every nested iterator. Never panics.
#[doc(hidden)]
pub fn fuzz_rtcp_compound(data: &[u8]) -> usize {
    let mut n = 0;
    for p in CompoundIter::new(data) {
        let Ok(p) = p else { break };
        n += match p {
            RtcpPacket::SenderReport(sr) => sr.reports.count(),
            RtcpPacket::ReceiverReport(rr) => rr.reports.count(),
            RtcpPacket::Sdes(s) => s.chunks().map(|c| c.items().count()).sum(),
            RtcpPacket::Bye(b) => b.ssrcs().count(),
            RtcpPacket::Nack(x) => x.pairs().flat_map(|p| p.lost()).count(),
            RtcpPacket::TransportCc(t) => {
                let c = t.statuses().count();
                assert_eq!(
                    c, t.status_count as usize,
                    "validated feedback yields every status"
                );
                c
            }
            RtcpPacket::Fir(f) => f.entries().count(),
            RtcpPacket::Remb(r) => r.ssrcs().count(),
            RtcpPacket::Xr(x) => x.blocks().count(),
            _ => 1,
        };
    }
    let _ = validate_full_compound(data);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twcc_roundtrip_all_chunk_kinds() {
        let mut deltas: Vec<Option<i16>> = Vec::new();
        deltas.extend(std::iter::repeat_n(Some(4), 20)); // run-length of small deltas
        deltas.extend([Some(1), None, Some(2), None, Some(3), None, Some(1), None]); // 1-bit vector
        deltas.extend([Some(-5), None, Some(1000), Some(3)]); // 2-bit vector, large deltas
        deltas.extend(std::iter::repeat_n(None, 30)); // run of losses
        deltas.push(Some(7));
        let hdr = TwccHeader {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_seq: 65530,
            reference_time: -3,
            fb_pkt_count: 9,
        };
        let mut buf = [0u8; 256];
        let mut w = RtcpWriter::new(&mut buf);
        w.transport_cc(&hdr, &deltas).unwrap();
        let n = w.len();
        let mut it = CompoundIter::new(&buf[..n]);
        let Some(Ok(RtcpPacket::TransportCc(t))) = it.next() else {
            panic!("not twcc")
        };
        assert_eq!(t.reference_time, -3);
        let got: Vec<_> = t.statuses().collect();
        assert_eq!(got.len(), deltas.len());
        for (i, (g, d)) in got.iter().zip(&deltas).enumerate() {
            assert_eq!(g.seq, 65530u16.wrapping_add(i as u16));
            assert_eq!(g.delta, *d);
        }
        assert!(it.next().is_none());
        // A buffer of exactly the right size takes the exact-size path: same bytes.
        let mut tight = vec![0u8; n];
        let mut w = RtcpWriter::new(&mut tight);
        w.transport_cc(&hdr, &deltas).unwrap();
        assert_eq!(w.as_bytes(), &buf[..n]);
        let mut short = vec![0u8; n - 1];
        assert_eq!(
            RtcpWriter::new(&mut short).transport_cc(&hdr, &deltas),
            Err(RtcpError::BufferTooSmall {
                needed: n,
                available: n - 1
            })
        );
    }

    #[test]
    fn twcc_copy_reproduces_the_parsed_packet() {
        let deltas: Vec<Option<i16>> = (0..100)
            .map(|i| match i % 11 {
                0 => None,
                5 => Some(-300),
                k => Some(k * 20),
            })
            .collect();
        let hdr = TwccHeader {
            sender_ssrc: 7,
            media_ssrc: 8,
            base_seq: 40_000,
            reference_time: 0x7F_FFFF,
            fb_pkt_count: 200,
        };
        let mut buf = [0u8; 600];
        let mut w = RtcpWriter::new(&mut buf);
        w.transport_cc(&hdr, &deltas).unwrap();
        let n = w.len();
        let Some(Ok(RtcpPacket::TransportCc(t))) = CompoundIter::new(&buf[..n]).next() else {
            panic!("not twcc")
        };
        let mut copy = [0u8; 600];
        let mut w = RtcpWriter::new(&mut copy);
        w.transport_cc_copy(&t).unwrap();
        assert_eq!(w.as_bytes(), &buf[..n]);
        let mut short = [0u8; 40];
        assert!(matches!(
            RtcpWriter::new(&mut short).transport_cc_copy(&t),
            Err(RtcpError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn too_many_report_blocks_is_an_error_not_a_wrapped_count() {
        let mut buf = vec![0u8; 10_000];
        let blocks = vec![ReportBlock::default(); 257];
        assert_eq!(
            RtcpWriter::new(&mut buf).receiver_report(1, &blocks),
            Err(RtcpError::InvalidValue { field: "count" })
        );
    }

    #[test]
    fn nack_pack_and_expand() {
        let seqs = [65534u16, 65535, 3, 20, 40];
        let mut pairs = Vec::new();
        NackPair::pack(seqs, |p| pairs.push(p));
        let back: Vec<u16> = pairs.iter().flat_map(|p| p.lost()).collect();
        assert_eq!(back, seqs);
        assert_eq!(pairs.len(), 3);
    }

    #[test]
    fn truncated_and_bad_version() {
        assert!(matches!(
            CompoundIter::new(&[0x80, 200, 0, 6]).next(),
            Some(Err(RtcpError::Truncated { .. }))
        ));
        assert!(matches!(
            CompoundIter::new(&[0x40, 200, 0, 0]).next(),
            Some(Err(RtcpError::BadVersion {
                offset: 0,
                version: 1
            }))
        ));
    }
}

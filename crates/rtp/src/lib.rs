//! tympan-rtp: RTP/RTCP packets, header extensions, TWCC, NACK/RTX and SRTP, sans-IO.
//!
//! Every media packet of the SFU passes through this crate, so it parses in place, rewrites in
//! place and does not allocate per packet. It never reads the clock: time-driven parts take an
//! `Instant` from the caller.
//!
//! - [`rtp`]: zero-copy [`rtp::RtpPacket`] / [`rtp::RtpPacketMut`] views (RFC 3550, RFC 8285
//!   one-/two-byte extensions) and [`rtp::RtpWriter`].
//! - [`extensions`]: the SDP `a=extmap` table ([`extensions::ExtensionMap`]) and typed values.
//! - [`codecs`]: VP8/VP9/H.264/AV1 descriptors and keyframe detection (Opus needs none).
//! - [`seq`]: sequence number and timestamp unwrapping; [`rewriter`]: forwarding onto one
//!   continuous outgoing SSRC/sequence/timestamp space across source switches.
//! - [`rtcp`]: compound/reduced-size parsing ([`rtcp::CompoundIter`]) and building
//!   ([`rtcp::RtcpWriter`]) of SR, RR, SDES, BYE, APP, NACK, PLI, FIR, REMB, TWCC and XR.
//! - [`stats`]: RFC 3550 receiver statistics, jitter, LSR/DLSR and RTT.
//! - [`twcc`]: transport-wide CC receiver (feedback builder) and sender (per-packet results).
//! - [`nack`]: NACK generator and RTX (RFC 4588) packet history.
//! - [`srtp`]: SRTP/SRTCP protection.
//!
//! # Example: forward a packet and answer with RTCP
//!
//! ```
//! use std::time::Instant;
//! use tympan_rtp::extensions::{ExtensionMap, URI_TRANSPORT_CC};
//! use tympan_rtp::rewriter::{ForwardRewriter, Rewrite, RewriterConfig};
//! use tympan_rtp::rtcp::{CompoundIter, RtcpPacket, RtcpWriter};
//! use tympan_rtp::rtp::{RtpPacketMut, RtpWriter};
//! use tympan_rtp::twcc::TwccReceiver;
//!
//! // A packet as it would arrive from the network (here built with RtpWriter).
//! let exts: [(u8, &[u8]); 1] = [(3, &[0x00, 0x2a])];
//! let mut buf = [0u8; 1500];
//! let len = RtpWriter { extensions: &exts, ..RtpWriter::new(96, 1000, 90_000, 0x1111, b"media") }
//!     .write(&mut buf)?;
//!
//! // From SDP: a=extmap:3 <transport-wide-cc URI>
//! let mut map = ExtensionMap::new();
//! map.insert_uri(3, URI_TRANSPORT_CC);
//!
//! let now = Instant::now(); // in a real program: the time the datagram was received
//! let mut twcc = TwccReceiver::new(0xAAAA, 0x1111, 1024);
//! let mut rewriter = ForwardRewriter::new(RewriterConfig {
//!     ssrc: 0x2222, clock_rate: 90_000, initial_sequence: 1, initial_timestamp: 0,
//! });
//!
//! let mut packet = RtpPacketMut::parse(&mut buf[..len])?;
//! if let Some(seq) = map.transport_cc(&packet.as_packet()) {
//!     twcc.on_packet(seq, now);
//! }
//! let Rewrite::Forward { sequence_number, .. } = rewriter.rewrite(&mut packet, now) else {
//!     unreachable!("the first packet is always forwarded")
//! };
//! assert_eq!((packet.ssrc(), sequence_number, packet.payload()), (0x2222, 1, &b"media"[..]));
//!
//! // Later, at the caller's feedback cadence: build TWCC feedback into a datagram buffer.
//! let mut out = [0u8; 1500];
//! let mut rtcp = RtcpWriter::new(&mut out);
//! twcc.build_feedback(&mut rtcp)?;
//! let n = rtcp.len();
//! for p in CompoundIter::new(&out[..n]) {
//!     if let RtcpPacket::TransportCc(fb) = p? {
//!         assert_eq!(fb.statuses().count(), 1);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod codecs;
pub mod extensions;
pub mod nack;
pub mod rewriter;
pub mod rtcp;
pub mod rtp;
pub mod seq;
pub mod srtp;
pub mod stats;
pub mod twcc;
mod twcc_chunks;

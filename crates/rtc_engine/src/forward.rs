//! The forwarding rewrite: one publisher packet turned into one subscriber packet, in a
//! reusable scratch buffer, without allocating.
//!
//! Per subscription a [`Forwarder`] holds the payload-type map (publisher PT -> subscriber PT
//! for the same codec), the header-extension id map (publisher id -> subscriber id for the
//! same URI; everything the subscriber did not negotiate, and `mid`/`rid`/`repaired-rid`,
//! is blanked into RFC 8285 padding), the SSRC/sequence/timestamp rewriter and the keyframe
//! gate of a new video subscription.

use std::time::Instant;

use tympan_rtp::codecs::Codec;
use tympan_rtp::extensions::{ExtensionKind, ExtensionMap};
use tympan_rtp::rewriter::{ForwardRewriter, Rewrite, RewriterConfig};
use tympan_rtp::rtp::{RtpLayout, RtpPacketMut};

use crate::peer::CodecInfo;

/// Most codecs a payload-type map holds (more are ignored).
const MAX_CODECS: usize = 16;

/// Publisher payload type -> (subscriber payload type, codec) for the same codec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PtMap {
    entries: [(u8, u8, Option<Codec>); MAX_CODECS],
    len: usize,
}

/// The payload helpers' codec for an SDP encoding name.
pub(crate) fn codec_of(name: &str) -> Option<Codec> {
    Some(match name.to_ascii_lowercase().as_str() {
        "opus" => Codec::Opus,
        "vp8" => Codec::Vp8,
        "vp9" => Codec::Vp9,
        "h264" => Codec::H264,
        "av1" | "av1x" => Codec::Av1,
        _ => return None,
    })
}

/// The value of `key` in an fmtp string (`a=1;b=2`).
fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
    })
}

/// Whether a publisher codec can be forwarded as a subscriber codec unchanged.
fn compatible(a: &CodecInfo, b: &CodecInfo) -> bool {
    if !a.name.eq_ignore_ascii_case(&b.name) || a.clock_rate != b.clock_rate {
        return false;
    }
    if a.name.eq_ignore_ascii_case("h264") {
        let mode = |c: &CodecInfo| fmtp_param(&c.fmtp, "packetization-mode").unwrap_or("0") == "0";
        // profile_idc + profile-iop (first 4 hex digits) must agree; the level may differ.
        let profile = |c: &CodecInfo| {
            fmtp_param(&c.fmtp, "profile-level-id")
                .and_then(|p| p.get(..4))
                .map(|p| p.to_ascii_lowercase())
                .unwrap_or_else(|| "4200".to_owned())
        };
        return mode(a) == mode(b) && profile(a) == profile(b);
    }
    if a.name.eq_ignore_ascii_case("vp9") {
        let prof = |c: &CodecInfo| fmtp_param(&c.fmtp, "profile-id").unwrap_or("0").to_owned();
        return prof(a) == prof(b);
    }
    true
}

impl PtMap {
    /// Maps every publisher codec to the first compatible subscriber codec.
    pub(crate) fn build(publisher: &[CodecInfo], subscriber: &[CodecInfo]) -> Self {
        let mut map = PtMap::default();
        for p in publisher {
            if map.len == MAX_CODECS {
                break;
            }
            if let Some(s) = subscriber.iter().find(|s| compatible(p, s)) {
                map.entries[map.len] = (p.payload_type, s.payload_type, codec_of(&p.name));
                map.len += 1;
            }
        }
        map
    }

    /// The subscriber payload type and codec for a publisher payload type.
    pub(crate) fn get(&self, pt: u8) -> Option<(u8, Option<Codec>)> {
        self.entries[..self.len]
            .iter()
            .find(|e| e.0 == pt)
            .map(|e| (e.1, e.2))
    }

    /// True when no codec is shared.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Publisher extension id -> subscriber extension id (0 = blank the element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtIdMap {
    to: [u8; 256],
}

impl Default for ExtIdMap {
    fn default() -> Self {
        ExtIdMap { to: [0; 256] }
    }
}

impl ExtIdMap {
    /// The map between two negotiated extension tables.
    pub(crate) fn build(publisher: &ExtensionMap, subscriber: &ExtensionMap) -> Self {
        let mut map = ExtIdMap::default();
        for kind in ExtensionKind::ALL {
            if matches!(
                kind,
                ExtensionKind::Mid | ExtensionKind::Rid | ExtensionKind::RepairedRid
            ) {
                continue;
            }
            if let (Some(from), Some(to)) = (publisher.id(kind), subscriber.id(kind)) {
                map.to[from as usize] = to;
            }
        }
        map
    }

    /// Rewrites the ids of the extension block of `packet` in place. Elements without a
    /// subscriber id (or whose id does not fit the block's form) become padding bytes.
    pub(crate) fn apply(&self, packet: &mut [u8], layout: &RtpLayout) {
        let Some((profile, start, end)) = layout.extension else {
            return;
        };
        let end = end.min(packet.len());
        let one_byte = profile == 0xBEDE;
        let two_byte = profile & 0xFFF0 == 0x1000;
        let mut pos = start;
        while pos < end {
            let b = packet[pos];
            if b == 0 {
                pos += 1;
                continue;
            }
            if one_byte {
                let id = b >> 4;
                if id == 15 {
                    return;
                }
                let elem_end = (pos + 2 + (b & 0x0F) as usize).min(end);
                let to = self.to[id as usize];
                if (1..=14).contains(&to) {
                    packet[pos] = (to << 4) | (b & 0x0F);
                } else {
                    packet[pos..elem_end].fill(0);
                }
                pos = elem_end;
            } else if two_byte {
                let Some(&l) = packet.get(pos + 1) else {
                    return;
                };
                let elem_end = (pos + 2 + l as usize).min(end);
                let to = self.to[b as usize];
                if to != 0 {
                    packet[pos] = to;
                } else {
                    packet[pos..elem_end].fill(0);
                }
                pos = elem_end;
            } else {
                // An opaque (non RFC 8285) block: nothing the subscriber negotiated.
                return;
            }
        }
    }
}

/// What [`Forwarder::forward`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `len` bytes of the scratch buffer are the packet for the subscriber.
    Send(usize),
    /// The subscriber has no codec for this payload type.
    NoCodec,
    /// A video subscription waits for a keyframe; the caller should ask the publisher.
    WaitingKeyframe,
    /// Old packet from before a source switch.
    BeforeSwitch,
    /// The packet does not parse (or is larger than the scratch buffer).
    Malformed,
}

/// The per-subscription forwarding state.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    rewriter: ForwardRewriter,
    pub(crate) pt_map: PtMap,
    pub(crate) ext_map: ExtIdMap,
    /// Drop until a keyframe arrives (new video subscriptions).
    pub(crate) waiting_keyframe: bool,
}

impl Forwarder {
    /// A forwarder writing `ssrc` with random initial sequence/timestamp from `seed`.
    pub(crate) fn new(ssrc: u32, clock_rate: u32, seed: u64, video: bool) -> Self {
        Forwarder {
            rewriter: ForwardRewriter::new(RewriterConfig {
                ssrc,
                clock_rate,
                initial_sequence: (seed >> 16) as u16,
                initial_timestamp: (seed >> 32) as u32,
            }),
            pt_map: PtMap::default(),
            ext_map: ExtIdMap::default(),
            waiting_keyframe: video,
        }
    }

    /// Copies `src` into `scratch` and rewrites it for the subscriber.
    pub(crate) fn forward(&mut self, now: Instant, src: &[u8], scratch: &mut [u8]) -> Outcome {
        let len = src.len();
        let Some(out) = scratch.get_mut(..len) else {
            return Outcome::Malformed;
        };
        out.copy_from_slice(src);
        let Ok(layout) = RtpLayout::parse(out) else {
            return Outcome::Malformed;
        };
        let pt = out[1] & 0x7F;
        let Some((sub_pt, codec)) = self.pt_map.get(pt) else {
            return Outcome::NoCodec;
        };
        if self.waiting_keyframe {
            let payload = &out[layout.payload_start..layout.payload_end];
            match codec.map(|c| c.is_keyframe(payload)) {
                Some(Ok(true)) | None => self.waiting_keyframe = false,
                _ => return Outcome::WaitingKeyframe,
            }
        }
        self.ext_map.apply(out, &layout);
        let Ok(mut packet) = RtpPacketMut::parse(out) else {
            return Outcome::Malformed;
        };
        packet.set_payload_type(sub_pt);
        match self.rewriter.rewrite(&mut packet, now) {
            Rewrite::Forward { .. } => Outcome::Send(len),
            Rewrite::DropBeforeSwitch => Outcome::BeforeSwitch,
        }
    }
}

/// Fuzzing entry point: forwards `data` as a publisher packet through an audio forwarder and
/// a keyframe-gated video forwarder with fixed payload-type and extension maps. Returns the
/// total length sent. Panics if anything sent is not valid RTP with the subscriber's SSRC and
/// the publisher's payload bytes.
#[doc(hidden)]
pub fn fuzz_forward(now: Instant, data: &[u8]) -> usize {
    let codec = |pt: u8, name: &str, clock_rate: u32| CodecInfo {
        payload_type: pt,
        name: name.to_owned(),
        clock_rate,
        channels: None,
        fmtp: String::new(),
        rtx_payload_type: None,
    };
    let mut publisher = ExtensionMap::new();
    let mut subscriber = ExtensionMap::new();
    for (i, kind) in ExtensionKind::ALL.into_iter().enumerate() {
        publisher.insert(i as u8 + 1, kind);
        subscriber.insert(14 - i as u8, kind);
    }
    let pub_codecs = [
        codec(111, "opus", 48000),
        codec(96, "VP8", 90000),
        codec(102, "H264", 90000),
    ];
    let sub_codecs = [
        codec(109, "opus", 48000),
        codec(120, "VP8", 90000),
        codec(125, "H264", 90000),
    ];
    let mut scratch = [0u8; 1500];
    let mut sent = 0;
    for video in [false, true] {
        let mut f = Forwarder::new(0x5EED, 90000, 1, video);
        f.pt_map = PtMap::build(&pub_codecs, &sub_codecs);
        f.ext_map = ExtIdMap::build(&publisher, &subscriber);
        if let Outcome::Send(len) = f.forward(now, data, &mut scratch) {
            let out = tympan_rtp::rtp::RtpPacket::parse(&scratch[..len]);
            let inp = tympan_rtp::rtp::RtpPacket::parse(data);
            match (out, inp) {
                (Ok(out), Ok(inp)) => {
                    assert_eq!(out.ssrc(), 0x5EED);
                    assert_eq!(out.payload(), inp.payload());
                }
                _ => panic!("forwarded a packet that is not valid RTP"),
            }
            sent += len;
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tympan_rtp::rtp::RtpPacket;

    fn codec(pt: u8, name: &str, clock: u32, fmtp: &str) -> CodecInfo {
        CodecInfo {
            payload_type: pt,
            name: name.into(),
            clock_rate: clock,
            channels: None,
            fmtp: fmtp.into(),
            rtx_payload_type: None,
        }
    }

    #[test]
    fn payload_types_map_by_codec_not_by_number() {
        let publisher = [
            codec(96, "VP8", 90000, ""),
            codec(
                102,
                "H264",
                90000,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
            codec(
                104,
                "H264",
                90000,
                "packetization-mode=0;profile-level-id=42e01f",
            ),
            codec(98, "VP9", 90000, "profile-id=2"),
        ];
        let subscriber = [
            codec(120, "vp8", 90000, ""),
            codec(
                125,
                "H264",
                90000,
                "profile-level-id=42001f;packetization-mode=0",
            ),
            codec(
                127,
                "H264",
                90000,
                "packetization-mode=1;profile-level-id=42e034",
            ),
            codec(100, "VP9", 90000, "profile-id=0"),
        ];
        let map = PtMap::build(&publisher, &subscriber);
        assert_eq!(map.get(96), Some((120, Some(Codec::Vp8))));
        // packetization-mode and profile (42e0) must agree; the level may differ.
        assert_eq!(map.get(102), Some((127, Some(Codec::H264))));
        // 42e0 vs 4200: a different profile-iop, so no match for mode 0.
        assert_eq!(map.get(104), None);
        // VP9 profile 2 cannot be sent as profile 0.
        assert_eq!(map.get(98), None);
        assert_eq!(map.get(111), None);
        assert!(!map.is_empty());
        assert!(PtMap::build(&publisher, &[codec(111, "opus", 48000, "")]).is_empty());
    }

    fn maps() -> (ExtensionMap, ExtensionMap) {
        let mut p = ExtensionMap::new();
        p.insert(1, ExtensionKind::AudioLevel);
        p.insert(3, ExtensionKind::TransportCc);
        p.insert(4, ExtensionKind::Mid);
        p.insert(9, ExtensionKind::AbsSendTime);
        let mut s = ExtensionMap::new();
        s.insert(5, ExtensionKind::AudioLevel);
        s.insert(2, ExtensionKind::TransportCc);
        s.insert(1, ExtensionKind::Mid);
        // no abs-send-time at the subscriber
        (p, s)
    }

    #[test]
    fn one_byte_extension_ids_are_remapped_and_unknown_ones_blanked() {
        let (p, s) = maps();
        let map = ExtIdMap::build(&p, &s);
        // Header (12) + 0xBEDE block of 3 words: audio-level (id 1, 1 byte), mid (id 4,
        // "a0"), abs-send-time (id 9, 3 bytes), id 7 (unknown, 1 byte) + 1 pad.
        let mut pkt = vec![
            0x90, 111, 0, 1, 0, 0, 0, 10, 0, 0, 0, 42, // fixed header with X
            0xBE, 0xDE, 0, 4, //
            0x10, 0xAA, // id 1 len 1
            0x41, b'a', b'0', // id 4 len 2
            0x92, 1, 2, 3, // id 9 len 3
            0x70, 0x55, // id 7 len 1
            0, 0, 0, 0, 0, // padding to 16 bytes
            0xDE, 0xAD, // payload
        ];
        let layout = RtpLayout::parse(&pkt).unwrap();
        map.apply(&mut pkt, &layout);
        let expect_block: [u8; 16] = [
            0x50, 0xAA, // audio level now id 5
            0, 0, 0, // mid blanked into padding
            0, 0, 0, 0, // abs-send-time not negotiated by the subscriber
            0, 0, // unknown id 7
            0, 0, 0, 0, 0,
        ];
        assert_eq!(&pkt[16..32], &expect_block);
        let parsed = RtpPacket::parse(&pkt).unwrap();
        let exts: Vec<(u8, Vec<u8>)> = parsed
            .extensions()
            .map(|e| (e.id, e.data.to_vec()))
            .collect();
        assert_eq!(exts, vec![(5, vec![0xAA])]);
        assert_eq!(parsed.payload(), &[0xDE, 0xAD]);
    }

    #[test]
    fn two_byte_extension_ids_are_remapped() {
        let (p, s) = maps();
        let map = ExtIdMap::build(&p, &s);
        let mut pkt = vec![
            0x90, 96, 0, 1, 0, 0, 0, 10, 0, 0, 0, 42, //
            0x10, 0x00, 0, 2, // two-byte profile, 2 words
            3, 2, 0x12, 0x34, // transport-cc id 3 -> 2
            4, 0, 0, 0, // mid id 4 with empty value -> blanked (+2 pad)
            0x01,
        ];
        let layout = RtpLayout::parse(&pkt).unwrap();
        map.apply(&mut pkt, &layout);
        assert_eq!(&pkt[16..24], &[2, 2, 0x12, 0x34, 0, 0, 0, 0]);
    }

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let w = tympan_rtp::rtp::RtpWriter::new(pt, seq, ts, ssrc, payload);
        let mut out = vec![0; w.encoded_len()];
        w.write(&mut out).unwrap();
        out
    }

    #[test]
    fn video_waits_for_a_keyframe_then_rewrites_into_its_own_space() {
        let now = Instant::now();
        let mut f = Forwarder::new(0xABCD_0001, 90000, 0x1234_5678_9ABC_DEF0, true);
        f.pt_map = PtMap::build(
            &[codec(96, "VP8", 90000, "")],
            &[codec(120, "VP8", 90000, "")],
        );
        let mut scratch = vec![0u8; 1500];
        // VP8 delta frame (P bit set in the payload header after a 1-byte descriptor S=1).
        let delta = rtp(96, 1000, 5000, 7, &[0x10, 0x01, 0, 0]);
        assert_eq!(
            f.forward(now, &delta, &mut scratch),
            Outcome::WaitingKeyframe
        );
        let key = rtp(96, 1001, 8000, 7, &[0x10, 0x10, 0, 0, 0x9d, 0x01, 0x2a]);
        let Outcome::Send(len) = f.forward(now, &key, &mut scratch) else {
            panic!("keyframe not forwarded");
        };
        let out = RtpPacket::parse(&scratch[..len]).unwrap();
        assert_eq!(out.ssrc(), 0xABCD_0001);
        assert_eq!(out.payload_type(), 120);
        assert_eq!(out.payload(), &key[12..]);
        let (s0, t0) = (out.sequence_number(), out.timestamp());
        // Later packets follow without gaps, the delta frame included now.
        for (i, seq) in [1002u16, 1003, 1004].into_iter().enumerate() {
            let p = rtp(
                96,
                seq,
                8000 + 3000 * (i as u32 + 1),
                7,
                &[0x10, 0x01, i as u8],
            );
            let Outcome::Send(len) = f.forward(now + Duration::from_millis(33), &p, &mut scratch)
            else {
                panic!("not forwarded");
            };
            let out = RtpPacket::parse(&scratch[..len]).unwrap();
            assert_eq!(out.sequence_number(), s0.wrapping_add(i as u16 + 1));
            assert_eq!(out.timestamp(), t0.wrapping_add(3000 * (i as u32 + 1)));
            assert_eq!(out.payload(), &p[12..]);
        }
        // A payload type the subscriber has no codec for.
        assert_eq!(
            f.forward(now, &rtp(97, 1005, 0, 7, &[1]), &mut scratch),
            Outcome::NoCodec
        );
        // Garbage and oversize input.
        assert_eq!(
            f.forward(now, &[0x80, 1, 2], &mut scratch),
            Outcome::Malformed
        );
        let mut tiny = [0u8; 8];
        assert_eq!(f.forward(now, &key, &mut tiny), Outcome::Malformed);
    }

    #[test]
    fn audio_is_forwarded_from_the_first_packet() {
        let now = Instant::now();
        let mut f = Forwarder::new(9, 48000, 1, false);
        f.pt_map = PtMap::build(
            &[codec(111, "opus", 48000, "")],
            &[codec(109, "opus", 48000, "")],
        );
        let mut scratch = vec![0u8; 1500];
        let p = rtp(111, 1, 960, 5, b"opus frame");
        assert!(matches!(f.forward(now, &p, &mut scratch), Outcome::Send(_)));
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the forwarder, and what it sends is valid RTP with the
        /// subscriber's SSRC and the payload unchanged.
        #[test]
        fn forwarding_arbitrary_input_is_safe(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let now = Instant::now();
            let mut f = Forwarder::new(77, 90000, 3, false);
            f.pt_map = PtMap::build(&[codec(96, "VP8", 90000, "")], &[codec(100, "VP8", 90000, "")]);
            let (p, s) = maps();
            f.ext_map = ExtIdMap::build(&p, &s);
            let mut scratch = vec![0u8; 1500];
            if let Outcome::Send(len) = f.forward(now, &data, &mut scratch) {
                let out = RtpPacket::parse(&scratch[..len]).expect("valid RTP out");
                let inp = RtpPacket::parse(&data).expect("valid RTP in");
                proptest::prop_assert_eq!(out.ssrc(), 77);
                proptest::prop_assert_eq!(out.payload(), inp.payload());
            }
        }
    }
}

//! Real captures (str0m's test data, see ../shared/testdata/README.md): every RTP packet parses,
//! its header matches Wireshark's one-line summary in the `.txt`, and keyframe detection agrees
//! with an oracle we did not write:
//! - VP8: Wireshark's Keyframe/Interframe column;
//! - H.264: Wireshark's NAL description (IDR-Slice, and its [Bad NAL Length] diagnosis);
//! - VP9: the `frame_type` bit of the VP9 uncompressed frame header in the bitstream itself,
//!   plus field-by-field agreement with `rtc-rtp`'s VP9 descriptor parser;
//! - AV1: the first OBU of every N=1 packet is a sequence header (bitstream), plus agreement with
//!   `rtc-rtp`'s AV1 depacketizer on Z/Y/N.

use bytes::Bytes;
use rtc_rtp::packetizer::Depacketizer;
use tympan_rtp::codecs::{Av1Aggregation, Codec, H264Info, Vp8Descriptor, Vp9Descriptor};
use tympan_rtp::rtp::RtpPacket;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/rtp-captures"
);

/// Minimal pcap reader: classic little-endian pcap, Ethernet link type, IPv4/UDP. Returns the UDP
/// payloads in order.
fn udp_payloads(path: &str) -> Vec<Vec<u8>> {
    let d = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(d.len() >= 24, "pcap global header");
    let magic = u32::from_le_bytes(d[0..4].try_into().unwrap());
    assert_eq!(magic, 0xA1B2_C3D4, "little-endian microsecond pcap");
    let link_type = u32::from_le_bytes(d[20..24].try_into().unwrap());
    assert_eq!(link_type, 1, "LINKTYPE_ETHERNET");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let frame = &d[off + 16..off + 16 + incl];
        off += 16 + incl;
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4 ethertype");
        let ip = &frame[14..];
        assert_eq!(ip[0] >> 4, 4);
        let ihl = 4 * (ip[0] & 0x0F) as usize;
        assert_eq!(ip[9], 17, "UDP");
        let ip_total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let udp = &ip[ihl..ip_total];
        let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
        out.push(udp[8..udp_len].to_vec());
    }
    out
}

struct Line {
    pt: Option<u8>,
    ssrc: u32,
    seq: u16,
    ts: u32,
    marker: bool,
    rest: String,
}

fn summary(path: &str) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let field = |k: &str| {
                let i = l.find(k).unwrap_or_else(|| panic!("{k} in {l}")) + k.len();
                l[i..].split([',', ' ']).next().unwrap().to_string()
            };
            let pt = field("PT=");
            let time_end = l.find("Time=").unwrap();
            Line {
                pt: pt
                    .strip_prefix("DynamicRTP-Type-")
                    .map(|p| p.parse().unwrap()),
                ssrc: u32::from_str_radix(field("SSRC=0x").as_str(), 16).unwrap(),
                seq: field("Seq=").parse().unwrap(),
                ts: field("Time=").parse().unwrap(),
                marker: l[time_end..].contains(", Mark"),
                rest: l[time_end..].to_string(),
            }
        })
        .collect()
}

fn load(codec: &str) -> Vec<(Vec<u8>, Line)> {
    let pkts = udp_payloads(&format!("{DIR}/{codec}.pcap"));
    let lines = summary(&format!("{DIR}/{codec}.txt"));
    assert_eq!(
        pkts.len(),
        lines.len(),
        "{codec}: one summary line per packet"
    );
    let v: Vec<_> = pkts.into_iter().zip(lines).collect();
    for (p, l) in &v {
        let r = RtpPacket::parse(p).expect("capture packet parses");
        assert_eq!(r.ssrc(), l.ssrc);
        assert_eq!(r.sequence_number(), l.seq);
        assert_eq!(r.timestamp(), l.ts);
        assert_eq!(r.marker(), l.marker, "marker of seq {}", l.seq);
        if let Some(pt) = l.pt {
            assert_eq!(r.payload_type(), pt);
        }
        // Cross-check the header view against rtc-rtp.
        use rtc_rtp::packet::Packet;
        use rtc_shared::marshal::Unmarshal;
        let theirs = Packet::unmarshal(&mut Bytes::copy_from_slice(p)).expect("rtc-rtp parses too");
        assert_eq!(&theirs.payload[..], r.payload());
        let ours: Vec<(u8, Vec<u8>)> = r.extensions().map(|e| (e.id, e.data.to_vec())).collect();
        let theirs_ext: Vec<(u8, Vec<u8>)> = theirs
            .header
            .extensions
            .iter()
            .map(|e| (e.id, e.payload.to_vec()))
            .collect();
        assert_eq!(ours, theirs_ext);
    }
    v
}

#[test]
fn vp8_keyframes_match_wireshark() {
    let mut keyframes = 0;
    for (p, l) in load("vp8") {
        let r = RtpPacket::parse(&p).unwrap();
        let d = Vp8Descriptor::parse(r.payload()).unwrap();
        let wireshark_key = l.rest.ends_with("Keyframe");
        assert_eq!(d.is_keyframe, wireshark_key, "seq {}: {}", l.seq, l.rest);
        assert_eq!(
            l.rest.ends_with("Continuation"),
            !d.start_of_partition || d.partition_id != 0
        );
        keyframes += usize::from(d.is_keyframe);
        let mut theirs = rtc_rtp::codec::vp8::Vp8Packet::default();
        let pl = theirs
            .depacketize(&Bytes::copy_from_slice(r.payload()))
            .unwrap();
        assert_eq!(pl.len(), r.payload().len() - d.header_len);
        assert_eq!(d.picture_id.unwrap_or(0), theirs.picture_id);
        assert_eq!(d.tl0_pic_idx.unwrap_or(0), theirs.tl0_pic_idx);
        assert_eq!(d.temporal_id.unwrap_or(0), theirs.tid);
    }
    assert_eq!(keyframes, 3);
}

#[test]
fn h264_keyframes_match_wireshark() {
    let (mut keyframes, mut bad) = (0, 0);
    for (p, l) in load("h264") {
        let r = RtpPacket::parse(&p).unwrap();
        let wireshark_key = l.rest.contains("IDR-Slice") && !l.rest.contains("non-IDR");
        match H264Info::parse(r.payload()) {
            Ok(info) => {
                assert_eq!(
                    info.is_keyframe(),
                    wireshark_key,
                    "seq {}: {}",
                    l.seq,
                    l.rest
                );
                assert_eq!(
                    info.has(7),
                    l.rest.contains("SPS"),
                    "seq {}: {}",
                    l.seq,
                    l.rest
                );
                keyframes += usize::from(info.is_keyframe());
            }
            Err(e) => {
                assert!(
                    l.rest.contains("[Bad NAL Length]"),
                    "seq {}: {e} but Wireshark says {}",
                    l.seq,
                    l.rest
                );
                bad += 1;
            }
        }
    }
    assert_eq!(keyframes, 7);
    assert_eq!(bad, 1);
}

/// VP9 uncompressed header (VP9 bitstream spec §6.2): frame_marker(2) profile_low(1)
/// profile_high(1) [reserved(1) if profile 3] show_existing_frame(1) [idx(3)] frame_type(1).
fn vp9_bitstream_is_keyframe(frame: &[u8]) -> Option<bool> {
    let bits = u32::from_be_bytes([frame[0], frame[1], 0, 0]);
    let mut pos = 0;
    let mut take = |n: u32| {
        let v = (bits >> (32 - pos - n)) & ((1 << n) - 1);
        pos += n;
        v
    };
    assert_eq!(take(2), 2, "frame_marker");
    let profile = take(1) | (take(1) << 1);
    if profile == 3 {
        take(1);
    }
    if take(1) == 1 {
        return None; // show_existing_frame: no new frame
    }
    Some(take(1) == 0)
}

#[test]
fn vp9_keyframes_match_bitstream_and_rtc_rtp() {
    let mut keyframes = 0;
    for (p, l) in load("vp9") {
        let r = RtpPacket::parse(&p).unwrap();
        let d = Vp9Descriptor::parse(r.payload()).unwrap();
        let mut theirs = rtc_rtp::codec::vp9::Vp9Packet::default();
        let pl = theirs
            .depacketize(&Bytes::copy_from_slice(r.payload()))
            .unwrap();
        assert_eq!(pl.len(), r.payload().len() - d.header_len, "seq {}", l.seq);
        assert_eq!(
            (
                d.inter_predicted,
                d.start_of_frame,
                d.end_of_frame,
                d.flexible,
                d.has_scalability_structure
            ),
            (theirs.p, theirs.b, theirs.e, theirs.f, theirs.v)
        );
        assert_eq!(d.picture_id.unwrap_or(0), theirs.picture_id);
        assert_eq!(d.spatial_id.unwrap_or(0), theirs.sid);
        assert_eq!(d.temporal_id.unwrap_or(0), theirs.tid);
        if d.start_of_frame {
            let bitstream_key = vp9_bitstream_is_keyframe(&r.payload()[d.header_len..]);
            if d.spatial_id.unwrap_or(0) == 0 {
                assert_eq!(Some(d.is_keyframe()), bitstream_key, "seq {}", l.seq);
            }
        } else {
            assert!(!d.is_keyframe());
        }
        keyframes += usize::from(d.is_keyframe());
    }
    assert!(keyframes >= 1, "the capture starts with a keyframe");
}

#[test]
fn av1_new_sequence_flag_matches_bitstream_and_rtc_rtp() {
    let mut keyframes = 0;
    let mut prev_marker = true;
    for (p, l) in load("av1") {
        let r = RtpPacket::parse(&p).unwrap();
        let a = Av1Aggregation::parse(r.payload()).unwrap();
        let mut theirs = rtc_rtp::codec::av1::Av1Depacketizer::new();
        let _ = theirs.depacketize(&Bytes::copy_from_slice(r.payload()));
        assert_eq!(
            (
                a.continues_fragment,
                a.fragment_continues,
                a.new_coded_video_sequence
            ),
            (theirs.z, theirs.y, theirs.n)
        );
        if a.new_coded_video_sequence {
            // The first OBU element: a LEB128 length unless W == 1, then the OBU header whose
            // type (bits 6..3) must be OBU_SEQUENCE_HEADER = 1.
            let pl = r.payload();
            let mut i = 1;
            if a.obu_count != 1 {
                while pl[i] & 0x80 != 0 {
                    i += 1;
                }
                i += 1;
            }
            assert_eq!(
                (pl[i] >> 3) & 0x0F,
                1,
                "seq {}: N=1 packet starts with a sequence header",
                l.seq
            );
            assert!(prev_marker, "a keyframe starts a new temporal unit");
            keyframes += 1;
        }
        assert_eq!(
            Codec::Av1.is_keyframe(r.payload()).unwrap(),
            a.new_coded_video_sequence
        );
        prev_marker = r.marker();
    }
    assert!(keyframes >= 1);
}

//! `peer/media.rs` (MediaStreams) checked against webrtc-rs `rtc-rtcp`: every RTCP compound it
//! writes is parsed and validated by rtc-rtcp, and RTCP built by rtc-rtcp drives it.
//! Simulated time throughout.
//!
//! The module is crate-private, so it is compiled into this test from its source file, with
//! the two peer types it uses taken from the public `peer` module.

use tympan_rtc_engine::peer::{DropReason, TimeoutReason};

#[allow(dead_code)]
#[path = "../src/peer/media.rs"]
mod media;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use media::{MediaEvent, MediaStreams, NTP_ANCHOR_SECS, RecvStreamConfig, SendStreamConfig};
use rtc_rtcp::compound_packet::CompoundPacket;
use rtc_rtcp::packet::Packet;
use rtc_rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{SdesType, SourceDescription};
use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use tympan_rtp::extensions::{ExtensionMap, URI_MID, URI_TRANSPORT_CC};
use tympan_rtp::rtp::RtpWriter;

const RTCP_SSRC: u32 = 0xAAAA_0001;
const CNAME: &str = "tympan-test-cname";

fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, exts: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
    let w = RtpWriter {
        extensions: exts,
        ..RtpWriter::new(pt, seq, ts, ssrc, payload)
    };
    let mut buf = vec![0u8; w.encoded_len()];
    let n = w.write(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn recv_cfg(mid: &str, ssrc: Option<u32>) -> RecvStreamConfig {
    RecvStreamConfig {
        mid: mid.into(),
        ssrc,
        rtx_ssrc: None,
        clock_rate: 90_000,
        rtx_payload_types: vec![(97, 96)],
        nack: true,
        pli: true,
        fir: true,
    }
}

fn send_cfg(mid: &str, ssrc: u32, rtx_ssrc: Option<u32>) -> SendStreamConfig {
    SendStreamConfig {
        mid: mid.into(),
        ssrc,
        rtx_ssrc,
        clock_rate: 90_000,
        rtx_payload_types: vec![(97, 96)],
        history: 128,
    }
}

/// Drains `poll_rtcp` at `now`; each compound is parsed by rtc-rtcp and validated as an
/// RFC 3550 compound (first SR/RR, CNAME present).
fn drain_rtcp(m: &mut MediaStreams, now: Instant) -> Vec<Vec<Box<dyn Packet>>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(n) = m.poll_rtcp(now, &mut buf) {
        assert!(n <= 1200, "compound of {n} bytes");
        let mut raw: &[u8] = &buf[..n];
        let packets = rtc_rtcp::packet::unmarshal(&mut raw).expect("rtc-rtcp parses our RTCP");
        let compound = CompoundPacket(packets.clone());
        compound.validate().expect("a valid RFC 3550 compound");
        assert_eq!(compound.cname().unwrap(), CNAME.as_bytes());
        out.push(packets);
        assert!(out.len() < 100, "poll_rtcp does not stop");
    }
    out
}

fn find<T: 'static + Clone>(compounds: &[Vec<Box<dyn Packet>>]) -> Vec<T> {
    compounds
        .iter()
        .flatten()
        .filter_map(|p| p.as_any().downcast_ref::<T>().cloned())
        .collect()
}

fn marshal(packets: &[Box<dyn Packet>]) -> Vec<u8> {
    rtc_rtcp::packet::marshal(packets).unwrap().to_vec()
}

fn rr_header() -> Box<dyn Packet> {
    Box::new(ReceiverReport {
        ssrc: 0xBEEF,
        ..Default::default()
    })
}

#[test]
fn sender_report_fields_and_sdes() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    m.add_send_stream(send_cfg("v", 0x1111, None));
    assert!(
        drain_rtcp(&mut m, t0).is_empty(),
        "nothing sent, nothing to report"
    );
    for i in 0..10u16 {
        let p = rtp(96, 100 + i, 3000 * u32::from(i), 0x1111, &[], &[7u8; 100]);
        m.on_send_rtp(ms(t0, 33 * u64::from(i)), "v", &p).unwrap();
    }
    assert_eq!(m.poll_timeout(), Some((ms(t0, 1000), TimeoutReason::Rtcp)));
    assert!(drain_rtcp(&mut m, ms(t0, 999)).is_empty(), "not yet due");
    m.handle_timeout(ms(t0, 1000));
    let c = drain_rtcp(&mut m, ms(t0, 1000));
    assert_eq!(c.len(), 1);
    let srs = find::<SenderReport>(&c);
    assert_eq!(srs.len(), 1);
    let sr = &srs[0];
    assert_eq!(sr.ssrc, 0x1111);
    assert_eq!((sr.packet_count, sr.octet_count), (10, 1000));
    // NTP: anchored at construction, one second later.
    assert_eq!(sr.ntp_time, (NTP_ANCHOR_SECS + 1) << 32);
    // RTP time: last packet ts 27000 sent at 297 ms, extrapolated by 703 ms at 90 kHz.
    assert_eq!(sr.rtp_time, 27_000 + 703 * 90);
    assert!(sr.reports.is_empty());
    let sdes = find::<SourceDescription>(&c);
    assert_eq!(sdes[0].chunks[0].source, 0x1111);
    assert_eq!(sdes[0].chunks[0].items[0].sdes_type, SdesType::SdesCname);
    // The next round one second later.
    assert!(drain_rtcp(&mut m, ms(t0, 1500)).is_empty());
    assert_eq!(
        find::<SenderReport>(&drain_rtcp(&mut m, ms(t0, 2000))).len(),
        1
    );
}

#[test]
fn receiver_report_counts_loss_of_a_lossy_stream_and_nacks_exactly_the_dropped() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    m.add_recv_stream(recv_cfg("a", Some(0x2222)));
    let dropped: BTreeSet<u16> = [1010, 1011, 1030, 1047, 1048, 1049, 1060, 1075, 1090, 1098]
        .into_iter()
        .collect();
    let mut nacked = BTreeSet::new();
    let mut t = 0;
    for seq in 1000u16..1100 {
        t = 20 * u64::from(seq - 1000);
        if !dropped.contains(&seq) {
            let mut p = rtp(96, seq, 1800 * u32::from(seq - 1000), 0x2222, &[], b"media");
            let (mid, n) = m.on_rtp(ms(t0, t), &mut p).unwrap();
            assert_eq!((mid, n), ("a", p.len()));
        }
        // Collect NACKs as they become due (before the report is due).
        if t < 1000 {
            for nack in find::<TransportLayerNack>(&drain_rtcp(&mut m, ms(t0, t))) {
                assert_eq!((nack.sender_ssrc, nack.media_ssrc), (RTCP_SSRC, 0x2222));
                for pair in &nack.nacks {
                    nacked.extend(pair.packet_list());
                }
            }
        }
    }
    // 1047-1049 are only noticed missing when 1050 arrives, at 1 s.
    let due: BTreeSet<u16> = dropped.iter().copied().filter(|s| *s < 1047).collect();
    assert_eq!(
        nacked, due,
        "NACKed exactly the dropped packets seen so far"
    );
    // Report at 2 s (also carries the NACKs due by then).
    let c = drain_rtcp(&mut m, ms(t0, t + 1000));
    let rrs = find::<ReceiverReport>(&c);
    assert_eq!(rrs.len(), 1);
    assert_eq!(rrs[0].ssrc, RTCP_SSRC);
    let block = &rrs[0].reports[0];
    assert_eq!(block.ssrc, 0x2222);
    assert_eq!(block.total_lost, 10);
    assert_eq!(block.last_sequence_number, 1099);
    // RFC 3550 A.1: the first packet is in probation, so 99 are expected: 10/99 * 256.
    assert_eq!(block.fraction_lost, (10 * 256 / 99) as u8);
    assert_eq!(block.jitter, 0, "perfectly paced");
    assert_eq!((block.last_sender_report, block.delay), (0, 0), "no SR yet");
    for nack in find::<TransportLayerNack>(&c) {
        for pair in &nack.nacks {
            nacked.extend(pair.packet_list());
        }
    }
    assert_eq!(nacked, dropped);
}

#[test]
fn rtx_repairs_are_unwrapped_in_place_and_stop_the_nacks() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    m.add_recv_stream(RecvStreamConfig {
        rtx_ssrc: Some(0x2223),
        ..recv_cfg("a", Some(0x2222))
    });
    for seq in (0u16..20).filter(|s| ![5, 6, 12].contains(s)) {
        let mut p = rtp(
            96,
            seq,
            3000 * u32::from(seq),
            0x2222,
            &[],
            &[seq as u8; 50],
        );
        m.on_rtp(ms(t0, u64::from(seq)), &mut p).unwrap();
    }
    assert_eq!(m.poll_timeout().map(|(_, r)| r), Some(TimeoutReason::Nack));
    let first: BTreeSet<u16> = find::<TransportLayerNack>(&drain_rtcp(&mut m, ms(t0, 30)))
        .iter()
        .flat_map(|n| n.nacks.iter().flat_map(|p| p.packet_list()))
        .collect();
    assert_eq!(first, [5, 6, 12].into_iter().collect());
    // RTX (RFC 4588): pt 97, own SSRC and sequence, payload = OSN + original payload.
    let mut payload = 6u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[6u8; 50]);
    let mut rtx = rtp(97, 777, 18_000, 0x2223, &[], &payload);
    rtx[0] |= 0x20; // padding bit + 4 bytes of padding
    rtx.extend_from_slice(&[0, 0, 0, 4]);
    let (mid, n) = m.on_rtp(ms(t0, 40), &mut rtx).unwrap();
    assert_eq!(mid, "a");
    assert_eq!(rtx[..n], rtp(96, 6, 18_000, 0x2222, &[], &[6u8; 50])[..]);
    // After the retry interval only 5 and 12 are NACKed again.
    let again: BTreeSet<u16> = find::<TransportLayerNack>(&drain_rtcp(&mut m, ms(t0, 200)))
        .iter()
        .flat_map(|n| n.nacks.iter().flat_map(|p| p.packet_list()))
        .collect();
    assert_eq!(again, [5, 12].into_iter().collect());
    // A padding-only RTX probe is dropped.
    let mut probe = rtp(97, 778, 0, 0x2223, &[], &[]);
    assert_eq!(m.on_rtp(ms(t0, 210), &mut probe), Err(DropReason::Garbage));
    assert_eq!(m.counters().probes_in, 1);
}

#[test]
fn ssrc_learned_from_the_mid_extension_also_for_rtx() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    let mut map = ExtensionMap::new();
    assert!(map.insert_uri(4, URI_MID));
    m.set_extensions(map);
    m.add_recv_stream(recv_cfg("0", None));
    m.add_recv_stream(recv_cfg("1", None));
    let mut unknown = rtp(96, 1, 0, 0x5555, &[], b"x");
    assert_eq!(m.on_rtp(t0, &mut unknown), Err(DropReason::UnknownStream));
    let mut p = rtp(96, 1, 0, 0x5555, &[(4, b"1")], b"x");
    assert_eq!(m.on_rtp(t0, &mut p).map(|(mid, _)| mid), Ok("1"));
    assert_eq!(m.recv_ssrc("1"), Some(0x5555));
    // Now known by SSRC, without the extension.
    let mut p = rtp(96, 2, 0, 0x5555, &[], b"y");
    assert_eq!(m.on_rtp(t0, &mut p).map(|(mid, _)| mid), Ok("1"));
    // RTX with the mid extension: learned as the RTX SSRC of "1", unwrapped.
    let mut r = rtp(97, 50, 0, 0x5556, &[(4, b"1")], &[0, 1, b'x']);
    let (mid, n) = m.on_rtp(t0, &mut r).unwrap();
    assert_eq!(mid, "1");
    assert_eq!(r[..n], rtp(96, 1, 0, 0x5555, &[(4, b"1")], b"x")[..]);
    assert_eq!(m.recv_ssrc("0"), None);
    m.remove_mid("1");
    let mut p = rtp(96, 3, 0, 0x5555, &[], b"z");
    assert_eq!(m.on_rtp(t0, &mut p), Err(DropReason::UnknownStream));
}

#[test]
fn twcc_feedback_covers_received_sequence_numbers() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    let mut map = ExtensionMap::new();
    assert!(map.insert_uri(3, URI_TRANSPORT_CC));
    m.set_extensions(map);
    m.add_recv_stream(recv_cfg("v", Some(0x2222)));
    let feed = |m: &mut MediaStreams, from: u16| {
        for i in 0..21u16 {
            if i == 5 {
                continue;
            }
            let tseq = (from + i).to_be_bytes();
            let mut p = rtp(96, from + i, 0, 0x2222, &[(3, &tseq)], b"v");
            m.on_rtp(ms(t0, 200 + u64::from(from) + u64::from(i) * 2), &mut p)
                .unwrap();
        }
    };
    // Not negotiated: no feedback.
    feed(&mut m, 0);
    assert!(find::<TransportLayerCc>(&drain_rtcp(&mut m, ms(t0, 300))).is_empty());
    m.set_twcc(true);
    feed(&mut m, 100);
    assert_eq!(m.poll_timeout().map(|(_, r)| r), Some(TimeoutReason::Twcc));
    let fbs = find::<TransportLayerCc>(&drain_rtcp(&mut m, ms(t0, 400)));
    assert_eq!(fbs.len(), 1);
    let fb = &fbs[0];
    assert_eq!(fb.sender_ssrc, RTCP_SSRC);
    assert_eq!((fb.base_sequence_number, fb.packet_status_count), (100, 21));
    let mut symbols = Vec::new();
    for chunk in &fb.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(c) => symbols.extend(std::iter::repeat_n(
                c.packet_status_symbol,
                c.run_length.into(),
            )),
            PacketStatusChunk::StatusVectorChunk(c) => symbols.extend(c.symbol_list.iter()),
        }
    }
    symbols.truncate(21);
    let received: Vec<u16> = (0..21u16)
        .filter(|i| symbols[usize::from(*i)] != SymbolTypeTcc::PacketNotReceived)
        .map(|i| 100 + i)
        .collect();
    let expected: Vec<u16> = (100..121).filter(|s| *s != 105).collect();
    assert_eq!(received, expected);
    assert_eq!(fb.recv_deltas.len(), 20);
    // Arrivals 2 ms apart (4 ms across the lost one).
    let deltas: Vec<i64> = fb.recv_deltas[1..].iter().map(|d| d.delta).collect();
    let mut want = vec![2000i64; 19];
    want[4] = 4000;
    assert_eq!(deltas, want);
    // Nothing pending: no more feedback.
    assert!(find::<TransportLayerCc>(&drain_rtcp(&mut m, ms(t0, 600))).is_empty());
}

#[test]
fn nack_from_rtc_rtcp_is_answered_with_rtx_per_rfc4588() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    m.add_send_stream(send_cfg("v", 0x3333, Some(0x3334)));
    m.add_send_stream(send_cfg("a", 0x4444, None));
    let mut sent = Vec::new();
    for seq in 500u16..550 {
        let payload = [seq as u8; 80];
        let p = rtp(
            96,
            seq,
            u32::from(seq) * 3000,
            0x3333,
            &[(1, &[9, 9])],
            &payload,
        );
        m.on_send_rtp(ms(t0, u64::from(seq - 500)), "v", &p)
            .unwrap();
        let a = rtp(96, seq, u32::from(seq) * 960, 0x4444, &[], &payload[..20]);
        m.on_send_rtp(ms(t0, u64::from(seq - 500)), "a", &a)
            .unwrap();
        sent.push((p, a));
    }
    let nack_v = TransportLayerNack {
        sender_ssrc: 0xBEEF,
        media_ssrc: 0x3333,
        nacks: nack_pairs_from_sequence_numbers(&[510, 512, 549]),
    };
    let nack_a = TransportLayerNack {
        sender_ssrc: 0xBEEF,
        media_ssrc: 0x4444,
        nacks: nack_pairs_from_sequence_numbers(&[501]),
    };
    let compound = marshal(&[rr_header(), Box::new(nack_v), Box::new(nack_a)]);
    m.on_rtcp(ms(t0, 60), &compound);
    let mut buf = [0u8; 1500];
    let mut rtx_seqs = Vec::new();
    for osn in [510u16, 512, 549] {
        let n = m.poll_retransmit(&mut buf).expect("a retransmission");
        let r = &buf[..n];
        let orig = &sent[usize::from(osn - 500)].0;
        // Same header up to the SSRC/PT/seq changes (RFC 4588 §4), padding bit clear.
        assert_eq!(r[0], orig[0] & !0x20);
        assert_eq!(r[1] & 0x7F, 97, "RTX payload type");
        assert_eq!(r[8..12], 0x3334u32.to_be_bytes(), "RTX SSRC");
        assert_eq!(r[4..8], orig[4..8], "original timestamp");
        let hl = orig.len() - 80;
        assert_eq!(r[12..hl], orig[12..hl], "header extensions kept");
        assert_eq!(r[hl..hl + 2], osn.to_be_bytes(), "OSN first");
        assert_eq!(r[hl + 2..], orig[hl..], "then the original payload");
        rtx_seqs.push(u16::from_be_bytes([r[2], r[3]]));
    }
    assert_eq!(rtx_seqs[1], rtx_seqs[0].wrapping_add(1));
    assert_eq!(rtx_seqs[2], rtx_seqs[1].wrapping_add(1));
    // Audio without RTX: the original packet, byte for byte.
    let n = m.poll_retransmit(&mut buf).unwrap();
    assert_eq!(buf[..n], sent[1].1[..]);
    assert_eq!(m.poll_retransmit(&mut buf), None);
    // The same NACK again within the resend interval: nothing; later: again.
    let again = marshal(&[
        rr_header(),
        Box::new(TransportLayerNack {
            sender_ssrc: 0xBEEF,
            media_ssrc: 0x3333,
            nacks: nack_pairs_from_sequence_numbers(&[510]),
        }),
    ]);
    m.on_rtcp(ms(t0, 65), &again);
    assert_eq!(m.poll_retransmit(&mut buf), None);
    m.on_rtcp(ms(t0, 100), &again);
    assert!(m.poll_retransmit(&mut buf).is_some());
    // Packets no longer in the 128-packet history are not resent.
    for seq in 550u16..700 {
        let p = rtp(96, seq, 0, 0x3333, &[], b"later");
        m.on_send_rtp(ms(t0, 200), "v", &p).unwrap();
    }
    m.on_rtcp(ms(t0, 300), &again);
    assert_eq!(m.poll_retransmit(&mut buf), None);
    assert_eq!(m.counters().retransmits, 5);
}

#[test]
fn pli_and_fir_from_rtc_rtcp_become_keyframe_requests() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    m.add_send_stream(send_cfg("v", 0x3333, None));
    m.add_send_stream(send_cfg("w", 0x5555, None));
    let pli = |media_ssrc| -> Box<dyn Packet> {
        Box::new(PictureLossIndication {
            sender_ssrc: 0xBEEF,
            media_ssrc,
        })
    };
    m.on_rtcp(t0, &marshal(&[rr_header(), pli(0x3333), pli(0x9999)]));
    assert_eq!(
        m.poll_event(),
        Some(MediaEvent::KeyframeRequested { mid: "v".into() })
    );
    assert_eq!(m.poll_event(), None, "unknown SSRC ignored");
    let fir = |seq| -> Box<dyn Packet> {
        Box::new(FullIntraRequest {
            sender_ssrc: 0xBEEF,
            media_ssrc: 0,
            fir: vec![FirEntry {
                ssrc: 0x5555,
                sequence_number: seq,
            }],
        })
    };
    m.on_rtcp(t0, &marshal(&[rr_header(), fir(1)]));
    assert_eq!(
        m.poll_event(),
        Some(MediaEvent::KeyframeRequested { mid: "w".into() })
    );
    m.on_rtcp(t0, &marshal(&[rr_header(), fir(1)]));
    assert_eq!(
        m.poll_event(),
        None,
        "a repeated FIR sequence number is not a new request"
    );
    m.on_rtcp(t0, &marshal(&[rr_header(), fir(2)]));
    assert!(m.poll_event().is_some());
    assert_eq!((m.counters().plis_in, m.counters().firs_in), (1, 2));
}

#[test]
fn request_keyframe_sends_pli_or_fir_as_negotiated() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    m.add_recv_stream(recv_cfg("p", Some(0x2222)));
    m.add_recv_stream(RecvStreamConfig {
        pli: false,
        ..recv_cfg("f", Some(0x3333))
    });
    m.add_recv_stream(RecvStreamConfig {
        pli: false,
        fir: false,
        ..recv_cfg("none", Some(0x4444))
    });
    m.request_keyframe(t0, "p");
    m.request_keyframe(t0, "f");
    m.request_keyframe(t0, "none");
    assert_eq!(m.poll_timeout(), Some((t0, TimeoutReason::Rtcp)));
    let c = drain_rtcp(&mut m, t0);
    assert_eq!(c.len(), 1);
    let plis = find::<PictureLossIndication>(&c);
    assert_eq!(plis.len(), 1);
    assert_eq!(
        (plis[0].sender_ssrc, plis[0].media_ssrc),
        (RTCP_SSRC, 0x2222)
    );
    let firs = find::<FullIntraRequest>(&c);
    assert_eq!(firs.len(), 1);
    assert_eq!(firs[0].fir[0].ssrc, 0x3333);
    m.request_keyframe(t0, "f");
    let firs2 = find::<FullIntraRequest>(&drain_rtcp(&mut m, t0));
    assert_eq!(
        firs2[0].fir[0].sequence_number,
        firs[0].fir[0].sequence_number.wrapping_add(1),
        "RFC 5104: a new request has a new sequence number"
    );
    assert!(drain_rtcp(&mut m, t0).is_empty());
}

#[test]
fn lsr_dlsr_from_the_publishers_sr_and_rtt_from_the_subscribers_rr() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    m.add_recv_stream(recv_cfg("in", Some(0x2222)));
    m.add_send_stream(send_cfg("out", 0x3333, None));
    let mut p = rtp(96, 1, 0, 0x2222, &[], b"in");
    m.on_rtp(ms(t0, 100), &mut p).unwrap();
    let p = rtp(96, 1, 0, 0x3333, &[], b"out");
    m.on_send_rtp(ms(t0, 100), "out", &p).unwrap();
    // The publisher's SR arrives at 500 ms.
    let their_ntp: u64 = 0xE6AA_1234_5678_9ABC;
    let sr = SenderReport {
        ssrc: 0x2222,
        ntp_time: their_ntp,
        rtp_time: 1,
        packet_count: 1,
        octet_count: 2,
        ..Default::default()
    };
    m.on_rtcp(ms(t0, 500), &marshal(&[Box::new(sr)]));
    let c = drain_rtcp(&mut m, ms(t0, 1000));
    let srs = find::<SenderReport>(&c);
    assert_eq!(srs.len(), 1);
    let ours = &srs[0];
    assert_eq!(ours.ssrc, 0x3333);
    let block = &ours.reports[0];
    assert_eq!(block.ssrc, 0x2222);
    assert_eq!(block.last_sender_report, (their_ntp >> 16) as u32);
    assert_eq!(block.delay, 65536 / 2, "500 ms in 1/65536 s");
    // The subscriber answers our SR: received it, held it 100 ms, its RR reaches us 300 ms
    // after we sent the SR: RTT 200 ms.
    assert_eq!(m.rtt(), None);
    let rr = ReceiverReport {
        ssrc: 0xBEEF,
        reports: vec![ReceptionReport {
            ssrc: 0x3333,
            last_sender_report: (ours.ntp_time >> 16) as u32,
            delay: 6554, // 100 ms
            ..Default::default()
        }],
        ..Default::default()
    };
    m.on_rtcp(ms(t0, 1300), &marshal(&[Box::new(rr)]));
    let rtt = m.rtt().expect("an RTT");
    assert!(
        rtt.abs_diff(Duration::from_millis(200)) < Duration::from_millis(1),
        "{rtt:?}"
    );
    assert_eq!(
        m.remote_report("out").map(|b| b.delay_since_last_sr),
        Some(6554)
    );
}

#[test]
fn many_streams_split_reports_over_valid_compounds() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    for i in 0..60u32 {
        m.add_send_stream(send_cfg(&format!("s{i}"), 0x1000 + i, None));
        m.add_recv_stream(recv_cfg(&format!("r{i}"), Some(0x8000 + i)));
        let p = rtp(96, 1, 0, 0x1000 + i, &[], b"x");
        m.on_send_rtp(t0, &format!("s{i}"), &p).unwrap();
        for seq in 1..4 {
            let mut p = rtp(96, seq, 0, 0x8000 + i, &[], b"x");
            m.on_rtp(t0, &mut p).unwrap();
        }
    }
    let c = drain_rtcp(&mut m, ms(t0, 1000));
    assert!(c.len() > 1);
    let mut senders: Vec<u32> = find::<SenderReport>(&c).iter().map(|s| s.ssrc).collect();
    senders.sort();
    assert_eq!(senders, (0x1000..0x1000 + 60).collect::<Vec<u32>>());
    let mut blocks: Vec<u32> = find::<SenderReport>(&c)
        .iter()
        .flat_map(|s| s.reports.iter().map(|b| b.ssrc))
        .chain(
            find::<ReceiverReport>(&c)
                .iter()
                .flat_map(|r| r.reports.iter().map(|b| b.ssrc)),
        )
        .collect();
    blocks.sort();
    assert_eq!(blocks, (0x8000..0x8000 + 60).collect::<Vec<u32>>());
    assert!(drain_rtcp(&mut m, ms(t0, 1001)).is_empty());
}

#[test]
fn poll_timeout_reasons() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    assert_eq!(m.poll_timeout(), None, "no streams, nothing to do");
    m.add_recv_stream(recv_cfg("a", Some(0x2222)));
    let mut p = rtp(96, 1, 0, 0x2222, &[], b"a");
    m.on_rtp(t0, &mut p).unwrap();
    assert_eq!(m.poll_timeout(), Some((ms(t0, 1000), TimeoutReason::Rtcp)));
    let mut p = rtp(96, 3, 0, 0x2222, &[], b"a");
    m.on_rtp(ms(t0, 1), &mut p).unwrap();
    assert_eq!(m.poll_timeout(), Some((ms(t0, 11), TimeoutReason::Nack)));
}

#[test]
fn a_new_ssrc_on_a_known_mid_restarts_the_statistics() {
    let t0 = Instant::now();
    let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
    let mut map = ExtensionMap::new();
    assert!(map.insert_uri(4, URI_MID));
    m.set_extensions(map);
    m.add_recv_stream(recv_cfg("0", None));
    for seq in 0..10u16 {
        let mut p = rtp(96, seq, 0, 0x1000, &[(4, b"0")], b"old");
        m.on_rtp(ms(t0, u64::from(seq)), &mut p).unwrap();
    }
    // Another SSRC with the same mid while the first one is active is not adopted.
    let mut p = rtp(96, 1, 0, 0x3000, &[(4, b"0")], b"other");
    assert_eq!(m.on_rtp(ms(t0, 20), &mut p), Err(DropReason::UnknownStream));
    assert_eq!(m.recv_ssrc("0"), Some(0x1000));
    // The publisher restarts its encoder with a new SSRC and sequence space.
    for seq in 500..510u16 {
        let mut p = rtp(96, seq, 0, 0x2000, &[(4, b"0")], b"new");
        assert_eq!(m.on_rtp(ms(t0, 600), &mut p).map(|(mid, _)| mid), Ok("0"));
    }
    assert_eq!(m.recv_ssrc("0"), Some(0x2000));
    let c = drain_rtcp(&mut m, ms(t0, 1000));
    let rrs = find::<ReceiverReport>(&c);
    assert_eq!(rrs[0].reports.len(), 1);
    let block = &rrs[0].reports[0];
    assert_eq!(block.ssrc, 0x2000);
    assert_eq!((block.total_lost, block.last_sequence_number), (0, 509));
    assert!(
        find::<TransportLayerNack>(&c).is_empty(),
        "the jump is not a loss"
    );
}

mod robustness {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        /// Network input never panics: RTP with a valid version and known SSRCs/payload types
        /// but arbitrary contents, and RTCP compounds with arbitrary lengths and bodies.
        #[test]
        fn arbitrary_rtp_and_rtcp_never_panic(
            rtps in vec((vec(any::<u8>(), 0..200), 0usize..4, any::<bool>()), 0..20),
            rtcps in vec((vec(any::<u8>(), 0..200), 200u8..=207), 0..10),
        ) {
            let t0 = Instant::now();
            let mut m = MediaStreams::new(RTCP_SSRC, CNAME.into(), t0);
            let mut map = ExtensionMap::new();
            map.insert_uri(3, URI_TRANSPORT_CC);
            map.insert_uri(4, URI_MID);
            m.set_extensions(map);
            m.set_twcc(true);
            m.add_recv_stream(RecvStreamConfig { rtx_ssrc: Some(0x2223), ..recv_cfg("a", Some(0x2222)) });
            m.add_recv_stream(recv_cfg("b", None));
            m.add_send_stream(send_cfg("v", 0x3333, Some(0x3334)));
            let ssrcs = [0x2222u32, 0x2223, 0x3333, 0x9999];
            let mut buf = [0u8; 1500];
            for (i, (mut bytes, which, rtx)) in rtps.into_iter().enumerate() {
                let now = ms(t0, i as u64 * 7);
                if bytes.len() >= 12 {
                    bytes[0] = 0x80 | (bytes[0] & 0x3F);
                    bytes[1] = (bytes[1] & 0x80) | if rtx { 97 } else { 96 };
                    bytes[8..12].copy_from_slice(&ssrcs[which].to_be_bytes());
                }
                let mut copy = bytes.clone();
                if let Ok((_, n)) = m.on_rtp(now, &mut copy) {
                    prop_assert!(n <= bytes.len());
                }
                let _ = m.on_send_rtp(now, "v", &bytes);
            }
            for (i, (mut bytes, pt)) in rtcps.into_iter().enumerate() {
                if bytes.len() >= 2 {
                    bytes[0] = 0x80 | (bytes[0] & 0x3F);
                    bytes[1] = pt;
                }
                if bytes.len() >= 12 {
                    bytes[8..12].copy_from_slice(&0x3333u32.to_be_bytes());
                }
                let now = ms(t0, 200 + i as u64 * 50);
                m.on_rtcp(now, &bytes);
                while m.poll_retransmit(&mut buf).is_some() {}
                while m.poll_event().is_some() {}
                let mut n = 0;
                while m.poll_rtcp(now, &mut buf).is_some() {
                    n += 1;
                    prop_assert!(n < 100);
                }
            }
            let mut n = 0;
            while m.poll_rtcp(ms(t0, 5000), &mut buf).is_some() {
                n += 1;
                prop_assert!(n < 100);
            }
        }
    }
}

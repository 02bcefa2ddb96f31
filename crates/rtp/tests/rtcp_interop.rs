//! proptest round trips for every RTCP type we build, and cross-checks against `rtc-rtcp`
//! (webrtc-rs): what we build parses identically in theirs, and what they build parses
//! identically in ours.

use bytes::Bytes;
use proptest::prelude::*;
use rtc_rtcp::extended_report::{
    DLRRReport, DLRRReportBlock, ExtendedReport, ReceiverReferenceTimeReportBlock,
};
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::payload_feedbacks::full_intra_request::{FirEntry as TFir, FullIntraRequest};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc_rtcp::receiver_report::ReceiverReport as TRr;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport as TSr;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair as TNack, TransportLayerNack};
use rtc_shared::marshal::Marshal;
use tympan_rtp::rtcp::*;

/// SDES chunks as plain data: (ssrc, [(item type, value)]).
type SdesChunks = Vec<(u32, Vec<(u8, Vec<u8>)>)>;

fn theirs_parse(buf: &[u8]) -> Vec<Box<dyn rtc_rtcp::packet::Packet>> {
    rtc_rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(buf))
        .expect("rtc-rtcp parses our packet")
}

fn ours_parse(buf: &[u8]) -> Vec<RtcpPacket<'_>> {
    let v: Result<Vec<_>, _> = CompoundIter::new(buf).collect();
    v.expect("we parse their packet")
}

fn down<T: 'static>(p: &dyn rtc_rtcp::packet::Packet) -> &T {
    p.as_any().downcast_ref::<T>().expect("packet type")
}

fn block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..0x80_0000,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(
                ssrc,
                fraction_lost,
                cumulative_lost,
                extended_highest_seq,
                jitter,
                last_sr,
                delay_since_last_sr,
            )| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost,
                extended_highest_seq,
                jitter,
                last_sr,
                delay_since_last_sr,
            },
        )
}

fn to_theirs(b: &ReportBlock) -> ReceptionReport {
    ReceptionReport {
        ssrc: b.ssrc,
        fraction_lost: b.fraction_lost,
        total_lost: b.cumulative_lost as u32 & 0xFF_FFFF,
        last_sequence_number: b.extended_highest_seq,
        jitter: b.jitter,
        last_sender_report: b.last_sr,
        delay: b.delay_since_last_sr,
    }
}

fn twcc_deltas() -> impl Strategy<Value = Vec<Option<i16>>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(None),
            6 => (0i16..=255).prop_map(Some),
            1 => any::<i16>().prop_map(Some),
        ],
        1..300,
    )
    .prop_flat_map(|v| {
        // Also produce long runs so run-length chunks appear.
        (
            Just(v),
            0usize..40,
            prop_oneof![Just(None), Just(Some(3i16))],
        )
            .prop_map(|(mut v, run, sym)| {
                v.extend(std::iter::repeat_n(sym, run));
                v
            })
    })
}

/// Expands rtc-rtcp's chunks + deltas into per-packet `Option<delta ticks>`.
fn their_statuses(t: &TransportLayerCc) -> Vec<Option<i16>> {
    let mut syms = Vec::new();
    for c in &t.packet_chunks {
        match c {
            PacketStatusChunk::RunLengthChunk(r) => syms.extend(std::iter::repeat_n(
                r.packet_status_symbol,
                r.run_length as usize,
            )),
            PacketStatusChunk::StatusVectorChunk(v) => syms.extend(v.symbol_list.iter().copied()),
        }
    }
    syms.truncate(t.packet_status_count as usize);
    let mut deltas = t.recv_deltas.iter();
    syms.iter()
        .map(|s| match s {
            SymbolTypeTcc::PacketNotReceived => None,
            _ => Some((deltas.next().unwrap().delta / 250) as i16),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn sr_rr_roundtrip_and_interop(info in (any::<u32>(), any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()),
                                   blocks in prop::collection::vec(block(), 0..5), rr_ssrc in any::<u32>()) {
        let info = SenderInfo { ssrc: info.0, ntp_time: info.1, rtp_time: info.2, packet_count: info.3, octet_count: info.4 };
        let mut buf = [0u8; 1500];
        let mut w = RtcpWriter::new(&mut buf);
        w.sender_report(&info, &blocks).unwrap();
        w.receiver_report(rr_ssrc, &blocks).unwrap();
        let n = w.len();
        validate_full_compound(&buf[..n]).unwrap();
        let ours = ours_parse(&buf[..n]);
        let RtcpPacket::SenderReport(sr) = ours[0] else { panic!() };
        prop_assert_eq!(sr.info, info);
        prop_assert_eq!(sr.reports.collect::<Vec<_>>(), blocks.clone());
        let RtcpPacket::ReceiverReport(rr) = ours[1] else { panic!() };
        prop_assert_eq!(rr.ssrc, rr_ssrc);
        prop_assert_eq!(rr.reports.collect::<Vec<_>>(), blocks.clone());

        let theirs = theirs_parse(&buf[..n]);
        let tsr = down::<TSr>(theirs[0].as_ref());
        let expect_sr = TSr { ssrc: info.ssrc, ntp_time: info.ntp_time, rtp_time: info.rtp_time, packet_count: info.packet_count,
            octet_count: info.octet_count, reports: blocks.iter().map(to_theirs).collect(), profile_extensions: Bytes::new() };
        prop_assert_eq!(tsr, &expect_sr);
        let expect_rr = TRr { ssrc: rr_ssrc, reports: blocks.iter().map(to_theirs).collect(), profile_extensions: Bytes::new() };
        prop_assert_eq!(down::<TRr>(theirs[1].as_ref()), &expect_rr);

        // Theirs → ours.
        let mut tb = expect_sr.marshal().unwrap().to_vec();
        tb.extend_from_slice(&expect_rr.marshal().unwrap());
        prop_assert_eq!(&tb[..], &buf[..n], "byte-identical encodings");
    }

    #[test]
    fn sdes_bye_app_roundtrip_and_interop(chunks in prop::collection::vec((any::<u32>(), prop::collection::vec((1u8..=8, prop::collection::vec(any::<u8>(), 1..40)), 1..4)), 1..4),
                                          ssrcs in prop::collection::vec(any::<u32>(), 1..5),
                                          reason in prop::option::of(prop::collection::vec(any::<u8>(), 1..60)),
                                          app_data in prop::collection::vec(any::<u32>(), 0..5), sub in 0u8..32) {
        let items: Vec<Vec<SdesItem<'_>>> = chunks.iter().map(|(_, its)| its.iter().map(|(k, v)| SdesItem { kind: *k, value: v }).collect()).collect();
        let chunk_refs: Vec<(u32, &[SdesItem<'_>])> = chunks.iter().zip(&items).map(|((s, _), i)| (*s, &i[..])).collect();
        let app_bytes: Vec<u8> = app_data.iter().flat_map(|d| d.to_be_bytes()).collect();
        let app = App { subtype: sub, ssrc: 7, name: *b"TEST", data: &app_bytes };
        let mut buf = [0u8; 4000];
        let mut w = RtcpWriter::new(&mut buf);
        w.sdes(&chunk_refs).unwrap();
        w.bye(&ssrcs, reason.as_deref()).unwrap();
        let before_app = w.len();
        w.app(&app).unwrap();
        let n = w.len();
        let ours = ours_parse(&buf[..n]);
        let RtcpPacket::Sdes(s) = ours[0] else { panic!() };
        let got: SdesChunks = s.chunks().map(|c| (c.ssrc, c.items().map(|i| (i.kind, i.value.to_vec())).collect())).collect();
        prop_assert_eq!(&got, &chunks);
        let RtcpPacket::Bye(b) = ours[1] else { panic!() };
        prop_assert_eq!(b.ssrcs().collect::<Vec<_>>(), ssrcs.clone());
        prop_assert_eq!(b.reason, reason.as_deref());
        let RtcpPacket::App(a) = ours[2] else { panic!() };
        prop_assert_eq!(a, app);

        // rtc-rtcp has no APP type; check SDES and BYE against it.
        let theirs = theirs_parse(&buf[..before_app]);
        let ts = down::<SourceDescription>(theirs[0].as_ref());
        let their_chunks: SdesChunks = ts.chunks.iter().map(|c| (c.source, c.items.iter().map(|i| (i.sdes_type as u8, i.text.to_vec())).collect())).collect();
        prop_assert_eq!(&their_chunks, &chunks);
        let tb = down::<Goodbye>(theirs[1].as_ref());
        prop_assert_eq!(&tb.sources, &ssrcs);
        prop_assert_eq!(&tb.reason[..], reason.as_deref().unwrap_or(&[]));

        // Theirs → ours.
        let t_sdes = SourceDescription { chunks: chunks.iter().map(|(s, its)| SourceDescriptionChunk { source: *s,
            items: its.iter().map(|(k, v)| SourceDescriptionItem { sdes_type: SdesType::from(*k), text: Bytes::copy_from_slice(v) }).collect() }).collect() };
        let tbytes = t_sdes.marshal().unwrap();
        let back = ours_parse(&tbytes);
        let RtcpPacket::Sdes(s2) = back[0] else { panic!() };
        let got2: SdesChunks = s2.chunks().map(|c| (c.ssrc, c.items().map(|i| (i.kind, i.value.to_vec())).collect())).collect();
        prop_assert_eq!(&got2, &chunks);
    }

    #[test]
    fn feedback_roundtrip_and_interop(sender in any::<u32>(), media in any::<u32>(),
                                      lost in prop::collection::btree_set(any::<u16>(), 1..60),
                                      fir in prop::collection::vec((any::<u32>(), any::<u8>()), 1..4),
                                      bitrate in 0u64..(1 << 40), remb_ssrcs in prop::collection::vec(any::<u32>(), 0..4)) {
        let mut pairs = Vec::new();
        NackPair::pack(lost.iter().copied(), |p| pairs.push(p));
        let fir: Vec<FirEntry> = fir.into_iter().map(|(ssrc, seq_nr)| FirEntry { ssrc, seq_nr }).collect();
        let mut buf = [0u8; 2000];
        let mut w = RtcpWriter::new(&mut buf);
        w.nack(sender, media, &pairs).unwrap();
        w.pli(sender, media).unwrap();
        w.fir(sender, &fir).unwrap();
        w.remb(sender, bitrate, &remb_ssrcs).unwrap();
        let n = w.len();
        let ours = ours_parse(&buf[..n]);
        let RtcpPacket::Nack(nk) = ours[0] else { panic!() };
        prop_assert_eq!(nk.pairs().flat_map(|p| p.lost()).collect::<std::collections::BTreeSet<_>>(), lost.clone());
        let RtcpPacket::Pli(pli) = ours[1] else { panic!() };
        prop_assert_eq!(pli, Pli { sender_ssrc: sender, media_ssrc: media });
        let RtcpPacket::Fir(f) = ours[2] else { panic!() };
        prop_assert_eq!(f.entries().collect::<Vec<_>>(), fir.clone());
        let RtcpPacket::Remb(r) = ours[3] else { panic!() };
        prop_assert!(r.bitrate <= bitrate && bitrate - r.bitrate <= bitrate >> 17, "{} vs {}", r.bitrate, bitrate);
        prop_assert_eq!(r.ssrcs().collect::<Vec<_>>(), remb_ssrcs.clone());

        let theirs = theirs_parse(&buf[..n]);
        let tn = down::<TransportLayerNack>(theirs[0].as_ref());
        prop_assert_eq!((tn.sender_ssrc, tn.media_ssrc), (sender, media));
        let tpairs: Vec<NackPair> = tn.nacks.iter().map(|p| NackPair { pid: p.packet_id, blp: p.lost_packets }).collect();
        prop_assert_eq!(&tpairs, &pairs);
        prop_assert_eq!(down::<PictureLossIndication>(theirs[1].as_ref()), &PictureLossIndication { sender_ssrc: sender, media_ssrc: media });
        let tf = down::<FullIntraRequest>(theirs[2].as_ref());
        prop_assert_eq!(tf.fir.iter().map(|e| FirEntry { ssrc: e.ssrc, seq_nr: e.sequence_number }).collect::<Vec<_>>(), fir.clone());
        let tr = down::<ReceiverEstimatedMaximumBitrate>(theirs[3].as_ref());
        prop_assert_eq!(tr.bitrate as u64, r.bitrate);
        prop_assert_eq!(&tr.ssrcs, &remb_ssrcs);

        // Theirs → ours.
        let tn2 = TransportLayerNack { sender_ssrc: sender, media_ssrc: media, nacks: pairs.iter().map(|p| TNack { packet_id: p.pid, lost_packets: p.blp }).collect() };
        let tf2 = FullIntraRequest { sender_ssrc: sender, media_ssrc: 0, fir: fir.iter().map(|e| TFir { ssrc: e.ssrc, sequence_number: e.seq_nr }).collect() };
        let tr2 = ReceiverEstimatedMaximumBitrate { sender_ssrc: sender, bitrate: r.bitrate as f32, ssrcs: remb_ssrcs.clone() };
        let mut tb = tn2.marshal().unwrap().to_vec();
        tb.extend_from_slice(&tf2.marshal().unwrap());
        tb.extend_from_slice(&tr2.marshal().unwrap());
        let back = ours_parse(&tb);
        let RtcpPacket::Nack(nk2) = back[0] else { panic!() };
        prop_assert_eq!(nk2.pairs().collect::<Vec<_>>(), pairs);
        let RtcpPacket::Fir(f2) = back[1] else { panic!() };
        prop_assert_eq!(f2.entries().collect::<Vec<_>>(), fir);
        let RtcpPacket::Remb(r2) = back[2] else { panic!() };
        prop_assert_eq!(r2.bitrate, r.bitrate);
    }

    #[test]
    fn twcc_roundtrip_and_interop(deltas in twcc_deltas(), base in any::<u16>(), rt in -(1i32 << 23)..(1 << 23), fb in any::<u8>()) {
        let hdr = TwccHeader { sender_ssrc: 1, media_ssrc: 2, base_seq: base, reference_time: rt, fb_pkt_count: fb };
        let mut buf = [0u8; 2000];
        let mut w = RtcpWriter::new(&mut buf);
        w.transport_cc(&hdr, &deltas).unwrap();
        let n = w.len();
        let ours = ours_parse(&buf[..n]);
        let RtcpPacket::TransportCc(t) = ours[0] else { panic!() };
        prop_assert_eq!((t.base_seq, t.reference_time, t.fb_pkt_count, t.status_count as usize), (base, rt, fb, deltas.len()));
        let got: Vec<Option<i16>> = t.statuses().map(|s| s.delta).collect();
        prop_assert_eq!(&got, &deltas);
        let seqs: Vec<u16> = t.statuses().map(|s| s.seq).collect();
        prop_assert!(seqs.iter().enumerate().all(|(i, s)| *s == base.wrapping_add(i as u16)));

        let theirs = theirs_parse(&buf[..n]);
        let tt = down::<TransportLayerCc>(theirs[0].as_ref());
        prop_assert_eq!((tt.base_sequence_number, tt.reference_time, tt.fb_pkt_count), (base, rt as u32 & 0xFF_FFFF, fb));
        prop_assert_eq!(&their_statuses(tt), &deltas);

        // Theirs → ours: their re-encoding of the same feedback parses to the same statuses.
        let tb = tt.marshal().unwrap();
        let back = ours_parse(&tb);
        let RtcpPacket::TransportCc(t2) = back[0] else { panic!() };
        prop_assert_eq!(t2.statuses().map(|s| s.delta).collect::<Vec<_>>(), deltas);
    }

    #[test]
    fn xr_roundtrip_and_interop(ssrc in any::<u32>(), ntp in any::<u64>(), items in prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 1..4)) {
        let items: Vec<DlrrItem> = items.into_iter().map(|(ssrc, last_rr, delay_since_last_rr)| DlrrItem { ssrc, last_rr, delay_since_last_rr }).collect();
        let mut buf = [0u8; 500];
        let mut w = RtcpWriter::new(&mut buf);
        w.xr(ssrc, &[XrBlockOut::ReceiverReferenceTime { ntp_time: ntp }, XrBlockOut::Dlrr(&items)]).unwrap();
        let n = w.len();
        let ours = ours_parse(&buf[..n]);
        let RtcpPacket::Xr(x) = ours[0] else { panic!() };
        prop_assert_eq!(x.ssrc, ssrc);
        let blocks: Vec<XrBlock<'_>> = x.blocks().collect();
        prop_assert_eq!(blocks[0], XrBlock::ReceiverReferenceTime { ntp_time: ntp });
        let XrBlock::Dlrr(d) = blocks[1] else { panic!() };
        prop_assert_eq!(d.collect::<Vec<_>>(), items.clone());

        let theirs = theirs_parse(&buf[..n]);
        let tx = down::<ExtendedReport>(theirs[0].as_ref());
        prop_assert_eq!(tx.sender_ssrc, ssrc);
        prop_assert_eq!(down::<ReceiverReferenceTimeReportBlock>(tx.reports[0].as_ref()).ntp_timestamp, ntp);
        let td = down::<DLRRReportBlock>(tx.reports[1].as_ref());
        prop_assert_eq!(td.reports.iter().map(|r| DlrrItem { ssrc: r.ssrc, last_rr: r.last_rr, delay_since_last_rr: r.dlrr }).collect::<Vec<_>>(), items.clone());

        let t2 = ExtendedReport { sender_ssrc: ssrc, reports: vec![
            Box::new(ReceiverReferenceTimeReportBlock { ntp_timestamp: ntp }),
            Box::new(DLRRReportBlock { reports: items.iter().map(|i| DLRRReport { ssrc: i.ssrc, last_rr: i.last_rr, dlrr: i.delay_since_last_rr }).collect() }),
        ] };
        let tb = t2.marshal().unwrap();
        prop_assert_eq!(&tb[..], &buf[..n], "byte-identical encodings");
    }
}

/// Every RTCP seed (webrtc fuzz corpora) parses or errors cleanly in ours; where rtc-rtcp
/// accepts a packet of a type we both decode, we agree on its content.
#[test]
fn fuzz_seed_corpus_parses_or_errors_cleanly() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/fuzz-seeds/rtcp"
    );
    let (mut files, mut ok, mut agreed) = (0, 0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        files += 1;
        let ours: Result<Vec<_>, _> = CompoundIter::new(&data).collect();
        let _ = tympan_rtp::rtcp::fuzz_rtcp_compound(&data);
        let Ok(ours) = ours else { continue };
        ok += 1;
        let Ok(theirs) = rtc_rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(&data)) else {
            continue;
        };
        if theirs.len() != ours.len() {
            continue;
        }
        for (o, t) in ours.iter().zip(&theirs) {
            match o {
                RtcpPacket::SenderReport(sr) => {
                    let t = down::<TSr>(t.as_ref());
                    assert_eq!(
                        (sr.info.ssrc, sr.info.ntp_time, sr.reports.count()),
                        (t.ssrc, t.ntp_time, t.reports.len())
                    );
                    agreed += 1;
                }
                RtcpPacket::ReceiverReport(rr) => {
                    let t = down::<TRr>(t.as_ref());
                    assert_eq!(
                        rr.reports.map(|b| to_theirs(&b)).collect::<Vec<_>>(),
                        t.reports
                    );
                    agreed += 1;
                }
                RtcpPacket::Nack(n) => {
                    let t = down::<TransportLayerNack>(t.as_ref());
                    assert_eq!(
                        n.pairs().map(|p| (p.pid, p.blp)).collect::<Vec<_>>(),
                        t.nacks
                            .iter()
                            .map(|p| (p.packet_id, p.lost_packets))
                            .collect::<Vec<_>>()
                    );
                    agreed += 1;
                }
                RtcpPacket::TransportCc(tc) => {
                    let t = down::<TransportLayerCc>(t.as_ref());
                    assert_eq!(
                        tc.statuses().map(|s| s.delta).collect::<Vec<_>>(),
                        their_statuses(t)
                    );
                    agreed += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!(files, 76);
    assert!(ok >= 30, "most seeds are valid RTCP: {ok}");
    assert!(agreed >= 10, "cross-checked {agreed} packets");
}

/// Runs longer than a run-length chunk holds (0x1FFF), runs of large deltas, and vectors
/// broken by a large delta at every position: rtc-rtcp reads what we write.
#[test]
fn twcc_long_runs_and_mixed_vectors_interop() {
    let mut deltas: Vec<Option<i16>> = Vec::new();
    deltas.extend(std::iter::repeat_n(Some(3), 9000));
    deltas.extend(std::iter::repeat_n(None, 8300));
    deltas.extend(std::iter::repeat_n(Some(-2), 20));
    for k in 0..14 {
        for j in 0..14 {
            deltas.push(if j == k {
                Some(1000)
            } else {
                Some((j * 7) as i16)
            });
        }
        deltas.push(None);
    }
    deltas.extend(std::iter::repeat_n(Some(-7), 9));
    let hdr = TwccHeader {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_seq: 65000,
        reference_time: 12,
        fb_pkt_count: 3,
    };
    let mut buf = vec![0u8; 20_000];
    let mut w = RtcpWriter::new(&mut buf);
    w.transport_cc(&hdr, &deltas).unwrap();
    let n = w.len();
    let ours = ours_parse(&buf[..n]);
    let RtcpPacket::TransportCc(t) = ours[0] else {
        panic!()
    };
    assert_eq!(t.statuses().map(|s| s.delta).collect::<Vec<_>>(), deltas);
    let theirs = theirs_parse(&buf[..n]);
    let tt = down::<TransportLayerCc>(theirs[0].as_ref());
    assert_eq!(tt.packet_status_count as usize, deltas.len());
    assert_eq!(their_statuses(tt), deltas);
    // Tight buffer (exact-size path): identical bytes.
    let mut tight = vec![0u8; n];
    let mut w = RtcpWriter::new(&mut tight);
    w.transport_cc(&hdr, &deltas).unwrap();
    assert_eq!(w.as_bytes(), &buf[..n]);
}

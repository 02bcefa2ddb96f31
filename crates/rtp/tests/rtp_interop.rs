//! proptest round trips for RTP, cross-checked against `rtc-rtp` (webrtc-rs) in both directions,
//! and the RTP fuzz seed corpus.

use bytes::Bytes;
use proptest::prelude::*;
use rtc_rtp::header::{EXTENSION_PROFILE_ONE_BYTE, EXTENSION_PROFILE_TWO_BYTE, Extension, Header};
use rtc_rtp::packet::Packet;
use rtc_shared::marshal::{Marshal, Unmarshal};
use tympan_rtp::rtp::{ExtensionForm, RtpPacket, RtpPacketMut, RtpWriter};

#[derive(Debug, Clone)]
struct Input {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    csrcs: Vec<u32>,
    two_byte: bool,
    exts: Vec<(u8, Vec<u8>)>,
    payload: Vec<u8>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..16),
        any::<bool>(),
    )
        .prop_flat_map(|(marker, pt, seq, ts, ssrc, csrcs, two_byte)| {
            let ext = if two_byte {
                (1u8..=255, prop::collection::vec(any::<u8>(), 0..20)).boxed()
            } else {
                (1u8..=14, prop::collection::vec(any::<u8>(), 1..=16)).boxed()
            };
            (
                Just((marker, pt, seq, ts, ssrc, csrcs, two_byte)),
                prop::collection::vec(ext, 0..5).prop_map(|v| {
                    let mut seen = std::collections::BTreeSet::new();
                    v.into_iter()
                        .filter(|(id, _)| seen.insert(*id))
                        .collect::<Vec<_>>()
                }),
                prop::collection::vec(any::<u8>(), 0..300),
            )
        })
        .prop_map(
            |((marker, pt, seq, ts, ssrc, csrcs, two_byte), exts, payload)| Input {
                marker,
                pt,
                seq,
                ts,
                ssrc,
                csrcs,
                two_byte,
                exts,
                payload,
            },
        )
}

fn their_packet(i: &Input) -> Packet {
    let mut h = Header {
        version: 2,
        marker: i.marker,
        payload_type: i.pt,
        sequence_number: i.seq,
        timestamp: i.ts,
        ssrc: i.ssrc,
        csrc: i.csrcs.clone(),
        ..Default::default()
    };
    if !i.exts.is_empty() {
        h.extension = true;
        h.extension_profile = if i.two_byte {
            EXTENSION_PROFILE_TWO_BYTE
        } else {
            EXTENSION_PROFILE_ONE_BYTE
        };
        h.extensions = i
            .exts
            .iter()
            .map(|(id, v)| Extension {
                id: *id,
                payload: Bytes::copy_from_slice(v),
            })
            .collect();
    }
    Packet {
        header: h,
        payload: Bytes::copy_from_slice(&i.payload),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rtp_roundtrip_and_interop(i in input(), new_ssrc in any::<u32>(), new_seq in any::<u16>(), new_ts in any::<u32>()) {
        let exts: Vec<(u8, &[u8])> = i.exts.iter().map(|(id, v)| (*id, &v[..])).collect();
        let w = RtpWriter { marker: i.marker, csrcs: &i.csrcs, extensions: &exts, force_two_byte: i.two_byte, ..RtpWriter::new(i.pt, i.seq, i.ts, i.ssrc, &i.payload) };
        let mut buf = vec![0u8; w.encoded_len()];
        let n = w.write(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        let p = RtpPacket::parse(&buf).unwrap();
        prop_assert_eq!((p.marker(), p.payload_type(), p.sequence_number(), p.timestamp(), p.ssrc()), (i.marker, i.pt, i.seq, i.ts, i.ssrc));
        prop_assert_eq!((0..p.csrc_count()).map(|k| p.csrc(k).unwrap()).collect::<Vec<_>>(), i.csrcs.clone());
        prop_assert_eq!(p.extensions().map(|e| (e.id, e.data.to_vec())).collect::<Vec<_>>(), i.exts.clone());
        prop_assert_eq!(p.payload(), &i.payload[..]);
        if !i.exts.is_empty() {
            let form = if i.two_byte { ExtensionForm::TwoByte } else { ExtensionForm::OneByte };
            prop_assert_eq!(p.extension_form(), Some(form));
        }

        // Ours → theirs.
        let theirs = Packet::unmarshal(&mut Bytes::copy_from_slice(&buf)).unwrap();
        prop_assert_eq!(&theirs, &{
            let mut t = their_packet(&i);
            t.header.extensions_padding = theirs.header.extensions_padding;
            t
        });
        // Theirs → ours: byte-identical encodings.
        let tb = their_packet(&i).marshal().unwrap();
        prop_assert_eq!(&tb[..], &buf[..]);

        // In-place rewrite of SSRC/seq/ts/PT and an extension value, then theirs agrees.
        let mut p = RtpPacketMut::parse(&mut buf).unwrap();
        p.set_ssrc(new_ssrc);
        p.set_sequence_number(new_seq);
        p.set_timestamp(new_ts);
        p.set_payload_type(i.pt ^ 1);
        if let Some((id, v)) = i.exts.first() {
            let nv: Vec<u8> = v.iter().map(|b| !b).collect();
            p.set_extension(*id, &nv).unwrap();
        }
        let t2 = Packet::unmarshal(&mut Bytes::copy_from_slice(&buf)).unwrap();
        prop_assert_eq!((t2.header.ssrc, t2.header.sequence_number, t2.header.timestamp, t2.header.payload_type), (new_ssrc, new_seq, new_ts, i.pt ^ 1));
        if let Some((id, v)) = i.exts.first() {
            let nv: Vec<u8> = v.iter().map(|b| !b).collect();
            prop_assert_eq!(t2.header.get_extension(*id).unwrap().to_vec(), nv);
        }
        prop_assert_eq!(&t2.payload[..], &i.payload[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = tympan_rtp::rtp::fuzz_rtp_header(&data);
    }
}

#[test]
fn fuzz_seed_corpus_parses_or_errors_cleanly() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/fuzz-seeds/rtp"
    );
    let (mut files, mut agreed) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        files += 1;
        let _ = tympan_rtp::rtp::fuzz_rtp_header(&data);
        let ours = RtpPacket::parse(&data);
        let theirs = Packet::unmarshal(&mut Bytes::copy_from_slice(&data));
        if let (Ok(o), Ok(t)) = (&ours, &theirs) {
            assert_eq!(
                (o.ssrc(), o.sequence_number(), o.timestamp(), o.payload()),
                (
                    t.header.ssrc,
                    t.header.sequence_number,
                    t.header.timestamp,
                    &t.payload[..]
                )
            );
            agreed += 1;
        }
    }
    assert_eq!(files, 8);
    assert!(agreed >= 1);
}

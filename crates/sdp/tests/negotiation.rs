//! JSEP negotiation against real browser offers. Our answers are parsed by Mozilla's
//! `webrtc-sdp` (Firefox's SDP parser) with `fail_on_warning`, and their content is read back
//! through its model: payload types, RTX apt, setup, BUNDLE, rejected sections, simulcast.

use std::path::Path;

use tympan_sdp::jsep::{self, IceCredentials, LocalCapabilities, NegotiationErrorKind, TrackSpec};
use tympan_sdp::{Attribute, Direction, Fingerprint, MediaKind, Setup, parse};
use webrtc_sdp::attribute_type::{SdpAttribute, SdpAttributeGroupSemantic};
use webrtc_sdp::media_type::{SdpFormatList, SdpMedia};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata");
const CHROME_OFFER: &str = include_str!("../testdata/chrome-bundle-offer.sdp");

fn corpus(path: &str) -> String {
    std::fs::read_to_string(Path::new(TESTDATA).join(path)).expect("corpus file")
}

fn caps() -> LocalCapabilities {
    let fingerprint = Fingerprint {
        hash_function: "sha-256".into(),
        bytes: (0u8..32).collect(),
    };
    LocalCapabilities::webrtc_default(
        IceCredentials::new("tympanUfrag", "tympanPasswordTympanPwd1"),
        fingerprint,
    )
}

/// Parses our output with webrtc-sdp, failing on any warning.
fn moz(text: &str) -> webrtc_sdp::SdpSession {
    webrtc_sdp::parse_sdp(text, true)
        .unwrap_or_else(|e| panic!("webrtc-sdp rejects our SDP: {e}\n{text}"))
}

fn formats(m: &SdpMedia) -> Vec<u32> {
    match m.get_formats() {
        SdpFormatList::Integers(v) => v.clone(),
        other => panic!("expected payload types, got {other}"),
    }
}

fn setup(m: &SdpMedia) -> Option<String> {
    m.get_attributes().iter().find_map(|a| match a {
        SdpAttribute::Setup(s) => Some(s.to_string()),
        _ => None,
    })
}

fn bundle(s: &webrtc_sdp::SdpSession) -> Vec<String> {
    s.attribute
        .iter()
        .find_map(|a| match a {
            SdpAttribute::Group(g) if matches!(g.semantics, SdpAttributeGroupSemantic::Bundle) => {
                Some(g.tags.clone())
            }
            _ => None,
        })
        .unwrap_or_default()
}

fn apt_of(m: &SdpMedia, pt: u8) -> Option<u8> {
    m.get_attributes().iter().find_map(|a| match a {
        SdpAttribute::Fmtp(f) if f.payload_type == pt => f.parameters.rtx.as_ref().map(|r| r.apt),
        _ => None,
    })
}

fn codec_name(m: &SdpMedia, pt: u8) -> Option<String> {
    m.get_attributes().iter().find_map(|a| match a {
        SdpAttribute::Rtpmap(r) if r.payload_type == pt => Some(r.codec_name.clone()),
        _ => None,
    })
}

fn extmap_ids(m: &SdpMedia) -> Vec<(u16, String)> {
    m.get_attributes()
        .iter()
        .filter_map(|a| match a {
            SdpAttribute::Extmap(e) => Some((e.id, e.url.clone())),
            _ => None,
        })
        .collect()
}

fn has(m: &SdpMedia, pred: impl Fn(&SdpAttribute) -> bool) -> bool {
    m.get_attributes().iter().any(pred)
}

#[test]
fn chrome_simulcast_offer_is_answered_and_firefox_parser_accepts_it() {
    let offer = parse(CHROME_OFFER).expect("fixture parses");
    let answer = jsep::create_answer(&offer, &caps()).expect("answer");
    let text = answer.description.to_string();
    let sdp = moz(&text);

    assert_eq!(sdp.media.len(), 3);
    assert_eq!(bundle(&sdp), ["0", "1", "2"]);
    for m in &sdp.media {
        assert_eq!(setup(m), Some("active".to_string()), "offer was actpass");
        assert!(has(
            m,
            |a| matches!(a, SdpAttribute::IceUfrag(u) if u == "tympanUfrag")
        ));
        assert!(has(m, |a| matches!(a, SdpAttribute::Fingerprint(_))));
    }

    // Audio: opus and PCMU with the offerer's payload types, in our preference order.
    let audio = &sdp.media[0];
    assert_eq!(audio.get_port(), 9);
    assert_eq!(formats(audio), [111, 0]);
    assert_eq!(codec_name(audio, 111).as_deref(), Some("opus"));
    assert!(has(audio, |a| matches!(a, SdpAttribute::Sendrecv)));
    assert!(has(audio, |a| matches!(a, SdpAttribute::RtcpMux)));
    assert_eq!(
        extmap_ids(audio)
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "the offerer's ids for the extensions we support"
    );

    // Video: VP8, VP9 profile 0 and H264 constrained-baseline/packetization-mode 1 only, each
    // with the RTX payload type the offer paired with it.
    let video = &sdp.media[1];
    assert_eq!(formats(video), [96, 98, 106, 97, 99, 107]);
    assert_eq!(apt_of(video, 97), Some(96));
    assert_eq!(apt_of(video, 99), Some(98));
    assert_eq!(apt_of(video, 107), Some(106));
    assert_eq!(codec_name(video, 106).as_deref(), Some("H264"));
    let h264 = video
        .get_attributes()
        .iter()
        .find_map(|a| match a {
            SdpAttribute::Fmtp(f) if f.payload_type == 106 => Some(f.parameters.clone()),
            _ => None,
        })
        .expect("H264 fmtp");
    assert_eq!(h264.profile_level_id, 0x42e01f);
    assert_eq!(h264.packetization_mode, 1);
    assert!(
        has(video, |a| matches!(a, SdpAttribute::Recvonly)),
        "offer was sendonly"
    );
    assert_eq!(
        extmap_ids(video)
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [2, 3, 4, 10, 11]
    );
    // Simulcast answered with recv and the rids.
    let sim = video
        .get_attributes()
        .iter()
        .find_map(|a| match a {
            SdpAttribute::Simulcast(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a=simulcast");
    assert!(sim.send.is_empty());
    let recv: Vec<Vec<String>> = sim
        .receive
        .iter()
        .map(|v| v.ids.iter().map(|i| i.id.clone()).collect())
        .collect();
    assert_eq!(recv, [["q"], ["h"], ["f"]]);
    let rids: Vec<(String, String)> = video
        .get_attributes()
        .iter()
        .filter_map(|a| match a {
            SdpAttribute::Rid(r) => Some((r.id.clone(), r.direction.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        rids,
        [
            ("q".to_string(), "recv".to_string()),
            ("h".to_string(), "recv".to_string()),
            ("f".to_string(), "recv".to_string())
        ]
    );

    // Data channel: the RFC 8841 syntax, our port and message size.
    let data = &sdp.media[2];
    assert!(
        matches!(data.get_formats(), SdpFormatList::Strings(s) if s == &["webrtc-datachannel"])
    );
    assert!(has(data, |a| matches!(a, SdpAttribute::SctpPort(5000))));
    assert!(has(data, |a| matches!(
        a,
        SdpAttribute::MaxMessageSize(262144)
    )));

    // What the engine gets.
    let n = &answer.negotiated;
    assert_eq!(n.local_setup, Setup::Active);
    assert_eq!(n.media[1].receive_rids, ["q", "h", "f"]);
    assert_eq!(n.media[1].direction, Direction::RecvOnly);
    assert_eq!(n.media[0].remote_ssrcs, [3735928559]);
    assert_eq!(
        n.media[2].sctp.map(|s| s.remote_max_message_size),
        Some(262144)
    );
    assert_eq!(
        n.media[0].remote_ice.as_ref().map(|i| i.ufrag.as_str()),
        Some("Kx4v")
    );

    // The offerer side accepts our answer.
    let applied = jsep::apply_answer(&offer, &answer.description).expect("apply");
    assert_eq!(applied.local_setup, Setup::Passive);
    assert_eq!(applied.media[1].send_rids, ["q", "h", "f"]);
}

#[test]
fn firefox_offer_with_legacy_data_channel() {
    let offer = parse(&corpus("fuzz-seeds/sdp/firefox-1.sdp")).expect("parses");
    let answer = jsep::create_answer(&offer, &caps()).expect("answer");
    let sdp = moz(&answer.description.to_string());
    assert_eq!(bundle(&sdp), ["sdparta_0", "sdparta_1", "sdparta_2"]);
    assert_eq!(formats(&sdp.media[0]), [109, 0]);
    // VP8, and H264 126 (packetization-mode 1) but not 97 (mode 0); no RTX was offered.
    assert_eq!(formats(&sdp.media[1]), [120, 126]);
    let data = &sdp.media[2];
    assert_eq!(data.get_proto().to_string(), "DTLS/SCTP");
    let sctpmap = data
        .get_attributes()
        .iter()
        .find_map(|a| match a {
            SdpAttribute::Sctpmap(s) => Some(s.clone()),
            _ => None,
        })
        .expect("legacy offer answered with a=sctpmap");
    assert_eq!(sctpmap.port, 5000);
    assert_eq!(sctpmap.channels, 256, "the offer's stream count");
    for m in &sdp.media {
        assert_eq!(setup(m), Some("active".to_string()));
    }
}

#[test]
fn chrome_offer_with_setup_active_is_answered_passive() {
    // Mozilla's 41.sdp is a Chrome description that says setup:active.
    let offer = parse(&corpus("sdp/mozilla/41.sdp")).expect("parses");
    let answer = jsep::create_answer(&offer, &caps()).expect("answer");
    let sdp = moz(&answer.description.to_string());
    assert_eq!(bundle(&sdp), ["audio", "video"]);
    for m in &sdp.media {
        assert_eq!(setup(m), Some("passive".to_string()));
    }
    assert_eq!(formats(&sdp.media[0]), [111, 0]);
    assert_eq!(formats(&sdp.media[1]), [100]);
    assert_eq!(answer.negotiated.local_setup, Setup::Passive);
}

#[test]
fn unsupported_sections_are_rejected_with_port_zero_and_left_out_of_bundle() {
    let offer = parse(CHROME_OFFER).expect("fixture parses");
    let mut caps = caps();
    caps.data_channel = None;
    caps.codecs.retain(|c| c.kind == MediaKind::Audio);
    let answer = jsep::create_answer(&offer, &caps).expect("answer");
    let sdp = moz(&answer.description.to_string());
    assert_eq!(bundle(&sdp), ["0"]);
    assert_eq!(sdp.media[0].get_port(), 9);
    assert_eq!(sdp.media[1].get_port(), 0, "no video codec in common");
    assert_eq!(sdp.media[2].get_port(), 0, "no data channel support");
    assert!(answer.negotiated.media[1].rejected);
    assert!(answer.negotiated.media[2].rejected);

    // RFC 4317 offer (no BUNDLE, RTP/AVP): H.261/MPV video is rejected, audio kept.
    let offer = parse(&corpus("fuzz-seeds/sdp/2.sdp")).expect("parses");
    let answer = jsep::create_answer(&offer, &self::caps()).expect("answer");
    let sdp = webrtc_sdp::parse_sdp(&answer.description.to_string(), false).expect("parses");
    assert_eq!(formats(&sdp.media[0]), [0]);
    assert_eq!(sdp.media[1].get_port(), 0);
    assert_eq!(formats(&sdp.media[1]), [31, 32]);
}

#[test]
fn real_browser_offer_answer_pairs_are_applied() {
    // Opera (Chromium) offer and the answer it got: RTX pairs, BUNDLE, legacy data channel.
    let offer = parse(&corpus("fuzz-seeds/sdp/opera-1.sdp")).expect("parses");
    let answer = parse(&corpus("fuzz-seeds/sdp/opera-2.sdp")).expect("parses");
    let n = jsep::apply_answer(&offer, &answer).expect("valid pair");
    assert_eq!(n.bundle, ["audio", "video", "data"]);
    assert_eq!(n.local_setup, Setup::Passive, "answer is active");
    let video = &n.media[1];
    let rtx: Vec<(u8, Option<u8>)> = video
        .codecs
        .iter()
        .map(|c| (c.payload_type, c.rtx_payload_type))
        .collect();
    assert_eq!(
        rtx,
        [
            (100, Some(96)),
            (101, Some(97)),
            (116, Some(98)),
            (117, None)
        ]
    );
    assert_eq!(video.direction, Direction::SendOnly, "answer is recvonly");
    assert_eq!(video.extensions.len(), 3);
    assert_eq!(n.media[2].sctp.map(|s| s.remote_port), Some(5000));

    // Firefox offer and answer.
    let offer = parse(&corpus("fuzz-seeds/sdp/firefox-1.sdp")).expect("parses");
    let answer = parse(&corpus("fuzz-seeds/sdp/firefox-2.sdp")).expect("parses");
    let n = jsep::apply_answer(&offer, &answer).expect("valid pair");
    assert_eq!(n.media[0].codecs.len(), 1);
    assert_eq!(n.media[0].codecs[0].name, "opus");
    assert_eq!(n.media[1].remote_ssrcs, [3480150809]);
}

#[test]
fn invalid_answers_name_the_m_line_and_attribute() {
    let offer_text = corpus("fuzz-seeds/sdp/opera-1.sdp");
    let answer_text = corpus("fuzz-seeds/sdp/opera-2.sdp");
    let offer = parse(&offer_text).unwrap();

    // actpass is not an answer.
    let bad = parse(&answer_text.replacen("a=setup:active", "a=setup:actpass", 1)).unwrap();
    let e = jsep::apply_answer(&offer, &bad).unwrap_err();
    assert_eq!(
        (e.m_line, e.mid.as_deref(), e.attribute),
        (Some(0), Some("audio"), "setup")
    );
    assert!(matches!(e.kind, NegotiationErrorKind::SetupConflict { .. }));

    // A payload type that was not offered.
    let bad = parse(&answer_text.replacen(
        "m=video 9 UDP/TLS/RTP/SAVPF 100 101",
        "m=video 9 UDP/TLS/RTP/SAVPF 100 101 55",
        1,
    ))
    .unwrap();
    let e = jsep::apply_answer(&offer, &bad).unwrap_err();
    assert_eq!((e.m_line, e.mid.as_deref()), (Some(1), Some("video")));
    assert_eq!(e.kind, NegotiationErrorKind::PayloadTypeNotOffered(55));

    // An extension id remapped to another URI.
    let bad = parse(&answer_text.replacen(
        "a=extmap:4 urn:3gpp:video-orientation",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:toffset",
        1,
    ))
    .unwrap();
    let e = jsep::apply_answer(&offer, &bad).unwrap_err();
    assert_eq!((e.m_line, e.attribute), (Some(1), "extmap"));
    assert_eq!(e.kind, NegotiationErrorKind::ExtensionChanged(4));

    // A codec remapped.
    let bad = parse(&answer_text.replacen("a=rtpmap:100 VP8/90000", "a=rtpmap:100 H264/90000", 1))
        .unwrap();
    let e = jsep::apply_answer(&offer, &bad).unwrap_err();
    assert_eq!((e.m_line, e.attribute), (Some(1), "rtpmap"));
    assert_eq!(e.kind, NegotiationErrorKind::CodecChanged(100));

    // Sending where the offer does not receive.
    let offer2 = parse(&offer_text.replacen("a=sendrecv", "a=sendonly", 1)).unwrap();
    let bad = parse(&answer_text.replacen("a=recvonly", "a=sendonly", 1)).unwrap();
    let e = jsep::apply_answer(&offer2, &bad).unwrap_err();
    assert_eq!((e.m_line, e.attribute), (Some(0), "direction"));

    // A dropped m-line.
    let cut = answer_text.find("m=application").expect("data section");
    let bad = parse(&answer_text[..cut]).unwrap();
    let e = jsep::apply_answer(&offer, &bad).unwrap_err();
    assert_eq!(
        e.kind,
        NegotiationErrorKind::MediaCount {
            offered: 3,
            answered: 2
        }
    );

    // No ICE password.
    let bad = parse(&answer_text.replace("a=ice-pwd:ByUn1Od88VokVM0rtQ/bbeZa\n", "")).unwrap();
    let e = jsep::apply_answer(&offer, &bad).unwrap_err();
    assert_eq!((e.m_line, e.attribute), (Some(0), "ice-pwd"));
    assert!(!e.to_string().is_empty());
}

#[test]
fn our_offer_is_accepted_by_firefox_parser_and_answered_by_ourselves() {
    let mut video = TrackSpec::new(MediaKind::Video);
    video.direction = Direction::SendOnly;
    video.send_rids = vec!["lo".into(), "hi".into()];
    let mut audio = TrackSpec::new(MediaKind::Audio);
    audio.ssrc = Some((1234, "cname1".into()));
    audio.msid = Some(tympan_sdp::Msid {
        stream_id: "s".into(),
        track_id: Some("t".into()),
    });
    let offer = jsep::create_offer(&caps(), &[audio, video]);
    let text = offer.to_string();
    let sdp = moz(&text);
    assert_eq!(bundle(&sdp), ["0", "1", "2"]);
    for m in &sdp.media {
        assert_eq!(setup(m), Some("actpass".to_string()));
    }
    assert_eq!(formats(&sdp.media[0]), [111, 0]);
    assert_eq!(formats(&sdp.media[1]), [96, 97, 98, 99, 106, 107]);
    assert_eq!(apt_of(&sdp.media[1], 107), Some(106));
    assert_eq!(parse(&text).unwrap(), offer);

    let answer = jsep::create_answer(&offer, &caps()).unwrap();
    moz(&answer.description.to_string());
    let n = jsep::apply_answer(&offer, &answer.description).unwrap();
    assert_eq!(n.media[1].send_rids, ["lo", "hi"]);
    assert_eq!(n.media[1].direction, Direction::SendOnly);
    assert!(matches!(
        offer.media[1].attribute("simulcast"),
        Some(Attribute::Simulcast(_))
    ));
}

#[test]
fn answer_can_send_local_tracks() {
    // Firefox offers sendrecv audio and video; we send one video track with RTX and receive
    // audio only.
    let offer = parse(&corpus("fuzz-seeds/sdp/firefox-1.sdp")).expect("parses");
    let mut video = TrackSpec::new(MediaKind::Video);
    video.msid = Some(tympan_sdp::Msid {
        stream_id: "sfu-stream".into(),
        track_id: Some("sfu-video".into()),
    });
    video.ssrc = Some((1111, "sfu".into()));
    video.rtx_ssrc = Some(2222);
    let mut audio = TrackSpec::new(MediaKind::Audio);
    audio.direction = Direction::RecvOnly;
    let tracks = [
        ("sdparta_0".to_string(), audio),
        ("sdparta_1".to_string(), video),
    ];
    let answer = jsep::create_answer_with_tracks(&offer, &caps(), &tracks).expect("answer");
    let sdp = moz(&answer.description.to_string());
    assert!(has(&sdp.media[0], |a| matches!(a, SdpAttribute::Recvonly)));
    assert!(!has(&sdp.media[0], |a| matches!(a, SdpAttribute::Msid(_))));
    let v = &sdp.media[1];
    assert!(has(v, |a| matches!(a, SdpAttribute::Sendrecv)));
    assert!(has(
        v,
        |a| matches!(a, SdpAttribute::Msid(m) if m.id == "sfu-stream")
    ));
    let ssrcs: Vec<u32> = v
        .get_attributes()
        .iter()
        .filter_map(|a| match a {
            SdpAttribute::Ssrc(s) => Some(s.id),
            _ => None,
        })
        .collect();
    assert_eq!(ssrcs, [1111, 2222]);
    assert!(has(
        v,
        |a| matches!(a, SdpAttribute::SsrcGroup(_, g) if g.len() == 2)
    ));
    assert_eq!(answer.negotiated.media[0].direction, Direction::RecvOnly);
}

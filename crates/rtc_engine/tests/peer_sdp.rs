//! Our `Peer` answering real browser offers (Firefox, and Chromium-based Opera, from the
//! shared corpora), checked with Mozilla's `webrtc-sdp` parser (crates.io) for what a browser
//! needs; glare; renegotiation rules (m-line order, stable mids, same ICE/DTLS identity).

use std::sync::Arc;
use std::time::Instant;

use tympan_dtls::{DtlsCertificate, DtlsConfig, DtlsContext};
use tympan_ice::agent::{Candidate, TcpType};
use tympan_rtc_engine::peer::{Peer, PeerConfig, PeerError, SignalingState};
use webrtc_sdp::attribute_type::{
    SdpAttribute, SdpAttributeGroupSemantic, SdpAttributeSetup, SdpAttributeType,
};
use webrtc_sdp::media_type::SdpMediaValue;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata");

fn peer(now: Instant) -> Peer {
    let ctx = DtlsContext::new(
        DtlsCertificate::generate().expect("certificate"),
        DtlsConfig::default(),
    )
    .expect("context");
    Peer::new(
        PeerConfig {
            local_candidates: vec![
                Candidate::host("192.0.2.10:3478".parse().unwrap()),
                Candidate::host_tcp("192.0.2.10:3479".parse().unwrap(), TcpType::Passive),
            ],
            dtls: Arc::new(ctx),
            seed: 7,
            cname: "sfu".into(),
        },
        now,
    )
}

fn corpus(path: &str) -> String {
    let p = format!("{TESTDATA}/{path}");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Checks an answer with webrtc-sdp for what a browser needs from an ICE-lite server.
fn check_browser_answer(answer: &str, offer_mids: &[&str]) -> webrtc_sdp::SdpSession {
    let session = webrtc_sdp::parse_sdp(answer, true)
        .unwrap_or_else(|e| panic!("webrtc-sdp rejects our answer: {e}\n{answer}"));
    assert!(
        session.get_attribute(SdpAttributeType::IceLite).is_some(),
        "a=ice-lite"
    );
    let Some(SdpAttribute::Group(group)) = session.get_attribute(SdpAttributeType::Group) else {
        panic!("no BUNDLE group\n{answer}");
    };
    assert!(matches!(group.semantics, SdpAttributeGroupSemantic::Bundle));
    assert_eq!(
        session.media.len(),
        offer_mids.len(),
        "one m-line per offered"
    );
    for (m, want_mid) in session.media.iter().zip(offer_mids) {
        let Some(SdpAttribute::Mid(mid)) = m.get_attribute(SdpAttributeType::Mid) else {
            panic!("m-line without mid\n{answer}");
        };
        assert_eq!(mid, want_mid, "mids in the offer's order");
        if m.get_port() == 0 {
            continue;
        }
        assert!(group.tags.contains(mid), "mid {mid} bundled");
        assert!(
            matches!(
                m.get_attribute(SdpAttributeType::Setup),
                Some(SdpAttribute::Setup(SdpAttributeSetup::Passive))
            ),
            "a=setup:passive (we are the DTLS server) on {mid}"
        );
        assert!(
            matches!(
                m.get_attribute(SdpAttributeType::Fingerprint),
                Some(SdpAttribute::Fingerprint(_))
            ),
            "fingerprint on {mid}"
        );
        assert!(m.get_attribute(SdpAttributeType::IceUfrag).is_some());
        assert!(m.get_attribute(SdpAttributeType::IcePwd).is_some());
        let candidates = m.get_attributes_of_type(SdpAttributeType::Candidate);
        assert_eq!(
            candidates.len(),
            2,
            "UDP and TCP passive candidates on {mid}"
        );
        assert!(
            m.get_attribute(SdpAttributeType::EndOfCandidates).is_some(),
            "a=end-of-candidates"
        );
        if *m.get_type() != SdpMediaValue::Application {
            assert!(
                m.get_attribute(SdpAttributeType::RtcpMux).is_some(),
                "rtcp-mux on {mid}"
            );
        }
    }
    session
}

#[test]
fn answers_firefox_offer() {
    let now = Instant::now();
    let mut p = peer(now);
    let offer = corpus("fuzz-seeds/sdp/firefox-1.sdp");
    let answer = p.accept_offer(now, &offer).expect("answer Firefox");
    let s = check_browser_answer(&answer, &["sdparta_0", "sdparta_1", "sdparta_2"]);
    // Audio: Opus (Firefox's PT 109); video: VP8 (120) preferred, H264 pm=1 (126) too.
    let audio: Vec<_> = p.media().filter(|m| m.mid == "sdparta_0").collect();
    assert_eq!(audio[0].codecs[0].name, "opus");
    assert_eq!(audio[0].codecs[0].payload_type, 109);
    assert!(audio[0].receiving && !audio[0].sending);
    let video: Vec<_> = p.media().filter(|m| m.mid == "sdparta_1").collect();
    let names: Vec<(&str, u8)> = video[0]
        .codecs
        .iter()
        .map(|c| (c.name.as_str(), c.payload_type))
        .collect();
    assert_eq!(names, vec![("VP8", 120), ("H264", 126)], "{answer}");
    // Receive-only answer to a sendrecv offer: we publish nothing here.
    assert!(matches!(
        s.media[0].get_attribute(SdpAttributeType::Recvonly),
        Some(SdpAttribute::Recvonly)
    ));
    // Legacy data channel section answered in its own format.
    assert!(
        answer.contains("a=sctpmap:5000 webrtc-datachannel"),
        "{answer}"
    );
    assert_eq!(p.media().count(), 2, "application sections are not listed");
}

#[test]
fn answers_chromium_offer() {
    let now = Instant::now();
    let mut p = peer(now);
    let offer = corpus("fuzz-seeds/sdp/opera-1.sdp");
    let answer = p
        .accept_offer(now, &offer)
        .expect("answer Chromium (Opera)");
    check_browser_answer(&answer, &["audio", "video", "data"]);
    let video: Vec<_> = p.media().filter(|m| m.mid == "video").collect();
    let vp8 = &video[0].codecs[0];
    assert_eq!((vp8.name.as_str(), vp8.payload_type), ("VP8", 100));
    assert_eq!(vp8.rtx_payload_type, Some(96), "RTX kept with its apt");
    // Only extensions we support, with the offer's ids.
    assert!(
        answer.contains("a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")
    );
    assert!(!answer.contains("toffset"));
    assert!(!answer.contains("video-orientation"));
}

#[test]
fn mozilla_offer_without_bundle_is_refused_with_a_reason() {
    // 12.sdp: session-level ICE/fingerprint, no BUNDLE, no mids.
    let now = Instant::now();
    let mut p = peer(now);
    let err = p
        .accept_offer(now, &corpus("sdp/mozilla/12.sdp"))
        .expect_err("no BUNDLE / no mid");
    assert!(matches!(err, PeerError::Negotiation(_)), "{err}");
}

#[test]
fn bad_sdp_is_bad_sdp() {
    let now = Instant::now();
    let mut p = peer(now);
    let err = p
        .accept_offer(now, "v=0\r\nthis is not sdp\r\n")
        .unwrap_err();
    assert!(matches!(err, PeerError::BadSdp(_)), "{err}");
}

#[test]
fn create_offer_needs_a_remote_description_then_glare_and_stale_answer() {
    let now = Instant::now();
    let mut p = peer(now);
    p.add_send_track(tympan_sdp::MediaKind::Audio, 1111, "p1", "t1");
    assert_eq!(p.create_offer(now), Err(PeerError::NotReady));
    assert_eq!(
        p.accept_answer(now, "v=0\r\n"),
        Err(PeerError::StaleAnswer),
        "no offer outstanding"
    );

    let offer = corpus("fuzz-seeds/sdp/opera-1.sdp");
    let first = p.accept_offer(now, &offer).expect("answer");
    assert!(p.needs_offer());
    let ours = p.create_offer(now).expect("offer");
    assert_eq!(p.signaling_state(), SignalingState::HaveLocalOffer);
    // Our offer must parse with webrtc-sdp, keep the m-lines and identity, add ours last.
    let s = webrtc_sdp::parse_sdp(&ours, true).expect("webrtc-sdp parses our offer");
    assert_eq!(s.media.len(), 4);
    let mids: Vec<String> = s
        .media
        .iter()
        .map(|m| match m.get_attribute(SdpAttributeType::Mid) {
            Some(SdpAttribute::Mid(x)) => x.clone(),
            _ => panic!("mid"),
        })
        .collect();
    assert_eq!(mids, ["audio", "video", "data", "s0"]);
    let ufrag = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .map(str::to_string)
    };
    let fp = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("a=fingerprint:"))
            .map(str::to_string)
    };
    assert_eq!(ufrag(&ours), ufrag(&first));
    assert_eq!(fp(&ours), fp(&first));
    assert!(ours.contains("a=sendonly"));
    assert!(ours.contains("a=msid:p1 t1"));
    assert!(ours.contains("a=ssrc:1111 cname:sfu"));
    assert!(ours.contains("a=ssrc:1111 msid:p1 t1"));
    // The publisher sections stay receive-only from our side.
    assert_eq!(ours.matches("a=recvonly").count(), 2, "{ours}");

    // Glare: a remote offer while ours is outstanding.
    assert_eq!(p.accept_offer(now, &offer), Err(PeerError::Glare));
    assert_eq!(p.signaling_state(), SignalingState::HaveLocalOffer);
    // A second offer of ours is refused too.
    assert_eq!(p.create_offer(now), Err(PeerError::NotReady));
}

#[test]
fn remote_reoffer_must_keep_m_lines() {
    let now = Instant::now();
    let mut p = peer(now);
    let offer = corpus("fuzz-seeds/sdp/opera-1.sdp");
    let first = p.accept_offer(now, &offer).expect("answer");
    let ufrag_of = |sdp: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned)
    };
    let first_ufrag = ufrag_of(&first).expect("ufrag");
    assert_eq!(p.local_ufrag(), first_ufrag);
    // The same offer again (a re-offer with nothing new) is fine and answers the same way.
    let again = p.accept_offer(now, &offer).expect("re-offer");
    assert!(again.contains("a=mid:video"));
    assert_eq!(ufrag_of(&again), Some(first_ufrag.clone()), "no restart");
    // Dropping an m-line is refused.
    let cut = offer.split("m=application").next().unwrap().replace(
        "a=group:BUNDLE audio video data",
        "a=group:BUNDLE audio video",
    );
    let err = p.accept_offer(now, &cut).unwrap_err();
    assert!(matches!(err, PeerError::Negotiation(_)), "{err}");
    // An ICE restart (new remote credentials): new local credentials in the answer, and the
    // peer answers to the new ufrag from now on (RFC 8839 §4.4.1.1.1).
    let restarted = offer.replace("1Jyk4q3nLIL5NiMx", "NEWufragNEWufrag");
    assert_ne!(restarted, offer);
    let answer = p
        .accept_offer(now, &restarted)
        .expect("ICE restart accepted");
    let new_ufrag = ufrag_of(&answer).expect("ufrag");
    assert_ne!(new_ufrag, first_ufrag, "new local ufrag");
    assert!(new_ufrag.len() >= 4);
    let pwd = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-pwd:"))
        .expect("pwd");
    assert!(pwd.len() >= 22, "RFC 8839: at least 22 characters");
    assert_eq!(p.local_ufrag(), new_ufrag);
    // Re-offering the restarted credentials is not another restart.
    let again = p.accept_offer(now, &restarted).expect("re-offer");
    assert_eq!(ufrag_of(&again), Some(new_ufrag));
}

#[test]
fn trickled_candidates() {
    let now = Instant::now();
    let mut p = peer(now);
    p.add_remote_candidate(Some(
        "candidate:1 1 udp 2122260223 192.0.2.4 61665 typ host generation 0",
    ))
    .expect("host candidate");
    // mDNS names cannot be resolved by a sans-IO peer and are ignored, not an error.
    p.add_remote_candidate(Some(
        "candidate:2 1 udp 2122260223 3f1e4b5c-0000-4000-8000-000000000000.local 5000 typ host",
    ))
    .expect("mDNS candidate ignored");
    p.add_remote_candidate(None).expect("end of candidates");
    p.add_remote_candidate(Some(""))
        .expect("empty = end of candidates");
    assert!(matches!(
        p.add_remote_candidate(Some("candidate:garbage")),
        Err(PeerError::BadSdp(_))
    ));
}

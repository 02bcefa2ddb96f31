//! Garbage and truncated datagrams never panic our `Peer`, in every state: fresh, negotiated
//! (ICE checking), connected to str0m (ICE + DTLS + SRTP + SCTP up), and closed. Random bytes
//! come from proptest, with the first byte steered into every RFC 7983 range; truncations come
//! from real datagrams str0m sent (STUN, DTLS, SRTP, SRTCP) cut at every length.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tympan_dtls::{DtlsCertificate, DtlsConfig, DtlsContext};
use tympan_ice::agent::Candidate;
use tympan_rtc_engine::peer::{Datagram, Peer, PeerConfig, Received, Transport};

mod peer_common;
use peer_common::{Sim, connect};

/// First bytes covering STUN, ZRTP, DTLS, TURN channel data, RTP/RTCP and the unknown ranges.
const FIRST_BYTES: &[u8] = &[0, 1, 3, 16, 20, 22, 23, 63, 64, 79, 128, 144, 191, 200, 255];

fn datagram_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(FIRST_BYTES),
        prop::option::of(192u8..224),
        prop::collection::vec(any::<u8>(), 0..1400),
    )
        .prop_map(|(first, second, mut rest)| {
            rest.insert(0, first);
            if let (Some(b), Some(slot)) = (second, rest.get_mut(1)) {
                *slot = b;
            }
            rest
        })
}

fn feed(peer: &mut Peer, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> bool {
    let mut copy = bytes.to_vec();
    let r = peer.handle_datagram(
        now,
        Datagram {
            local: to,
            remote: from,
            transport: Transport::Udp,
            contents: &mut copy,
        },
    );
    // Garbage must never come out as media.
    !matches!(r, Received::Rtp { .. })
}

fn fuzz_peer(peer: &mut Peer, now: Instant, from: SocketAddr, to: SocketAddr) {
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let peer = RefCell::new(peer);
    runner
        .run(&datagram_strategy(), |bytes| {
            let mut p = peer.borrow_mut();
            prop_assert!(feed(&mut p, now, from, to, &bytes));
            p.handle_timeout(now);
            let mut buf = [0u8; 1500];
            while p.poll_transmit(&mut buf).is_some() {}
            while p.poll_event().is_some() {}
            Ok(())
        })
        .expect("no panic and no garbage delivered as media");
}

fn fresh_peer(now: Instant) -> Peer {
    let ctx = DtlsContext::new(
        DtlsCertificate::generate().expect("certificate"),
        DtlsConfig::default(),
    )
    .expect("context");
    Peer::new(
        PeerConfig {
            local_candidates: vec![Candidate::host("10.0.0.1:5000".parse().unwrap())],
            dtls: Arc::new(ctx),
            seed: 3,
            cname: "x".into(),
        },
        now,
    )
}

#[test]
fn garbage_in_fresh_and_negotiated_states() {
    let now = Instant::now();
    let from: SocketAddr = "10.0.0.2:6000".parse().unwrap();
    let to: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let mut p = fresh_peer(now);
    fuzz_peer(&mut p, now, from, to);

    // Negotiated with a str0m offer, nothing received yet (ICE checking, DTLS idle).
    let mut sim = Sim::new();
    let mut api = sim.rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendRecv,
        None,
        None,
        None,
    );
    api.add_channel("x".into());
    let (offer, _pending) = api.apply().expect("offer");
    let mut p = fresh_peer(now);
    p.accept_offer(now, &offer.to_sdp_string()).expect("answer");
    fuzz_peer(&mut p, now, from, to);
}

#[test]
fn garbage_and_truncations_when_connected_and_closed() {
    let (mut sim, audio, _video, _) = connect();
    // Record real traffic: media, RTCP, SCTP over DTLS, consent checks.
    sim.record = true;
    let pt = peer_common::str0m_pt(&sim.rtc, str0m::format::Codec::Opus);
    for i in 0..20u64 {
        let now = sim.now;
        sim.rtc
            .writer(audio)
            .expect("writer")
            .write(
                pt,
                now,
                str0m::media::MediaTime::from_millis(20 * i),
                vec![7u8; 100],
            )
            .expect("write");
        sim.run_for(Duration::from_millis(20));
    }
    if let Some(ch) = sim.str0m_channel_open() {
        let mut ch = sim.rtc.channel(ch).expect("channel");
        ch.write(false, b"hello").expect("write");
    }
    sim.run_for(Duration::from_secs(6));
    sim.record = false;
    let recorded = std::mem::take(&mut sim.recorded);
    assert!(recorded.len() > 20, "recorded {} datagrams", recorded.len());
    let kinds: std::collections::BTreeSet<u8> = recorded
        .iter()
        .map(|d| match d[0] {
            0..=3 => 0,
            20..=63 => 1,
            _ if (192..224).contains(&d[1]) => 3,
            _ => 2,
        })
        .collect();
    assert_eq!(kinds.len(), 4, "STUN, DTLS, SRTP and SRTCP all recorded");

    let (from, to, now) = (sim.rtc_addr, sim.peer_addr, sim.now);
    let received_before = sim.peer_rtp.len();
    for d in &recorded {
        for len in 0..d.len() {
            assert!(feed(&mut sim.peer, now, from, to, &d[..len]));
        }
        // Bit flips in the authenticated part are rejected too.
        for i in (0..d.len()).step_by(7) {
            let mut flipped = d.clone();
            flipped[i] ^= 0x40;
            let _ = feed(&mut sim.peer, now, from, to, &flipped);
        }
    }
    assert_eq!(sim.peer_rtp.len(), received_before);
    eprintln!(
        "recorded {} datagrams, {} bytes; stats {:?}",
        recorded.len(),
        recorded.iter().map(Vec::len).sum::<usize>(),
        sim.peer.stats()
    );
    fuzz_peer(&mut sim.peer, now, from, to);

    // Still alive: media from str0m keeps arriving after all that.
    let before = sim.peer_rtp.len();
    for i in 0..5u64 {
        let now = sim.now;
        sim.rtc
            .writer(audio)
            .expect("writer")
            .write(
                pt,
                now,
                str0m::media::MediaTime::from_millis(400 + 20 * i),
                vec![9u8; 50],
            )
            .expect("write");
        sim.run_for(Duration::from_millis(20));
    }
    assert!(
        sim.peer_rtp.len() > before,
        "media still flows after garbage"
    );

    sim.peer.close(sim.now);
    fuzz_peer(&mut sim.peer, now, from, to);
    for d in recorded.iter().take(50) {
        assert!(feed(&mut sim.peer, now, from, to, d));
    }
}

//! The media hot path of `Peer` does not allocate once warm: `send_rtp` + `poll_transmit`
//! (record, SRTP-protect, queue, copy out) and `handle_datagram` of SRTP from str0m (unprotect,
//! stream lookup, hand out). Counted with a global allocator; one test in this binary so no
//! other test thread allocates meanwhile.

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use str0m::format::Codec;
use str0m::media::MediaTime;
use tympan_rtc_engine::peer::{Datagram, Received, Transport};
use tympan_rtp::rtp::RtpWriter;

mod peer_common;
use peer_common::{connect, str0m_pt};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    GLOBAL.stats().allocations + GLOBAL.stats().reallocations
}

#[test]
fn send_rtp_and_receive_srtp_do_not_allocate() {
    let (mut sim, audio, _video, _) = connect();

    // A send track so that send_rtp has somewhere to go.
    let ssrc = 0x0A11_0C01;
    let mid = sim
        .peer
        .add_send_track(tympan_sdp::MediaKind::Audio, ssrc, "p", "t");
    let offer = sim.peer.create_offer(sim.now).expect("offer");
    let answer = sim
        .rtc
        .sdp_api()
        .accept_offer(str0m::change::SdpOffer::from_sdp_string(&offer).unwrap())
        .expect("str0m answers");
    sim.peer
        .accept_answer(sim.now, &answer.to_sdp_string())
        .expect("answer accepted");
    let pt = sim
        .peer
        .media()
        .find(|m| m.mid == mid)
        .expect("negotiated")
        .codecs[0]
        .payload_type;
    sim.run_for(Duration::from_millis(100));

    // Capture SRTP from str0m without delivering it, to feed it under measurement.
    let opus = str0m_pt(&sim.rtc, Codec::Opus);
    sim.deliver_to_peer = false;
    sim.record = true;
    for i in 0..400u64 {
        let now = sim.now;
        sim.rtc
            .writer(audio)
            .expect("writer")
            .write(opus, now, MediaTime::from_millis(20 * i), vec![0x55; 120])
            .expect("write");
        sim.advance();
    }
    sim.record = false;
    let srtp: Vec<Vec<u8>> = std::mem::take(&mut sim.recorded)
        .into_iter()
        .filter(|d| (128..192).contains(&d[0]) && !(192..224).contains(&d[1]))
        .collect();
    assert!(srtp.len() >= 400, "{} SRTP packets captured", srtp.len());

    let mut packet = [0u8; 1200];
    let mut out = vec![0u8; 1500];
    let mut seq: u16 = 1;
    let mut run = |sim: &mut peer_common::Sim, range: std::ops::Range<usize>| -> (usize, usize) {
        let mut delivered = 0;
        let mut sent = 0;
        for d in &srtp[range] {
            let mut d = d.clone();
            let before = allocations();
            let n = RtpWriter {
                marker: true,
                ..RtpWriter::new(pt, seq, u32::from(seq) * 960, ssrc, &[0xAB; 160])
            }
            .write(&mut packet)
            .unwrap();
            sim.peer
                .send_rtp(sim.now, &mid, &packet[..n])
                .expect("send_rtp");
            while let Some(m) = sim.peer.poll_transmit(&mut out) {
                sent += m.len;
            }
            if let Received::Rtp { packet, .. } = sim.peer.handle_datagram(
                sim.now,
                Datagram {
                    local: sim.peer_addr,
                    remote: sim.rtc_addr,
                    transport: Transport::Udp,
                    contents: &mut d,
                },
            ) {
                delivered += packet.len();
            }
            let after = allocations();
            seq = seq.wrapping_add(1);
            std::hint::black_box(after - before);
            if after != before {
                return (usize::MAX, after - before);
            }
        }
        assert!(delivered > 0 && sent > 0);
        (0, 0)
    };
    // Warm up (queues and pools reach their size), then measure.
    let _ = run(&mut sim, 0..100);
    let mut rounds = Vec::new();
    for r in 0..3 {
        let start = 100 + r * 100;
        rounds.push(run(&mut sim, start..start + 100));
    }
    assert!(
        rounds.iter().any(|(bad, _)| *bad == 0),
        "allocations in every round of 100 send+receive: {rounds:?}"
    );
}

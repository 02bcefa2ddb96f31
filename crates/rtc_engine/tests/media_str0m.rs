//! The media machinery (`peer/media.rs`) end to end against str0m 0.24 (crates.io) as the
//! publisher: str0m sends VP8 to our `Peer` over a lossy simulated network; our NACKs make
//! str0m retransmit (RTX), our peer hands out every packet (RTX unwrapped), and str0m's own
//! statistics show it parsed our receiver reports (loss, RTT from LSR/DLSR) and NACKs.
//! Simulated time throughout.

use std::collections::BTreeSet;
use std::time::Duration;

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::Mid;
use str0m::media::{Direction, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate as Str0mCandidate, Event, Input, Output, Rtc, RtcConfig};

use tympan_rtc_engine::peer::{Datagram, Received, Transport};
use tympan_rtp::rtp::RtpPacket;

mod peer_common;
use peer_common::{Sim, TICK, str0m_pt, vp8_frame};

/// Like `Sim::exchange`, but `drop_to_peer` may drop datagrams from str0m to our peer.
fn exchange(sim: &mut Sim, drop_to_peer: &mut dyn FnMut(&[u8]) -> bool) {
    for _ in 0..50 {
        let mut moved = false;
        while sim.rtc.is_alive() {
            match sim.rtc.poll_output().expect("str0m poll_output") {
                Output::Timeout(_) => break,
                Output::Transmit(t) => sim.to_peer.push_back(t.contents.to_vec()),
                Output::Event(e) => sim.rtc_events.push(e),
            }
        }
        while let Some(mut d) = sim.to_peer.pop_front() {
            moved = true;
            if drop_to_peer(&d) {
                continue;
            }
            let received = sim.peer.handle_datagram(
                sim.now,
                Datagram {
                    local: sim.peer_addr,
                    remote: sim.rtc_addr,
                    transport: Transport::Udp,
                    contents: &mut d,
                },
            );
            if let Received::Rtp { mid, packet } = received {
                sim.peer_rtp.push((mid.to_string(), packet.to_vec()));
            }
        }
        while let Some(e) = sim.peer.poll_event() {
            sim.peer_events.push(e);
        }
        let mut buf = vec![0u8; 2048];
        while let Some(meta) = sim.peer.poll_transmit(&mut buf) {
            sim.to_rtc.push_back(buf[..meta.len].to_vec());
        }
        while let Some(d) = sim.to_rtc.pop_front() {
            moved = true;
            let r = Receive::new(Protocol::Udp, sim.peer_addr, sim.rtc_addr, &d)
                .expect("str0m accepts the datagram");
            sim.rtc
                .handle_input(Input::Receive(sim.now, r))
                .expect("str0m handle_input");
        }
        if !moved {
            break;
        }
    }
}

fn advance(sim: &mut Sim, drop_to_peer: &mut dyn FnMut(&[u8]) -> bool) {
    sim.now += TICK;
    sim.rtc
        .handle_input(Input::Timeout(sim.now))
        .expect("str0m timeout");
    if let Some((t, _)) = sim.peer.poll_timeout()
        && t <= sim.now
    {
        sim.peer.handle_timeout(sim.now);
    }
    exchange(sim, drop_to_peer);
}

#[test]
fn str0m_publisher_lossy_link_nack_rtx_and_receiver_reports() {
    // str0m with statistics every 500 ms.
    let (mut sim, video) =
        connect_publisher(|b| b.set_stats_interval(Some(Duration::from_millis(500))));

    // str0m sends 90 one-packet VP8 frames at 30 fps; the network drops every 15th RTP
    // packet of the VP8 payload type once (retransmissions use the RTX payload type), but
    // not the first or the last ones (a receiver cannot tell those are missing).
    let vp8_pt = str0m_pt(&sim.rtc, Codec::Vp8);
    let mut dropped = BTreeSet::new();
    let mut originals = 0u32;
    let mut drop = |d: &[u8]| {
        let is_rtp = d.len() > 12 && (128..192).contains(&d[0]) && !(192..224).contains(&d[1]);
        if !is_rtp || d[1] & 0x7F != *vp8_pt {
            return false;
        }
        let seq = u16::from_be_bytes([d[2], d[3]]);
        if dropped.contains(&seq) {
            return false; // a plain retransmission
        }
        originals += 1;
        originals % 15 == 7 && originals < 80 && dropped.insert(seq)
    };
    for i in 0..90u64 {
        let wallclock = sim.now;
        sim.rtc
            .writer(video)
            .expect("writer")
            .write(
                vp8_pt,
                wallclock,
                MediaTime::from_90khz(3000 * i),
                vp8_frame(300, i as u8),
            )
            .expect("write");
        for _ in 0..(33 / TICK.as_millis() as u64 + 1) {
            advance(&mut sim, &mut drop);
        }
    }
    for _ in 0..(2000 / TICK.as_millis() as u64) {
        advance(&mut sim, &mut drop);
    }
    let dropped: BTreeSet<u16> = dropped;
    assert!(dropped.len() >= 5, "{dropped:?}");

    // Every packet reached the engine side of our peer, the dropped ones repaired by RTX and
    // handed out in their original form.
    let vmid = video.to_string();
    let seqs: BTreeSet<u16> = sim
        .peer_rtp
        .iter()
        .filter(|(mid, _)| *mid == vmid)
        .map(|(_, p)| {
            let p = RtpPacket::parse(p).expect("valid RTP");
            assert_eq!(
                p.payload_type(),
                *vp8_pt,
                "RTX unwrapped to the VP8 payload type"
            );
            p.sequence_number()
        })
        .collect();
    assert!(seqs.len() >= 90, "{} packets", seqs.len());
    let (first, last) = (*seqs.first().unwrap(), *seqs.last().unwrap());
    let missing: Vec<u16> = (first..=last).filter(|s| !seqs.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "never repaired: {missing:?} (dropped {dropped:?})"
    );
    assert!(dropped.iter().all(|s| seqs.contains(s)));

    // str0m.s view: it received our NACKs and our receiver reports (RTT from LSR/DLSR).
    let stats: Vec<_> = sim
        .rtc_events
        .iter()
        .filter_map(|e| match e {
            Event::MediaEgressStats(s) if s.mid == video => Some(s.clone()),
            _ => None,
        })
        .collect();
    let last_stats = stats.last().expect("str0m egress stats");
    assert!(
        last_stats.nacks > 0,
        "str0m counted our NACKs: {last_stats:?}"
    );
    let rtt = stats
        .iter()
        .rev()
        .find_map(|s| s.rtt)
        .expect("str0m computed an RTT from our RR (needs LSR/DLSR of its SR)");
    assert!(
        rtt < Duration::from_millis(50),
        "simulated network is instant: {rtt:?}"
    );
    let remote = last_stats.remote.as_ref().expect("our report block");
    assert_eq!(
        *remote.maximum_sequence_number as u16, last,
        "extended highest sequence number in our RR"
    );
}

/// As `peer_common::connect`, with str0m configured by `config` and offering one sendonly
/// video section (str0m publishes to our peer).
fn connect_publisher(config: impl FnOnce(RtcConfig) -> RtcConfig) -> (Sim, Mid) {
    let mut sim = Sim::new();
    sim.rtc = config(Rtc::builder()).build(sim.now);
    sim.rtc
        .add_local_candidate(Str0mCandidate::host(sim.rtc_addr, "udp").unwrap());
    let mut api = sim.rtc.sdp_api();
    let video = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some("client".into()),
        Some("cam".into()),
        None,
    );
    let (offer, pending) = api.apply().expect("an offer");
    let answer = sim
        .peer
        .accept_offer(sim.now, &offer.to_sdp_string())
        .expect("our peer answers");
    sim.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .expect("str0m accepts our answer");
    let ok = sim.run_until(Duration::from_secs(10), |s| {
        s.rtc.is_connected() && s.peer_connected()
    });
    assert!(ok, "not connected: {:?}", sim.peer_events);
    (sim, video)
}

#[test]
fn str0m_bandwidth_estimate_grows_on_our_twcc_feedback() {
    let initial = Bitrate::kbps(300);
    let (mut sim, video) = connect_publisher(|b| b.enable_bwe(Some(initial)));
    let vp8_pt = str0m_pt(&sim.rtc, Codec::Vp8);
    let mut keep = |_: &[u8]| false;
    // 10 s of 30 fps video of ~700 kbit/s, above the initial estimate.
    for i in 0..300u64 {
        let wallclock = sim.now;
        sim.rtc
            .writer(video)
            .expect("writer")
            .write(
                vp8_pt,
                wallclock,
                MediaTime::from_90khz(3000 * i),
                vp8_frame(3000, i as u8),
            )
            .expect("write");
        for _ in 0..(33 / TICK.as_millis() as u64 + 1) {
            advance(&mut sim, &mut keep);
        }
    }
    let estimates: Vec<Bitrate> = sim
        .rtc_events
        .iter()
        .filter_map(|e| match e {
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => Some(*estimate),
            _ => None,
        })
        .collect();
    let best = estimates
        .iter()
        .copied()
        .fold(initial, |a, b| if b > a { b } else { a });
    assert!(
        best > initial,
        "str0m's TWCC estimate never rose above {initial:?}: {estimates:?}"
    );
}

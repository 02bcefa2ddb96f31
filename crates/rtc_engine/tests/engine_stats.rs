//! The engine's counters and `room_details` against what the test itself sent and dropped on
//! a simulated network, and against what str0m 0.24 clients (crates.io) report in RTCP:
//! Ana publishes audio + video, Ben subscribes; the test drops some of Ana's audio and video
//! packets on the way in and some video packets on the way to Ben, then checks datagram and
//! byte counts exactly, RTP/RTX/NACK counts, the loss the engine measured and the loss Ben's
//! receiver reports told it, RTT, jitter, bit rates, PLIs and data channel messages.

use std::time::Duration;

use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output};

use tympan_rtc_engine::{Datagram, EngineCounters, STATS_INTERVAL, Transport};

mod engine_common;
use engine_common::{World, opus_frame, vp8_frame};

fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

/// What the test saw on the simulated wire.
#[derive(Debug, Default)]
struct Wire {
    fed: u64,
    fed_bytes: u64,
    out: u64,
    out_bytes: u64,
    /// RTP datagrams from Ana that reached the engine.
    ana_rtp: u64,
    /// Their bytes, with the time they arrived.
    ana_rtp_log: Vec<(Duration, usize)>,
    ana_audio_seen: u64,
    ana_video_seen: u64,
    audio_dropped: u64,
    video_dropped: u64,
    /// RTP datagrams the engine sent to Ben (delivered or dropped).
    to_ben_rtp: u64,
    to_ben_rtp_bytes: u64,
    to_ben_dropped: u64,
    /// Drop packets now.
    lossy: bool,
}

/// One exchange round of the simulated network, counting and (when `lossy`) dropping:
/// every 10th audio and every 25th video packet of Ana's, every 20th video packet to Ben.
fn exchange(w: &mut World, wire: &mut Wire, ana: usize, ben: usize, t0: std::time::Instant) {
    let opus = w.clients[ana].pt(Codec::Opus);
    for _ in 0..50 {
        let mut moved = false;
        for i in 0..w.clients.len() {
            loop {
                match w.clients[i].rtc.poll_output().expect("poll_output") {
                    Output::Timeout(_) => break,
                    Output::Event(e) => w.clients[i].events.push(e),
                    Output::Transmit(t) => {
                        moved = true;
                        let mut d = t.contents.to_vec();
                        if i == ana && is_rtp(&d) {
                            let audio = d[1] & 0x7f == *opus;
                            let video = !audio && d.len() > 600;
                            if audio {
                                wire.ana_audio_seen += 1;
                                if wire.lossy && wire.ana_audio_seen % 10 == 5 {
                                    wire.audio_dropped += 1;
                                    continue;
                                }
                            } else if video {
                                wire.ana_video_seen += 1;
                                if wire.lossy && wire.ana_video_seen % 25 == 7 {
                                    wire.video_dropped += 1;
                                    continue;
                                }
                            }
                            wire.ana_rtp += 1;
                            wire.ana_rtp_log.push((w.now - t0, d.len()));
                        }
                        wire.fed += 1;
                        wire.fed_bytes += d.len() as u64;
                        w.engine.handle_datagram(
                            w.now,
                            Datagram {
                                local: w.server,
                                remote: t.source,
                                transport: Transport::Udp,
                                contents: &mut d,
                            },
                        );
                    }
                }
            }
        }
        while let Some(meta) = w.engine.poll_transmit(&mut w.buf) {
            moved = true;
            wire.out += 1;
            wire.out_bytes += meta.len as u64;
            let Some(i) = w.clients.iter().position(|c| c.addr == meta.remote) else {
                continue;
            };
            let d = w.buf[..meta.len].to_vec();
            if i == ben && is_rtp(&d) {
                wire.to_ben_rtp += 1;
                wire.to_ben_rtp_bytes += d.len() as u64;
                if wire.lossy && d.len() > 600 && wire.to_ben_rtp % 20 == 3 {
                    wire.to_ben_dropped += 1;
                    continue;
                }
            }
            let r = Receive::new(Protocol::Udp, w.server, meta.remote, &d).expect("datagram");
            w.clients[i]
                .rtc
                .handle_input(Input::Receive(w.now, r))
                .expect("handle_input");
        }
        while let Some((to, notice)) = w.engine.poll_notice() {
            if let Some(c) = w.clients.iter_mut().find(|c| c.id == to) {
                c.notices.push(notice);
            }
        }
        if !moved {
            break;
        }
    }
}

fn advance(w: &mut World, wire: &mut Wire, ana: usize, ben: usize, t0: std::time::Instant) {
    w.now += Duration::from_millis(5);
    for c in &mut w.clients {
        c.rtc.handle_input(Input::Timeout(w.now)).expect("timeout");
    }
    if w.engine.poll_timeout().is_some_and(|(t, _)| t <= w.now) {
        w.engine.handle_timeout(w.now);
    }
    exchange(w, wire, ana, ben, t0);
}

/// 20 ms of media from Ana (audio every round, video every other round), in 5 ms steps.
fn media_round(w: &mut World, wire: &mut Wire, ana: usize, ben: usize, i: u64) {
    let t0 = w.now - Duration::from_millis(20 * i);
    let now = w.now;
    w.clients[ana].write_audio(now, i, &opus_frame((i % 50) as u8, 3));
    if i % 2 == 0 {
        let v = vp8_frame(900 + (i as usize % 7) * 100, i as u8, i % 60 == 0);
        w.clients[ana].write_video(now, i / 2, &v);
    }
    for _ in 0..4 {
        advance(w, wire, ana, ben, t0);
    }
}

fn delta(a: EngineCounters, b: EngineCounters) -> EngineCounters {
    EngineCounters {
        datagrams_in: b.datagrams_in - a.datagrams_in,
        bytes_in: b.bytes_in - a.bytes_in,
        datagrams_out: b.datagrams_out - a.datagrams_out,
        bytes_out: b.bytes_out - a.bytes_out,
        rtp_in: b.rtp_in - a.rtp_in,
        garbage: b.garbage - a.garbage,
        rtp_forwarded: b.rtp_forwarded - a.rtp_forwarded,
        rtx_sent: b.rtx_sent - a.rtx_sent,
        rtx_received: b.rtx_received - a.rtx_received,
        nacks_sent: b.nacks_sent - a.nacks_sent,
        nacks_received: b.nacks_received - a.nacks_received,
        plis_received: b.plis_received - a.plis_received,
        data_messages_in: b.data_messages_in - a.data_messages_in,
        ..EngineCounters::default()
    }
}

#[test]
fn counters_and_room_details_match_the_wire_and_the_clients_reports() {
    let mut w = World::new(10);
    let ana = w.join("stats", "Ana", true);
    let ben = w.join("stats", "Ben", false);
    assert!(w.run_until(Duration::from_secs(10), |w| {
        w.clients.iter().all(|c| c.connected()) && w.clients[ben].offered.len() == 2
    }));
    let (ana_id, ben_id) = (w.clients[ana].id, w.clients[ben].id);
    let before = w.engine.counters();
    let mut wire = Wire::default();
    let start = w.now;

    // 5 s of media with loss, then 2 s without (receiver reports catch up, NACKs settle).
    let mut i = 0;
    wire.lossy = true;
    while w.now < start + Duration::from_secs(5) {
        media_round(&mut w, &mut wire, ana, ben, i);
        i += 1;
    }
    wire.lossy = false;
    while w.now < start + Duration::from_secs(7) {
        media_round(&mut w, &mut wire, ana, ben, i);
        i += 1;
    }
    let after = w.engine.counters();
    let d = delta(before, after);
    eprintln!(
        "wire: fed {} out {} ana_rtp {} dropped audio {} video {} to Ben {} (dropped {})",
        wire.fed,
        wire.out,
        wire.ana_rtp,
        wire.audio_dropped,
        wire.video_dropped,
        wire.to_ben_rtp,
        wire.to_ben_dropped
    );
    eprintln!("{d:?}");

    // Datagrams and bytes: exactly what crossed the simulated wire.
    assert_eq!(d.datagrams_in, wire.fed);
    assert_eq!(d.bytes_in, wire.fed_bytes);
    assert_eq!(d.datagrams_out, wire.out);
    assert_eq!(d.bytes_out, wire.out_bytes);
    // RTP in: Ana's RTP datagrams that arrived, less padding-only probes (garbage).
    assert!(d.rtp_in <= wire.ana_rtp && d.rtp_in + d.garbage >= wire.ana_rtp);
    assert!(d.rtp_in > 400, "{d:?}");
    // RTP to Ben: forwarded packets plus retransmissions, nothing else.
    assert_eq!(d.rtp_forwarded + d.rtx_sent, wire.to_ben_rtp);
    // Losses were repaired: the engine NACKed Ana (str0m answered with RTX) and Ben NACKed
    // the engine (which answered from its history).
    assert!(wire.audio_dropped >= 20 && wire.video_dropped >= 5 && wire.to_ben_dropped >= 5);
    assert!(d.nacks_sent >= 1 && d.rtx_received >= 1, "{d:?}");
    assert!(d.nacks_received >= wire.to_ben_dropped.min(1), "{d:?}");
    assert!(d.rtx_sent >= 1, "{d:?}");
    assert!(after.rtcp_in > 0 && after.rtcp_out > 0);

    let room = w.engine.room_details("stats").expect("the room exists");
    assert!(w.engine.room_details("nowhere").is_none());
    assert_eq!(room.name, "stats");
    assert_eq!(room.participants.len(), 2);
    let a = &room.participants[0];
    let b = &room.participants[1];
    assert_eq!((a.id, b.id), (ana_id, ben_id), "join order");
    assert_eq!((a.name.as_str(), b.name.as_str()), ("Ana", "Ben"));
    assert!(a.connected && b.connected);
    assert_eq!(a.transport, Some(Transport::Udp));
    assert_eq!(a.tracks.len(), 2);
    assert!(b.tracks.is_empty());
    eprintln!("{a:#?}\n{b:#?}\n{:?}", room.totals);

    // Ana's inbound loss as the engine measured it: every dropped audio packet (audio has
    // no NACK), and no more than all drops (video is repaired by RTX).
    let lost = a.stats.inbound.packets_lost;
    assert!(
        lost >= wire.audio_dropped as i64
            && lost <= (wire.audio_dropped + wire.video_dropped) as i64,
        "lost {lost}, dropped audio {} video {}",
        wire.audio_dropped,
        wire.video_dropped
    );
    assert_eq!(a.stats.inbound.streams, 2);
    // The last window had no loss.
    assert_eq!(a.stats.inbound.fraction_lost, 0.0);
    assert!(a.stats.inbound.jitter_ms >= 0.0 && a.stats.inbound.jitter_ms < 30.0);
    // Ben's receiver reports (str0m's RTCP) about what the engine sent him: the audio gaps
    // reach him as gaps, and his reports say so; RTT from them on a zero-latency network
    // with 5 ms steps.
    let blost = b.stats.outbound.packets_lost;
    assert!(b.stats.outbound.streams >= 1, "{b:?}");
    assert!(
        blost >= wire.audio_dropped as i64
            && blost <= (wire.audio_dropped + wire.video_dropped + wire.to_ben_dropped) as i64,
        "Ben reports {blost} lost"
    );
    let rtt = b.stats.rtt_ms.expect("RTT from Ben's receiver reports");
    assert!((0.0..50.0).contains(&rtt), "rtt {rtt}");
    assert!(b.stats.outbound.jitter_ms < 30.0);
    assert!((0.0..=1.0).contains(&b.stats.outbound.fraction_lost));

    // Bit rates: the last window against the test's own measure of Ana's RTP bytes over the
    // last 2 s (SRTP adds a 10-byte tag per packet: plaintext is a little smaller).
    let elapsed = w.now - start;
    let recent: usize = wire
        .ana_rtp_log
        .iter()
        .filter(|(t, _)| *t + Duration::from_secs(2) >= elapsed)
        .map(|(_, n)| n)
        .sum();
    let wire_bps = recent as f64 * 8.0 / 2.0;
    let ratio = a.stats.inbound.bitrate_bps as f64 / wire_bps;
    assert!(
        (0.7..1.1).contains(&ratio),
        "inbound {} vs wire {wire_bps}",
        a.stats.inbound.bitrate_bps
    );
    let ratio_out = b.stats.outbound.bitrate_bps as f64 / a.stats.inbound.bitrate_bps as f64;
    assert!(
        (0.8..1.25).contains(&ratio_out),
        "Ben gets what Ana sends: {ratio_out}"
    );
    // Packet counts agree with the engine counters and the room totals.
    assert_eq!(room.totals.participants, 2);
    assert_eq!(room.totals.tracks, 2);
    assert_eq!(room.totals.packets_in, a.stats.inbound.packets);
    assert!(a.stats.inbound.packets >= d.rtp_in);
    assert_eq!(room.totals.bitrate_in_bps, a.stats.inbound.bitrate_bps);

    // A PLI from Ben reaches the engine's counters.
    let plis = w.engine.counters().plis_received;
    let video_mid = w.clients[ben]
        .offered
        .iter()
        .find(|(_, (_, t))| {
            a.tracks
                .iter()
                .any(|x| x.id == *t && x.kind == tympan_sdp::MediaKind::Video)
        })
        .map(|(m, _)| Mid::from(m.as_str()))
        .expect("Ben's video mid");
    w.clients[ben]
        .rtc
        .writer(video_mid)
        .expect("writer")
        .request_keyframe(None, KeyframeRequestKind::Pli)
        .expect("PLI");
    for _ in 0..5 {
        advance(&mut w, &mut wire, ana, ben, start);
    }
    assert!(w.engine.counters().plis_received > plis);

    // Data channel messages from Ana.
    let channel: ChannelId = w.clients[ana]
        .events
        .iter()
        .find_map(|e| match e {
            Event::ChannelOpen(id, _) => Some(*id),
            _ => None,
        })
        .expect("Ana's data channel opened");
    let data_before = w.engine.counters().data_messages_in;
    for n in 0..3u8 {
        let mut ch = w.clients[ana].rtc.channel(channel).expect("channel");
        assert!(ch.write(false, &[b'h', b'i', n]).expect("write"));
    }
    for _ in 0..10 {
        advance(&mut w, &mut wire, ana, ben, start);
    }
    assert_eq!(w.engine.counters().data_messages_in - data_before, 3);

    // After Ana leaves, her peer's counters stay in the totals.
    let kept = w.engine.counters();
    w.engine
        .leave(w.now, ana_id, tympan_rtc_engine::LeaveReason::Left);
    let gone = w.engine.counters();
    assert_eq!(gone.rtcp_in, kept.rtcp_in);
    assert_eq!(gone.nacks_sent, kept.nacks_sent);
    assert_eq!(gone.data_messages_in, kept.data_messages_in);
    let room = w.engine.room_details("stats").expect("Ben is still there");
    assert_eq!(room.participants.len(), 1);
    let _ = STATS_INTERVAL;
}

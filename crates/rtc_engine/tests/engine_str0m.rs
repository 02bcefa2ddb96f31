//! The engine as a room server for independent clients: three str0m 0.24 clients (crates.io),
//! in-process and sans-IO over a simulated network with simulated time, join one room
//! through the Engine's signalling API, publish Opus + VP8 and receive each other's media.

use std::time::Duration;

use str0m::Event;
use str0m::media::KeyframeRequestKind;

use tympan_rtc_engine::{
    Datagram, LeaveReason, Notice, ParticipantId, TimeoutReason, TrackId, Transport,
};

mod engine_common;
use engine_common::{World, opus_frame, vp8_frame};

fn published_tracks(w: &World, publisher: ParticipantId) -> Vec<TrackId> {
    w.engine
        .participant(publisher)
        .expect("publisher")
        .tracks
        .iter()
        .map(|t| t.id)
        .collect()
}

#[test]
fn three_clients_exchange_media_renegotiate_and_forward_keyframe_requests() {
    let mut w = World::new(50);
    let a = w.join("demo", "Ana", true);
    let b = w.join("demo", "Ben", true);
    let c = w.join("demo", "Chen", true);
    assert!(
        w.run_until(Duration::from_secs(10), |w| w.settled(2)),
        "not settled: {:?}",
        w.clients
            .iter()
            .map(|c| (c.connected(), c.offered.len(), &c.notices))
            .collect::<Vec<_>>()
    );
    let ids: Vec<ParticipantId> = w.clients.iter().map(|c| c.id).collect();

    // Notices Ana got: Ben then Chen joined, each with two tracks published, in that order.
    let ana: Vec<&Notice> = w.clients[a]
        .notices
        .iter()
        .filter(|n| !matches!(n, Notice::Offer { .. }))
        .collect();
    assert!(matches!(ana[0], Notice::ParticipantJoined(p) if p.id == ids[b] && p.name == "Ben"));
    assert!(matches!(ana[1], Notice::TrackPublished { participant, .. } if *participant == ids[b]));
    assert!(matches!(ana[2], Notice::TrackPublished { participant, .. } if *participant == ids[b]));
    assert!(matches!(ana[3], Notice::ParticipantJoined(p) if p.id == ids[c]));
    // Every server offer carries only tracks of others and mids the client has never used.
    for cl in &w.clients {
        assert!(cl.offered.values().all(|(p, _)| *p != cl.id));
        assert_eq!(cl.offered.len(), 4, "two tracks of each of two others");
    }

    // ---- media: each publishes 10 Opus frames and 6 VP8 frames (the first a keyframe).
    let mut sent_audio = vec![Vec::new(); 3];
    let mut sent_video = vec![Vec::new(); 3];
    for i in 0..10u8 {
        let now = w.now;
        for (k, cl) in w.clients.iter_mut().enumerate() {
            let f = opus_frame(i, k as u8);
            cl.write_audio(now, u64::from(i), &f);
            sent_audio[k].push(f);
            if i < 6 {
                let v = vp8_frame(1800 + usize::from(i) * 500, i ^ (k as u8 * 40), i == 0);
                cl.write_video(now, u64::from(i), &v);
                sent_video[k].push(v);
            }
        }
        w.run_for(Duration::from_millis(20));
    }
    w.run_for(Duration::from_millis(300));
    for (r, rc) in w.clients.iter().enumerate() {
        for (s, sender) in ids.iter().enumerate() {
            if s == r {
                continue;
            }
            let tracks = published_tracks(&w, *sender);
            assert_eq!(
                rc.frames_from(tracks[0]),
                sent_audio[s],
                "Opus {s} -> {r} byte-identical"
            );
            assert_eq!(
                rc.frames_from(tracks[1]),
                sent_video[s],
                "VP8 {s} -> {r} byte-identical"
            );
            // The subscriber's own sequence space has no gaps, and the media timestamps
            // advance exactly as the publisher's did.
            let mid = rc
                .offered
                .iter()
                .find(|(_, (_, t))| *t == tracks[1])
                .map(|(m, _)| m.clone())
                .unwrap();
            let data: Vec<_> = rc
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::MediaData(d) if d.mid.to_string() == mid => Some(d),
                    _ => None,
                })
                .collect();
            for pair in data.windows(2) {
                assert_eq!(**pair[1].seq_range.start(), **pair[0].seq_range.end() + 1);
                assert_eq!(pair[1].time.numer() - pair[0].time.numer(), 3000);
                assert!(pair[1].contiguous);
            }
        }
    }
    let counters = w.engine.counters();
    assert!(
        counters.rtp_forwarded >= 2 * counters.rtp_in - 20,
        "{counters:?}"
    );

    // ---- PLI from Ben on Ana's video reaches Ana, throttled to one per 500 ms.
    let ana_video = published_tracks(&w, ids[a])[1];
    let ben_mid = w.clients[b]
        .offered
        .iter()
        .find(|(_, (_, t))| *t == ana_video)
        .map(|(m, _)| m.clone())
        .unwrap();
    let ben_mid: str0m::media::Mid = ben_mid.as_str().into();
    let kf_before = |w: &World| {
        w.clients[a]
            .events
            .iter()
            .filter(|e| matches!(e, Event::KeyframeRequest(r) if Some(r.mid) == w.clients[a].video))
            .count()
    };
    w.run_for(Duration::from_millis(600));
    let before = kf_before(&w);
    let plis_before = w.engine.counters().plis;
    for _ in 0..3 {
        let mut wr = w.clients[b]
            .rtc
            .writer(ben_mid)
            .expect("ben's receiving writer");
        wr.request_keyframe(None, KeyframeRequestKind::Pli)
            .expect("PLI");
        w.run_for(Duration::from_millis(60));
    }
    assert_eq!(
        kf_before(&w),
        before + 1,
        "three PLIs within 180 ms reach Ana once"
    );
    assert_eq!(w.engine.counters().plis, plis_before + 1);
    assert!(w.engine.counters().plis_throttled >= 1);
    assert!(matches!(w.engine.poll_timeout(), Some((_, _))));
    w.run_for(Duration::from_millis(500));
    assert_eq!(
        kf_before(&w),
        before + 2,
        "the held-back request goes out when the window ends"
    );

    // ---- Chen leaves: the others get both tracks unpublished, then left, then an offer.
    let offers_before: Vec<u64> = w.clients.iter().map(|c| c.answered).collect();
    w.engine.leave(w.now, ids[c], LeaveReason::Left);
    w.exchange();
    for r in [a, b] {
        let tail: Vec<&Notice> = w.clients[r].notices.iter().rev().take(4).rev().collect();
        assert!(
            matches!(tail[0], Notice::TrackUnpublished { participant, .. } if *participant == ids[c]),
            "{tail:?}"
        );
        assert!(
            matches!(tail[1], Notice::TrackUnpublished { participant, .. } if *participant == ids[c])
        );
        assert!(
            matches!(tail[2], Notice::ParticipantLeft { participant, reason: LeaveReason::Left } if *participant == ids[c])
        );
        assert!(
            matches!(tail[3], Notice::Offer { tracks, .. } if tracks.iter().all(|t| t.participant != ids[c]))
        );
        assert_eq!(w.clients[r].answered, offers_before[r] + 1);
    }
    let summary: Vec<_> = w.engine.rooms().collect();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].participants, 2);
    assert_eq!(summary[0].tracks, 4);
    // Chen's str0m client is told by DTLS close_notify.
    w.clients.remove(c);

    // Media keeps flowing between Ana and Ben after the renegotiation.
    let ben_tracks = published_tracks(&w, ids[b]);
    let got_before = w.clients[a].frames_from(ben_tracks[0]).len();
    for i in 10..15u8 {
        let now = w.now;
        let f = opus_frame(i, 1);
        w.clients[b].write_audio(now, u64::from(i), &f);
        w.run_for(Duration::from_millis(20));
    }
    w.run_for(Duration::from_millis(100));
    assert_eq!(
        w.clients[a].frames_from(ben_tracks[0]).len(),
        got_before + 5
    );

    // ---- garbage: from unknown addresses and from a known client's address.
    let c0 = w.engine.counters();
    let mut junk = [
        vec![0u8; 0],
        vec![0x00, 0x01, 0x00, 0x00],
        vec![0x80; 40],
        vec![0x16, 0xfe, 0xfd, 0, 0],
        (0..300).map(|i| (i * 37) as u8).collect(),
    ];
    let addr_a = w.clients[a].addr;
    for j in junk.iter_mut() {
        for remote in ["192.0.2.9:1234".parse().unwrap(), addr_a] {
            let mut d = j.clone();
            w.engine.handle_datagram(
                w.now,
                Datagram {
                    local: w.server,
                    remote,
                    transport: Transport::Udp,
                    contents: &mut d,
                },
            );
        }
    }
    let c1 = w.engine.counters();
    assert_eq!(c1.datagrams_in, c0.datagrams_in + 10);
    assert_eq!(c1.dropped, c0.dropped + 5, "unknown sources are not routed");
    assert!(
        c1.garbage + c1.srtp_failures >= c0.garbage + c0.srtp_failures + 3,
        "{c1:?}"
    );
    assert_eq!(c1.rtp_in, c0.rtp_in);
    let got_before = w.clients[b]
        .frames_from(published_tracks(&w, ids[a])[0])
        .len();
    let now = w.now;
    w.clients[a].write_audio(now, 20, &opus_frame(20, 0));
    w.run_for(Duration::from_millis(100));
    assert_eq!(
        w.clients[b]
            .frames_from(published_tracks(&w, ids[a])[0])
            .len(),
        got_before + 1
    );
}

#[test]
fn a_client_that_goes_silent_is_removed_after_consent_expiry() {
    let mut w = World::new(50);
    let a = w.join("quiet", "Ana", true);
    let b = w.join("quiet", "Ben", true);
    assert!(w.run_until(Duration::from_secs(10), |w| w.settled(2)));
    let (ida, idb) = (w.clients[a].id, w.clients[b].id);
    w.clients[b].silent = true;
    let start = w.now;
    let gone = |w: &World| {
        w.clients[a].notices.iter().any(|n| {
            matches!(n, Notice::ParticipantLeft { participant, reason: LeaveReason::Timeout } if *participant == idb)
        })
    };
    let mut reasons: Vec<TimeoutReason> = Vec::new();
    while !gone(&w) && w.now < start + Duration::from_secs(60) {
        if let Some((_, r)) = w.engine.poll_timeout() {
            reasons.push(r);
        }
        w.advance(Duration::from_millis(50));
    }
    assert!(gone(&w), "Ana was not told that Ben timed out");
    let took = w.now - start;
    assert!(
        took >= Duration::from_secs(5) && took <= Duration::from_secs(45),
        "{took:?}"
    );
    // The engine's deadlines always say why (RTCP reports dominate while media flows).
    assert!(!reasons.is_empty());
    assert!(
        w.clients[b].notices.iter().any(|n| matches!(
            n,
            Notice::Removed {
                reason: LeaveReason::Timeout
            }
        )),
        "Ben is told he was removed"
    );
    assert!(
        w.clients[a].notices.iter().any(
            |n| matches!(n, Notice::TrackUnpublished { participant, .. } if *participant == idb)
        )
    );
    assert_eq!(w.engine.counters().timeouts, 1);
    assert!(w.engine.participant(idb).is_none());
    assert!(w.engine.participant(ida).is_some());
    let rooms: Vec<_> = w.engine.rooms().collect();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].participants, 1);
    // Ana leaves too: the room is gone.
    w.engine.leave(w.now, ida, LeaveReason::Disconnected);
    assert_eq!(w.engine.rooms().count(), 0);
}

#[test]
fn a_late_subscriber_starts_at_a_keyframe_it_asked_for() {
    let mut w = World::new(50);
    let a = w.join("late", "Ana", true);
    assert!(w.run_until(Duration::from_secs(10), |w| w.clients[a].connected()));
    let mut frames = Vec::new();
    let send = |w: &mut World, i: u64, key: bool| {
        let f = vp8_frame(1500, i as u8, key);
        let now = w.now;
        w.clients[a].write_video(now, i, &f);
        w.run_for(Duration::from_millis(33));
        f
    };
    for i in 0..5 {
        send(&mut w, i, i == 0);
    }
    let b = w.join("late", "Ben", false);
    assert!(
        w.run_until(Duration::from_secs(10), |w| w.clients[b].connected()
            && w.clients[b].offered.len() == 2)
    );
    let requests = |w: &World| {
        w.clients[a]
            .events
            .iter()
            .filter(|e| matches!(e, Event::KeyframeRequest(_)))
            .count()
    };
    // Delta frames only: Ben gets nothing, and Ana is asked for a keyframe.
    for i in 5..10 {
        send(&mut w, i, false);
    }
    let ana_video = published_tracks(&w, w.clients[a].id)[1];
    assert!(w.clients[b].frames_from(ana_video).is_empty());
    assert!(requests(&w) >= 1, "the publisher was asked for a keyframe");
    assert!(w.engine.counters().rtp_not_forwarded > 0);
    // The keyframe and what follows reach Ben, byte for byte.
    for i in 10..14 {
        frames.push(send(&mut w, i, i == 10));
    }
    w.run_for(Duration::from_millis(100));
    assert_eq!(w.clients[b].frames_from(ana_video), frames);
}

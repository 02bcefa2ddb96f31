//! The engine's signalling API (docs/signalling.md) with str0m 0.24 clients producing the
//! SDP: joins, limits, room removal, glare, stale answers, mute, chat, shutdown.

use std::time::Duration;

use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind};

use tympan_rtc_engine::{ErrorCode, LeaveReason, Notice, ParticipantId, TrackId};

mod engine_common;
use engine_common::World;

#[test]
fn join_validation_limits_and_room_lifecycle() {
    let mut w = World::new(2);
    let now = w.now;
    let e = &mut w.engine;
    for bad in ["", "a b", "ü", &"r".repeat(65)] {
        assert_eq!(
            e.join(now, bad, "Ana").unwrap_err().code,
            ErrorCode::BadName,
            "{bad:?}"
        );
    }
    for bad in ["", "   ", "a\nb", &"n".repeat(65)] {
        assert_eq!(
            e.join(now, "room", bad).unwrap_err().code,
            ErrorCode::BadName,
            "{bad:?}"
        );
    }
    let a = e.join(now, "room", "  Ana ").unwrap();
    assert!(a.participants.is_empty());
    assert_eq!(a.room, "room");
    let b = e.join(now, "room", "Ben").unwrap();
    assert_eq!(b.participants.len(), 1);
    assert_eq!(b.participants[0].name, "Ana");
    assert_ne!(a.participant, b.participant);
    let full = e.join(now, "room", "Chen").unwrap_err();
    assert_eq!(full.code, ErrorCode::RoomFull);
    assert!(full.message.contains('2'), "{full}");
    // Another room is independent.
    let c = e.join(now, "other", "Chen").unwrap();
    assert_eq!(e.rooms().count(), 2);
    // Ana was told Ben joined.
    let n = e.poll_notice().unwrap();
    assert_eq!(n.0, a.participant);
    assert!(
        matches!(&n.1, Notice::ParticipantJoined(p) if p.id == b.participant && p.name == "Ben")
    );
    assert!(e.poll_notice().is_none());
    // Leaving: Ben is told, an empty room is removed, unknown ids are ignored.
    e.leave(now, a.participant, LeaveReason::Left);
    assert_eq!(
        e.poll_notice(),
        Some((
            b.participant,
            Notice::ParticipantLeft {
                participant: a.participant,
                reason: LeaveReason::Left
            }
        ))
    );
    e.leave(now, a.participant, LeaveReason::Left);
    e.leave(now, ParticipantId(999), LeaveReason::Left);
    assert!(e.poll_notice().is_none());
    e.leave(now, c.participant, LeaveReason::Disconnected);
    let rooms: Vec<_> = e.rooms().collect();
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].name.as_str(), rooms[0].participants), ("room", 1));
    // Now there is space again.
    assert!(e.join(now, "room", "Dan").is_ok());
    // Requests for someone not in a room.
    let gone = a.participant;
    assert_eq!(
        e.chat(now, gone, "hi", 0).unwrap_err().code,
        ErrorCode::NotJoined
    );
    assert_eq!(
        e.handle_offer(now, gone, "v=0", &[]).unwrap_err().code,
        ErrorCode::NotJoined
    );
    assert_eq!(
        e.handle_answer(now, gone, 1, "v=0").unwrap_err().code,
        ErrorCode::NotJoined
    );
    assert_eq!(
        e.add_remote_candidate(gone, None).unwrap_err().code,
        ErrorCode::NotJoined
    );
    assert_eq!(
        e.set_muted(now, gone, TrackId(1), true).unwrap_err().code,
        ErrorCode::NotJoined
    );
}

#[test]
fn bad_sdp_is_refused_and_the_participant_can_retry() {
    let mut w = World::new(5);
    let now = w.now;
    let p = w.engine.join(now, "r", "Ana").unwrap().participant;
    let e = w
        .engine
        .handle_offer(now, p, "this is not SDP", &[])
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadSdp, "{e}");
    assert_eq!(
        w.engine
            .add_remote_candidate(p, Some("candidate:1 1 udp 1 192.0.2.1 9 typ host")),
        Ok(())
    );
    // The participant is still in the room and a proper client can still join.
    assert!(w.engine.participant(p).is_some());
    let i = w.join("r", "Ben", true);
    assert!(w.run_until(Duration::from_secs(10), |w| w.clients[i].connected()));
}

#[test]
fn chat_and_mute_notices() {
    let mut w = World::new(5);
    let a = w.join("r", "Ana", true);
    let b = w.join("r", "Ben", false);
    assert!(w.run_until(
        Duration::from_secs(10),
        |w| w.clients.iter().all(|c| c.connected()) && w.clients[b].offered.len() == 2
    ));
    let (ida, idb) = (w.clients[a].id, w.clients[b].id);
    let now = w.now;
    w.engine
        .chat(now, idb, "¡Hola!", 1_764_000_000_000)
        .unwrap();
    assert_eq!(
        w.engine.chat(now, idb, "", 0).unwrap_err().code,
        ErrorCode::BadMessage
    );
    assert_eq!(
        w.engine
            .chat(now, idb, &"x".repeat(2001), 0)
            .unwrap_err()
            .code,
        ErrorCode::TooLarge
    );
    w.exchange();
    for c in [a, b] {
        assert!(w.clients[c].notices.iter().any(|n| matches!(n,
            Notice::Chat { from, name, text, timestamp_ms } if *from == idb && name == "Ben" && text == "¡Hola!" && *timestamp_ms == 1_764_000_000_000)));
    }
    let track = w.engine.participant(ida).unwrap().tracks[1].id;
    w.engine.set_muted(now, ida, track, true).unwrap();
    w.engine.set_muted(now, ida, track, true).unwrap(); // unchanged: no second notice
    assert_eq!(
        w.engine
            .set_muted(now, ida, TrackId(9999), true)
            .unwrap_err()
            .code,
        ErrorCode::UnknownTrack
    );
    assert_eq!(
        w.engine.set_muted(now, idb, track, true).unwrap_err().code,
        ErrorCode::UnknownTrack
    );
    w.exchange();
    let updates: Vec<_> = w.clients[b]
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::ParticipantUpdated(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id, ida);
    assert!(updates[0].tracks.iter().any(|t| t.id == track && t.muted));
    assert!(
        !w.clients[a]
            .notices
            .iter()
            .any(|n| matches!(n, Notice::ParticipantUpdated(_)))
    );
}

#[test]
fn glare_and_stale_answers() {
    let mut w = World::new(5);
    w.auto_answer = false;
    let a = w.join("g", "Ana", false);
    assert!(w.run_until(Duration::from_secs(10), |w| w.clients[a].connected()));
    let _b = w.join("g", "Ben", true);
    w.run_for(Duration::from_millis(50));
    let ida = w.clients[a].id;
    let (negotiation, sdp) = w.clients[a]
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::Offer {
                negotiation, sdp, ..
            } => Some((*negotiation, sdp.clone())),
            _ => None,
        })
        .expect("a server offer for Ana");
    // Only one offer is outstanding even if more changes happen.
    let offers = |w: &World| {
        w.clients[a]
            .notices
            .iter()
            .filter(|n| matches!(n, Notice::Offer { .. }))
            .count()
    };
    assert_eq!(offers(&w), 1);

    // Ana's own offer crosses the server's: glare, the server does not roll back.
    let mut api = w.clients[a].rtc.sdp_api();
    let _ = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, _pending) = api.apply().expect("an offer");
    let err = w
        .engine
        .handle_offer(w.now, ida, &offer.to_sdp_string(), &[])
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Glare, "{err}");
    // The client rolls back (str0m: accepting an offer drops its pending one), answers the
    // server offer; wrong numbers are stale.
    let answer = w.clients[a]
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&sdp).unwrap())
        .unwrap()
        .to_sdp_string();
    assert_eq!(
        w.engine
            .handle_answer(w.now, ida, negotiation + 1, &answer)
            .unwrap_err()
            .code,
        ErrorCode::StaleAnswer
    );
    w.engine
        .handle_answer(w.now, ida, negotiation, &answer)
        .unwrap();
    assert_eq!(
        w.engine
            .handle_answer(w.now, ida, negotiation, &answer)
            .unwrap_err()
            .code,
        ErrorCode::StaleAnswer,
        "an answer to an offer already answered is stale"
    );
    // Now Ana's offer goes through.
    let mut api = w.clients[a].rtc.sdp_api();
    let _ = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().expect("an offer");
    let answer = w
        .engine
        .handle_offer(w.now, ida, &offer.to_sdp_string(), &[])
        .expect("answer");
    w.clients[a]
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap(),
        )
        .unwrap();
    w.exchange();
    // Her new m-line is published with the default metadata.
    let info = w.engine.participant(ida).unwrap();
    assert_eq!(info.tracks.len(), 1);
    assert_eq!(info.tracks[0].source, tympan_rtc_engine::TrackSource::Other);
}

#[test]
fn close_removes_everyone_and_refuses_joins() {
    let mut w = World::new(5);
    let a = w.join("s", "Ana", true);
    let b = w.join("s", "Ben", true);
    assert!(w.run_until(Duration::from_secs(10), |w| w.settled(2)));
    w.engine.close(w.now);
    let mut buf = vec![0u8; 2048];
    assert!(
        w.engine.poll_transmit(&mut buf).is_some(),
        "close_notify queued for the clients"
    );
    w.exchange();
    for c in [a, b] {
        assert!(
            w.clients[c]
                .notices
                .iter()
                .any(|n| matches!(n, Notice::Removed { .. }))
        );
    }
    assert_eq!(w.engine.rooms().count(), 0);
    assert_eq!(
        w.engine.join(w.now, "s", "Chen").unwrap_err().code,
        ErrorCode::Internal
    );
    // Nothing is left to do once the close_notify datagrams are out.
    w.run_for(Duration::from_secs(3));
    assert!(
        w.engine.poll_timeout().is_none(),
        "{:?}",
        w.engine.poll_timeout()
    );
}

#[test]
fn engine_can_move_to_another_thread() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let w = World::new(5);
    assert_send(&w.engine);
    let engine = w.engine;
    let rooms = std::thread::spawn(move || engine.rooms().count())
        .join()
        .unwrap();
    assert_eq!(rooms, 0);
}

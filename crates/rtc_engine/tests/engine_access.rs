//! Access and reconnect against independent clients: str0m 0.24 (crates.io) peers, in-process
//! over a simulated network with simulated time. Detach/resume within the grace period (the
//! others see nothing, media keeps flowing), expiry after it, the unanswered offer re-sent on
//! resume, grants (no publish / no subscribe), and an ICE restart from str0m after the client
//! moved to a new address.

use std::net::SocketAddr;
use std::time::Duration;

use str0m::Candidate as Str0mCandidate;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};

use tympan_rtc_engine::{
    ErrorCode, JoinOptions, LeaveReason, Notice, ParticipantId, TrackAnnouncement, TrackId,
    TrackSource,
};

mod engine_common;
use engine_common::{Client, World, opus_frame, vp8_frame};

/// Like `World::join`, with join options; returns (client index, resume token).
fn join_with(w: &mut World, name: &str, options: JoinOptions) -> (usize, String) {
    let joined = w
        .engine
        .join_with(w.now, "demo", name, options)
        .expect("join");
    let n = w.clients.len() + 2;
    let addr: SocketAddr = format!("10.0.1.{n}:5000").parse().unwrap();
    let mut rtc = str0m::Rtc::new(w.now);
    rtc.add_local_candidate(Str0mCandidate::host(addr, "udp").unwrap());
    let mut c = Client {
        id: joined.participant,
        name: name.into(),
        rtc,
        addr,
        events: Vec::new(),
        notices: Vec::new(),
        silent: false,
        audio: None,
        video: None,
        offered: Default::default(),
        answered: 0,
    };
    let mut api = c.rtc.sdp_api();
    let a = api.add_media(
        MediaKind::Audio,
        Direction::SendRecv,
        Some(name.into()),
        Some("mic".into()),
        None,
    );
    let v = api.add_media(
        MediaKind::Video,
        Direction::SendRecv,
        Some(name.into()),
        Some("cam".into()),
        None,
    );
    c.audio = Some(a);
    c.video = Some(v);
    let (offer, pending) = api.apply().expect("an offer");
    let answer = w
        .engine
        .handle_offer(w.now, c.id, &offer.to_sdp_string(), &announcements(&c))
        .expect("engine answers");
    let ufrag = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap_or_default()
        .to_string();
    LAST_UFRAG.with(|u| *u.borrow_mut() = ufrag);
    let answer = SdpAnswer::from_sdp_string(&answer).expect("str0m parses the answer");
    c.rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("str0m accepts");
    w.clients.push(c);
    (w.clients.len() - 1, joined.resume_token)
}

thread_local! {
    /// The server ufrag of the last `join_with` answer.
    static LAST_UFRAG: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn announcements(c: &Client) -> Vec<TrackAnnouncement> {
    vec![
        TrackAnnouncement {
            mid: c.audio.unwrap().to_string(),
            kind: tympan_sdp::MediaKind::Audio,
            source: TrackSource::Microphone,
            muted: false,
        },
        TrackAnnouncement {
            mid: c.video.unwrap().to_string(),
            kind: tympan_sdp::MediaKind::Video,
            source: TrackSource::Camera,
            muted: false,
        },
    ]
}

fn tracks_of(w: &World, p: ParticipantId) -> Vec<TrackId> {
    w.engine
        .participant(p)
        .map(|i| i.tracks.iter().map(|t| t.id).collect())
        .unwrap_or_default()
}

/// Everyone sends `frames` audio frames and (first a keyframe) video frames.
fn send_media(w: &mut World, frames: u8, seed: u8) {
    for i in 0..frames {
        let now = w.now;
        for (k, cl) in w.clients.iter_mut().enumerate() {
            if cl.audio.is_none() || !cl.connected() {
                continue;
            }
            let n = u64::from(seed) * 100 + u64::from(i);
            cl.write_audio(now, n, &opus_frame(i, k as u8 ^ seed));
            cl.write_video(now, n, &vp8_frame(1200, i ^ seed, i == 0));
        }
        w.run_for(Duration::from_millis(20));
    }
    w.run_for(Duration::from_millis(300));
}

/// Audio frames `receiver` got from `publisher`'s first (audio) track.
fn audio_from(w: &World, receiver: usize, publisher: ParticipantId) -> usize {
    tracks_of(w, publisher)
        .first()
        .map(|t| w.clients[receiver].frames_from(*t).len())
        .unwrap_or(0)
}

fn leave_or_join_notices(c: &Client, about: ParticipantId) -> usize {
    c.notices
        .iter()
        .filter(|n| match n {
            Notice::ParticipantLeft { participant, .. } => *participant == about,
            Notice::ParticipantJoined(p) => p.id == about,
            _ => false,
        })
        .count()
}

#[test]
fn detached_participant_keeps_its_place_and_media_and_resumes_with_the_same_id() {
    let mut w = World::new(50);
    let (a, token) = join_with(&mut w, "Ana", JoinOptions::default());
    let (b, _) = join_with(&mut w, "Ben", JoinOptions::default());
    assert!(w.run_until(Duration::from_secs(10), |w| w.settled(2)));
    let (ana, ben) = (w.clients[a].id, w.clients[b].id);
    let ben_notices_before = leave_or_join_notices(&w.clients[b], ana);

    // Ana's signalling goes away; her peer connection does not.
    w.engine.detach(w.now, ana);
    assert!(w.engine.is_detached(ana));
    let notices_before = w.clients[a].notices.len();
    send_media(&mut w, 10, 1);
    assert!(audio_from(&w, b, ana) >= 8, "Ben keeps hearing Ana");
    assert!(audio_from(&w, a, ben) >= 8, "Ana keeps hearing Ben");

    // Chen joins and publishes meanwhile: Ana is told nothing and gets no offer.
    let (c, _) = join_with(&mut w, "Chen", JoinOptions::default());
    let chen = w.clients[c].id;
    w.run_for(Duration::from_secs(5));
    assert_eq!(
        w.clients[a].notices.len(),
        notices_before,
        "no notice reaches a detached participant"
    );
    assert_eq!(
        leave_or_join_notices(&w.clients[b], ana),
        ben_notices_before
    );

    // Resume within the grace period (20 s by default; 5.4 s have passed).
    let joined = w.engine.resume(w.now, &token).expect("resume");
    assert_eq!(joined.participant, ana);
    assert_eq!(joined.room, "demo");
    let others: Vec<ParticipantId> = joined.participants.iter().map(|p| p.id).collect();
    assert_eq!(others, vec![ben, chen]);
    assert_eq!(
        joined.participants[1].tracks.len(),
        2,
        "Chen's tracks listed"
    );
    assert_ne!(joined.resume_token, token, "a new token at every resume");
    assert!(!w.engine.is_detached(ana));
    // The old token is spent.
    let e = w.engine.resume(w.now, &token).unwrap_err();
    assert_eq!(e.code, ErrorCode::ResumeFailed);

    // The pending changes (Chen's tracks) are offered now, and media flows from Chen.
    assert!(w.run_until(Duration::from_secs(5), |w| w.clients[a].offered.len() >= 4));
    send_media(&mut w, 10, 2);
    assert!(
        audio_from(&w, a, chen) >= 8,
        "Ana hears Chen after resuming"
    );
    // Nobody saw Ana leave or join again.
    for (i, cl) in w.clients.iter().enumerate() {
        if i != a {
            assert!(
                !cl.notices.iter().any(|n| matches!(n,
                    Notice::ParticipantLeft { participant, .. } if *participant == ana)),
                "{} saw Ana leave",
                cl.name
            );
        }
    }
    assert_eq!(
        w.clients[c]
            .notices
            .iter()
            .filter(|n| matches!(n, Notice::ParticipantJoined(_)))
            .count(),
        0,
        "Chen joined after Ana and Ben: the others are in his join reply, not notices"
    );
}

#[test]
fn detached_participant_is_removed_after_the_grace_period() {
    let mut w = World::new(50);
    let (a, token) = join_with(&mut w, "Ana", JoinOptions::default());
    let (b, _) = join_with(&mut w, "Ben", JoinOptions::default());
    assert!(w.run_until(Duration::from_secs(10), |w| w.settled(2)));
    let ana = w.clients[a].id;
    w.engine.detach(w.now, ana);
    let deadline = w.now + Duration::from_secs(20);
    // Just before the end of the grace period: still there.
    w.run_for(Duration::from_millis(19_900));
    assert!(w.engine.participant(ana).is_some());
    assert_eq!(leave_or_join_notices(&w.clients[b], ana), 0);
    // The engine asks to be woken at the deadline.
    assert!(w.engine.poll_timeout().is_some_and(|(t, _)| t <= deadline));
    w.run_for(Duration::from_millis(200));
    assert!(w.engine.participant(ana).is_none(), "removed after 20 s");
    let left: Vec<&Notice> = w.clients[b]
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::ParticipantLeft { participant, .. } if *participant == ana))
        .collect();
    assert_eq!(
        left,
        vec![&Notice::ParticipantLeft {
            participant: ana,
            reason: LeaveReason::Disconnected
        }]
    );
    assert!(
        w.clients[b].notices.iter().any(|n| matches!(n,
            Notice::TrackUnpublished { participant, .. } if *participant == ana)),
        "Ana's tracks unpublished"
    );
    let e = w.engine.resume(w.now, &token).unwrap_err();
    assert_eq!(e.code, ErrorCode::ResumeFailed);
    assert_eq!(e.code.as_str(), "resume_failed");
}

#[test]
fn resume_resends_the_unanswered_server_offer() {
    let mut w = World::new(50);
    w.auto_answer = false;
    let (a, token) = join_with(&mut w, "Ana", JoinOptions::default());
    let (_b, _) = join_with(&mut w, "Ben", JoinOptions::default());
    w.run_for(Duration::from_millis(50));
    let ana = w.clients[a].id;
    let first = w.clients[a]
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::Offer {
                negotiation, sdp, ..
            } => Some((*negotiation, sdp.clone())),
            _ => None,
        })
        .expect("Ana got an offer for Ben's tracks");
    // Ana's socket dies before she answers.
    w.engine.detach(w.now, ana);
    w.run_for(Duration::from_millis(500));
    let _joined = w.engine.resume(w.now, &token).expect("resume");
    let before = w.clients[a].notices.len();
    w.auto_answer = true;
    w.exchange();
    let again = w.clients[a].notices[before..]
        .iter()
        .find_map(|n| match n {
            Notice::Offer {
                negotiation, sdp, ..
            } => Some((*negotiation, sdp.clone())),
            _ => None,
        })
        .expect("the offer is sent again");
    assert_eq!(again, first, "same negotiation number and SDP");
    assert_eq!(
        w.clients[a].answered, 1,
        "str0m answered it, the engine took it"
    );
    assert!(w.run_until(Duration::from_secs(10), |w| w.settled(2)));
}

#[test]
fn grants_limit_publishing_and_subscribing() {
    let mut w = World::new(50);
    let (a, _) = join_with(&mut w, "Ana", JoinOptions::default());
    let (l, _) = join_with(
        &mut w,
        "Listener",
        JoinOptions {
            identity: Some("user-42".into()),
            can_publish: false,
            can_subscribe: true,
        },
    );
    let (s, _) = join_with(
        &mut w,
        "Speaker",
        JoinOptions {
            identity: None,
            can_publish: true,
            can_subscribe: false,
        },
    );
    w.run_for(Duration::from_secs(3));
    let (ana, listener, speaker) = (w.clients[a].id, w.clients[l].id, w.clients[s].id);
    assert!(w.clients.iter().all(|c| c.connected()));
    assert!(
        tracks_of(&w, listener).is_empty(),
        "the listener publishes nothing"
    );
    assert_eq!(tracks_of(&w, speaker).len(), 2);
    assert!(
        w.clients[s].offered.is_empty(),
        "the speaker is offered nothing"
    );
    assert_eq!(
        w.clients[l].offered.len(),
        4,
        "Ana's and the speaker's tracks"
    );
    assert_eq!(w.clients[a].offered.len(), 2, "only the speaker's tracks");
    send_media(&mut w, 10, 3);
    assert!(audio_from(&w, l, ana) >= 8);
    assert!(audio_from(&w, l, speaker) >= 8);
    assert!(audio_from(&w, a, speaker) >= 8);
    assert_eq!(
        w.clients[s]
            .events
            .iter()
            .filter(|e| matches!(e, str0m::Event::MediaData(_)))
            .count(),
        0,
        "nothing forwarded to the speaker"
    );
}

#[test]
fn ice_restart_moves_media_to_the_clients_new_address() {
    let mut w = World::new(50);
    let (a, _) = join_with(&mut w, "Ana", JoinOptions::default());
    let first_ufrag = LAST_UFRAG.with(|u| u.borrow().clone());
    assert!(!first_ufrag.is_empty());
    let (b, _) = join_with(&mut w, "Ben", JoinOptions::default());
    assert!(w.run_until(Duration::from_secs(10), |w| w.settled(2)));
    let (ana, ben) = (w.clients[a].id, w.clients[b].id);
    send_media(&mut w, 5, 4);
    let heard_before = audio_from(&w, b, ana);
    let got_before = audio_from(&w, a, ben);
    assert!(heard_before >= 4 && got_before >= 4);

    // Ana's network changes: new address, the old one is dead. She restarts ICE.
    let new_addr: SocketAddr = "10.0.9.9:6000".parse().unwrap();
    let now = w.now;
    let cl = &mut w.clients[a];
    let mut api = cl.rtc.sdp_api();
    let creds = api.ice_restart(false);
    let (offer, pending) = api.apply().expect("a restart offer");
    let offer_sdp = offer.to_sdp_string();
    assert!(offer_sdp.contains(&format!("a=ice-ufrag:{}", creds.ufrag)));
    let announced = announcements(cl);
    let answer = w
        .engine
        .handle_offer(now, ana, &offer_sdp, &announced)
        .expect("the engine accepts the ICE restart");
    let server_ufrag = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("ufrag in answer")
        .to_string();
    let cl = &mut w.clients[a];
    cl.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .expect("str0m accepts the restart answer");
    cl.rtc
        .add_local_candidate(Str0mCandidate::host(new_addr, "udp").unwrap());
    cl.addr = new_addr;
    assert_ne!(
        server_ufrag, first_ufrag,
        "new server credentials in the restart answer"
    );

    // Checks from the new address, then media both ways on the new path.
    w.run_for(Duration::from_secs(2));
    assert!(w.clients[a].connected());
    send_media(&mut w, 10, 5);
    let heard_after = audio_from(&w, b, ana) - heard_before;
    let got_after = audio_from(&w, a, ben) - got_before;
    assert!(
        heard_after >= 8,
        "Ben hears Ana after the restart ({heard_after})"
    );
    assert!(
        got_after >= 8,
        "Ana hears Ben on her new address ({got_after})"
    );
    // The engine kept her (no timeout, no leave) and the DTLS association (no new one).
    assert!(w.engine.participant(ana).is_some());
    assert_eq!(leave_or_join_notices(&w.clients[b], ana), 0);
    // The old ufrag no longer routes: a restart answer must differ from the first one.
    assert!(
        w.engine.counters().timeouts == 0,
        "no participant timed out during the restart"
    );
}

//! WHIP publishers and WHEP viewers in the engine, with str0m 0.24 (crates.io) as the
//! independent client on both sides, in-process and sans-IO over the simulated network of
//! `engine_common`: a WHIP publisher is announced and forwarded like any participant but
//! gets nothing back; WHEP viewers are invisible, get their m-lines filled with the room's
//! tracks in publication order, and receive the media byte for byte.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

use tympan_rtc_engine::whip::SessionKind;
use tympan_rtc_engine::{ErrorCode, LeaveReason, Notice, ParticipantId, TrackSource};

mod engine_common;
use engine_common::{Client, World, opus_frame, vp8_frame};

fn new_client(w: &World, name: &str) -> Client {
    let n = w.clients.len() + 2;
    let addr: SocketAddr = format!("10.0.2.{n}:5000").parse().unwrap();
    let mut rtc = Rtc::new(w.now);
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    Client {
        id: ParticipantId(0),
        name: name.into(),
        rtc,
        addr,
        events: Vec::new(),
        notices: Vec::new(),
        silent: false,
        audio: None,
        video: None,
        offered: HashMap::new(),
        answered: 0,
    }
}

/// A str0m WHIP client: sendonly Opus + VP8 through `Engine::whip_publish`.
fn whip(w: &mut World, room: &str, name: &str) -> usize {
    let mut c = new_client(w, name);
    let mut api = c.rtc.sdp_api();
    let a = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let v = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let (id, answer) = w
        .engine
        .whip_publish(w.now, room, name, &offer.to_sdp_string())
        .expect("WHIP publish");
    assert!(answer.contains("a=candidate:"), "the answer has candidates");
    c.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .expect("str0m accepts the WHIP answer");
    c.id = id;
    c.audio = Some(a);
    c.video = Some(v);
    w.clients.push(c);
    w.clients.len() - 1
}

/// A str0m WHEP client with recvonly m-lines of these kinds. Returns its index and mids.
fn whep(
    w: &mut World,
    room: &str,
    only: Option<ParticipantId>,
    kinds: &[MediaKind],
) -> (usize, Vec<String>) {
    let mut c = new_client(w, "viewer");
    let mut api = c.rtc.sdp_api();
    let mids: Vec<String> = kinds
        .iter()
        .map(|k| {
            api.add_media(*k, Direction::RecvOnly, None, None, None)
                .to_string()
        })
        .collect();
    let (offer, pending) = api.apply().unwrap();
    let (id, answer) = w
        .engine
        .whep_subscribe(w.now, room, only, &offer.to_sdp_string())
        .expect("WHEP subscribe");
    c.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .expect("str0m accepts the WHEP answer");
    c.id = id;
    w.clients.push(c);
    (w.clients.len() - 1, mids)
}

/// Sends 20 audio frames and 12 video frames (keyframes at 0 and 6) from `publishers`.
/// Per publisher index: (audio frames, video frames) sent.
type Sent = HashMap<usize, (Vec<Vec<u8>>, Vec<Vec<u8>>)>;

fn send_media(w: &mut World, publishers: &[usize]) -> Sent {
    let mut sent = Sent::new();
    for i in 0..24u64 {
        for &p in publishers {
            let now = w.now;
            let a = opus_frame(i as u8, p as u8);
            w.clients[p].write_audio(now, i, &a);
            let e = sent.entry(p).or_default();
            e.0.push(a);
            if i % 2 == 0 {
                let v = vp8_frame(1200, (i as u8) ^ (p as u8), i % 12 == 0);
                w.clients[p].write_video(now, i / 2, &v);
                e.1.push(v);
            }
        }
        w.run_for(Duration::from_millis(20));
    }
    w.run_for(Duration::from_millis(200));
    sent
}

/// `received` ends with the last frames of `sent` (the start may be cut at a keyframe).
fn tail_matches(received: &[Vec<u8>], sent: &[Vec<u8>]) -> bool {
    !received.is_empty() && sent.ends_with(received)
}

#[test]
fn whip_publishers_are_forwarded_and_whep_viewers_watch_invisibly() {
    let mut w = World::new(50);
    let ana = w.join("live", "Ana", true);
    let obs = whip(&mut w, "live", "OBS");
    let obs_id = w.clients[obs].id;
    assert_eq!(
        w.engine.whip_session(obs_id),
        Some(SessionKind::WhipPublisher)
    );
    assert_eq!(w.engine.whip_session(w.clients[ana].id), None);

    // The WHIP publisher is announced with a microphone and a camera.
    let info = w.engine.participant(obs_id).expect("WHIP participant");
    assert_eq!(info.name, "OBS");
    let sources: Vec<TrackSource> = info.tracks.iter().map(|t| t.source).collect();
    assert_eq!(sources, [TrackSource::Microphone, TrackSource::Camera]);
    assert!(
        w.run_until(Duration::from_secs(10), |w| w.clients[ana].connected()
            && w.clients[obs].connected()
            && w.clients[ana].offered.len() == 2)
    );

    // Viewer 1 watches OBS only (audio, video, and one video m-line too many); viewer 2
    // watches the room: two audio m-lines and one video, filled in publication order.
    let (v1, v1_mids) = whep(
        &mut w,
        "live",
        Some(obs_id),
        &[MediaKind::Audio, MediaKind::Video, MediaKind::Video],
    );
    let (v2, v2_mids) = whep(
        &mut w,
        "live",
        None,
        &[MediaKind::Audio, MediaKind::Audio, MediaKind::Video],
    );
    assert!(
        w.run_until(Duration::from_secs(10), |w| w.clients[v1].connected()
            && w.clients[v2].connected())
    );

    let summary = w.engine.rooms().next().unwrap();
    assert_eq!((summary.participants, summary.viewers), (2, 2));
    let late = w.engine.join(w.now, "live", "Cy").unwrap();
    let names: Vec<&str> = late.participants.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Ana", "OBS"], "viewers are not listed");
    w.engine.leave(w.now, late.participant, LeaveReason::Left);

    let sent = send_media(&mut w, &[ana, obs]);
    let (ana_audio, ana_video) = &sent[&ana];
    let (obs_audio, obs_video) = &sent[&obs];
    let v1c = &w.clients[v1];
    assert!(
        tail_matches(&v1c.frames_on(&v1_mids[0]), obs_audio),
        "v1 audio = OBS"
    );
    assert!(
        tail_matches(&v1c.frames_on(&v1_mids[1]), obs_video),
        "v1 video = OBS"
    );
    assert!(
        v1c.frames_on(&v1_mids[2]).is_empty(),
        "surplus m-line stays silent"
    );
    let v2c = &w.clients[v2];
    assert!(
        tail_matches(&v2c.frames_on(&v2_mids[0]), ana_audio),
        "v2 audio 0 = Ana"
    );
    assert!(
        tail_matches(&v2c.frames_on(&v2_mids[1]), obs_audio),
        "v2 audio 1 = OBS"
    );
    assert!(
        tail_matches(&v2c.frames_on(&v2_mids[2]), ana_video),
        "v2 video = Ana"
    );
    assert!(
        v1c.frames_on(&v1_mids[1]).len() >= 6,
        "video from a keyframe on"
    );
    // Ana receives the WHIP publisher's media like any participant's.
    let obs_tracks: Vec<_> = info.tracks.iter().map(|t| t.id).collect();
    assert!(tail_matches(
        &w.clients[ana].frames_from(obs_tracks[0]),
        obs_audio
    ));
    assert!(tail_matches(
        &w.clients[ana].frames_from(obs_tracks[1]),
        obs_video
    ));

    // Headless sessions get no notices and no server offers; the room never hears of viewers.
    for c in [obs, v1, v2] {
        assert!(w.clients[c].notices.is_empty(), "{}", w.clients[c].name);
        assert_eq!(w.clients[c].answered, 0);
    }
    let viewer_ids = [w.clients[v1].id, w.clients[v2].id];
    let about_viewers = w.clients[ana].notices.iter().any(|n| match n {
        Notice::ParticipantJoined(p) | Notice::ParticipantUpdated(p) => viewer_ids.contains(&p.id),
        Notice::ParticipantLeft { participant, .. } => viewer_ids.contains(participant),
        _ => false,
    });
    assert!(!about_viewers);

    // DELETE of the WHIP session: Ana is told it left; the viewers' OBS tracks go silent
    // without any renegotiation.
    let offers_before = w.engine.counters().offers;
    w.engine.end_session(w.now, obs_id);
    w.run_for(Duration::from_millis(100));
    assert!(w.clients[ana].notices.iter().any(|n| matches!(n,
        Notice::ParticipantLeft { participant, reason: LeaveReason::Left } if *participant == obs_id)));
    assert_eq!(w.engine.whip_session(obs_id), None);
    assert_eq!(w.clients[v1].answered + w.clients[v2].answered, 0);
    assert_eq!(
        w.engine.counters().offers,
        offers_before + 1,
        "only Ana is renegotiated"
    );
    // A viewer's DELETE is silent for the room.
    let ana_notices = w.clients[ana].notices.len();
    w.engine.end_session(w.now, w.clients[v2].id);
    w.run_for(Duration::from_millis(50));
    assert_eq!(w.clients[ana].notices.len(), ana_notices);
    assert_eq!(w.engine.rooms().next().unwrap().viewers, 1);
    // end_session does not touch WebSocket participants.
    w.engine.end_session(w.now, w.clients[ana].id);
    assert!(w.engine.participant(w.clients[ana].id).is_some());
}

#[test]
fn whip_and_whep_errors_leave_nothing_behind() {
    let mut w = World::new(2);
    let ana = w.join("err", "Ana", true);
    w.exchange();
    let before = w.clients[ana].notices.len();
    // Bad SDP, an offer that publishes nothing, bad names.
    let e = w
        .engine
        .whip_publish(w.now, "err", "X", "v=0 nope")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadSdp);
    let mut c = new_client(&w, "recv");
    let mut api = c.rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (recv_only, _) = api.apply().unwrap();
    let recv_only = recv_only.to_sdp_string();
    let e = w
        .engine
        .whip_publish(w.now, "err", "X", &recv_only)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NegotiationFailed);
    let mut c = new_client(&w, "send");
    let mut api = c.rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (send_only, _) = api.apply().unwrap();
    let send_only = send_only.to_sdp_string();
    let e = w
        .engine
        .whip_publish(w.now, "bad room", "X", &send_only)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadName);
    let e = w
        .engine
        .whip_publish(w.now, "err", " ", &send_only)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadName);
    // An offer the engine cannot negotiate (no common codec) is undone without a trace.
    let pcmu = send_only
        .replace("opus/48000/2", "PCMU/8000")
        .replace("a=fmtp:111", "a=fmtp:0");
    let pcmu = pcmu
        .replacen("UDP/TLS/RTP/SAVPF 111", "UDP/TLS/RTP/SAVPF 0", 1)
        .replace("rtpmap:111", "rtpmap:0");
    let e = w.engine.whip_publish(w.now, "err", "X", &pcmu).unwrap_err();
    assert_eq!(e.code, ErrorCode::NegotiationFailed, "{e}");
    w.exchange();
    assert_eq!(
        w.clients[ana].notices.len(),
        before,
        "no join/leave flicker"
    );
    assert_eq!(w.engine.rooms().next().unwrap().participants, 1);
    // WHEP: unknown room, a participant not in the room.
    let e = w
        .engine
        .whep_subscribe(w.now, "nope", None, &recv_only)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotJoined);
    let e = w
        .engine
        .whep_subscribe(w.now, "err", Some(ParticipantId(99)), &recv_only)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotJoined);
    let e = w
        .engine
        .whep_subscribe(w.now, "err", None, "garbage")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadSdp);
    // Room full counts WHIP publishers, not viewers.
    let (_, _) = whep(&mut w, "err", None, &[MediaKind::Audio]);
    let _obs = whip(&mut w, "err", "OBS");
    let e = w
        .engine
        .whip_publish(w.now, "err", "Third", &send_only)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::RoomFull);
    assert_eq!(w.engine.rooms().next().unwrap().viewers, 1);
}

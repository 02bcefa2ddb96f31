//! Last-N audio and speaking detection with 50 independent clients: str0m 0.24 (crates.io),
//! in-process and sans-IO over the simulated network of `engine_common`, join one room with
//! the default configuration (last-N above 20 participants, 3 slots). Each publishes Opus with
//! the RFC 6464 audio-level extension written by str0m; 3 are loud, 47 silent, and every
//! payload names its publisher. Checked on what the str0m clients decode and what the
//! engine's notices say.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use str0m::Event;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime};
use str0m::{Candidate as Str0mCandidate, Rtc};

use tympan_rtc_engine::{Notice, ParticipantId, TrackAnnouncement, TrackSource};

mod engine_common;
use engine_common::{Client, World};

const CLIENTS: usize = 50;
const FRAME: Duration = Duration::from_millis(20);

/// Joins a client that publishes one microphone track (no video) and opens no data channel.
fn join_audio_only(w: &mut World, room: &str, name: &str) -> usize {
    let joined = w.engine.join(w.now, room, name).expect("join");
    let n = w.clients.len();
    let addr = format!("10.0.{}.{}:5000", 1 + n / 200, 2 + n % 200)
        .parse()
        .unwrap();
    let mut rtc = Rtc::new(w.now);
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
    c.audio = Some(a);
    let (offer, pending) = api.apply().expect("an offer");
    let tracks = [TrackAnnouncement {
        mid: a.to_string(),
        kind: tympan_sdp::MediaKind::Audio,
        source: TrackSource::Microphone,
        muted: false,
    }];
    let answer = w
        .engine
        .handle_offer(w.now, c.id, &offer.to_sdp_string(), &tracks)
        .expect("engine answers");
    c.rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .expect("str0m accepts the answer");
    w.clients.push(c);
    w.clients.len() - 1
}

/// One 20 ms Opus frame of client `k`, with the audio level str0m writes into RFC 6464.
fn write_frame(c: &mut Client, k: usize, now: Instant, i: u64, loud: bool) {
    let pt = c.pt(Codec::Opus);
    let mid = c.audio.expect("audio mid");
    let mut payload = vec![0xA0, k as u8];
    payload.extend_from_slice(&(i as u32).to_be_bytes());
    payload.resize(48, 0x55);
    let (level, voice) = if loud { (-12, true) } else { (-127, false) };
    c.rtc
        .writer(mid)
        .expect("writer")
        .audio_level(level, voice)
        .write(pt, now, MediaTime::from_millis(20 * i), payload)
        .expect("write opus");
}

/// The slot mids of a client, from the server offers it received.
fn slot_mids(c: &Client) -> BTreeMap<String, u8> {
    let mut m = BTreeMap::new();
    for n in &c.notices {
        if let Notice::Offer { tracks, .. } = n {
            for t in tracks {
                if let Some(s) = t.slot {
                    m.insert(t.mid.clone(), s);
                }
            }
        }
    }
    m
}

/// (arrival time, publisher index, slot mid, first seq, last seq) of every slot frame.
fn slot_frames(c: &Client) -> Vec<(Instant, usize, String, u64, u64)> {
    let mids = slot_mids(c);
    c.events
        .iter()
        .filter_map(|e| match e {
            Event::MediaData(d) if mids.contains_key(&d.mid.to_string()) => Some((
                d.network_time,
                usize::from(*d.data.get(1)?),
                d.mid.to_string(),
                **d.seq_range.start(),
                **d.seq_range.end(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn fifty_publishers_three_talkers_each_subscriber_hears_exactly_the_talkers() {
    let wall = std::time::Instant::now();
    let mut w = World::new(CLIENTS);
    for k in 0..CLIENTS {
        join_audio_only(&mut w, "big", &format!("P{k}"));
        w.exchange();
    }
    let settled = w.run_until(Duration::from_secs(20), |w| {
        w.clients
            .iter()
            .all(|c| c.connected() && slot_mids(c).len() == 3)
    });
    assert!(settled, "not settled");
    let setup = wall.elapsed();
    let ids: Vec<ParticipantId> = w.clients.iter().map(|c| c.id).collect();
    // Last-N: every client has exactly 3 audio m-lines towards it, all slots.
    for c in &w.clients {
        let last_offer = c
            .notices
            .iter()
            .rev()
            .find_map(|n| match n {
                Notice::Offer { tracks, .. } => Some(tracks.clone()),
                _ => None,
            })
            .expect("a server offer");
        assert_eq!(last_offer.len(), 3, "{}: {last_offer:?}", c.name);
        assert!(last_offer.iter().all(|t| t.slot.is_some()));
    }

    // ---- phase 1: 0, 1, 2 talk.
    let mut talkers: BTreeSet<usize> = [0, 1, 2].into();
    let mut i = 0u64;
    let talk = |w: &mut World, talkers: &BTreeSet<usize>, d: Duration, i: &mut u64| {
        let end = w.now + d;
        while w.now < end {
            let now = w.now;
            for (k, c) in w.clients.iter_mut().enumerate() {
                write_frame(c, k, now, *i, talkers.contains(&k));
            }
            *i += 1;
            w.run_for(FRAME);
        }
    };
    talk(&mut w, &talkers, Duration::from_millis(1000), &mut i);
    let phase1_end = w.now;
    let check_window = |w: &World, from: Instant, to: Instant, talkers: &BTreeSet<usize>| {
        for (r, c) in w.clients.iter().enumerate() {
            let heard: BTreeSet<usize> = slot_frames(c)
                .into_iter()
                .filter(|f| f.0 >= from && f.0 < to)
                .map(|f| f.1)
                .collect();
            let expected: BTreeSet<usize> = talkers.iter().copied().filter(|&t| t != r).collect();
            assert_eq!(heard, expected, "client {r} heard {heard:?} in the window");
        }
    };
    check_window(
        &w,
        phase1_end - Duration::from_millis(600),
        phase1_end,
        &talkers,
    );

    // ---- phase 2: 1 stops, 10 starts.
    let switch_at = w.now;
    talkers = [0, 2, 10].into();
    talk(&mut w, &talkers, Duration::from_millis(1000), &mut i);
    for (r, c) in w.clients.iter().enumerate() {
        if r == 10 {
            continue;
        }
        let first = slot_frames(c)
            .into_iter()
            .find(|f| f.1 == 10)
            .map(|f| f.0)
            .unwrap_or_else(|| panic!("client {r} never heard the new talker"));
        let delay = first - switch_at;
        assert!(
            delay <= Duration::from_millis(300),
            "client {r} heard the new talker after {delay:?}"
        );
    }
    // The stopped talker keeps a free slot until its hangover ends (~650 ms), then only the
    // three talkers are heard.
    check_window(&w, w.now - Duration::from_millis(250), w.now, &talkers);

    // ---- every slot's stream is continuous: no sequence gaps or repeats across switches.
    let mut switches = 0;
    for c in &w.clients {
        let frames = slot_frames(c);
        for mid in slot_mids(c).keys() {
            let on: Vec<_> = frames.iter().filter(|f| &f.2 == mid).collect();
            for pair in on.windows(2) {
                assert_eq!(
                    pair[1].3,
                    pair[0].4 + 1,
                    "{}: slot {mid} gap or repeat",
                    c.name
                );
                if pair[1].1 != pair[0].1 {
                    switches += 1;
                }
            }
        }
    }
    assert!(switches > 0, "no slot switched publishers");

    // ---- notices: speaking edges, active speakers and slot mappings match.
    for (r, c) in w.clients.iter().enumerate() {
        let mut speaking: BTreeMap<ParticipantId, bool> = BTreeMap::new();
        for n in &c.notices {
            if let Notice::Speaking {
                participant,
                speaking: s,
            } = n
            {
                assert_ne!(speaking.insert(*participant, *s), Some(*s), "repeated edge");
            }
        }
        let now_speaking: BTreeSet<ParticipantId> = speaking
            .iter()
            .filter(|(_, s)| **s)
            .map(|(p, _)| *p)
            .collect();
        let expected: BTreeSet<ParticipantId> = talkers.iter().map(|&t| ids[t]).collect();
        assert_eq!(now_speaking, expected, "client {r}: speaking events");
        assert_eq!(speaking.get(&ids[1]), Some(&false), "P1 stopped speaking");
        let active = c
            .notices
            .iter()
            .rev()
            .find_map(|n| match n {
                Notice::ActiveSpeakers(list) => Some(list.clone()),
                _ => None,
            })
            .expect("active_speakers");
        let active_set: BTreeSet<ParticipantId> = active.iter().map(|(p, _)| *p).collect();
        assert_eq!(active_set, expected, "client {r}: active speakers");
        assert!(
            active.iter().all(|(_, l)| *l > 0.8 && *l <= 1.0),
            "{active:?}"
        );
        let slots = c
            .notices
            .iter()
            .rev()
            .find_map(|n| match n {
                Notice::AudioSlots(s) => Some(s.clone()),
                _ => None,
            })
            .expect("audio_slots");
        let carried: BTreeSet<ParticipantId> = slots.iter().filter_map(|(_, p)| *p).collect();
        let expected_others: BTreeSet<ParticipantId> =
            expected.iter().copied().filter(|&p| p != ids[r]).collect();
        assert_eq!(carried, expected_others, "client {r}: audio_slots");
    }
    eprintln!(
        "50 clients: setup {setup:?}, whole test {:?} (debug)",
        wall.elapsed()
    );
}

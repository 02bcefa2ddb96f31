//! The engine side of speaking detection ([`crate::speaking`]) and last-N audio
//! ([`crate::last_n`]): reading the audio level in the forward path, forwarding into slots,
//! and the periodic tick that sends `speaking` / `active_speakers` / `audio_slots` and moves
//! speakers between slots. A child module of `engine` (it works on the engine's private
//! state).

use std::time::Instant;

use tympan_rtp::extensions::{ExtensionKind, ExtensionMap, KnownExtension};
use tympan_rtp::rtp::RtpPacket;
use tympan_sdp::MediaKind;

use super::{Engine, Participant, Track, codecs_of};
use crate::forward::{ExtIdMap, Forwarder, Outcome, PtMap};
use crate::last_n::{Candidate, Slot, assign};
use crate::notice::Notice;
use crate::room::{ParticipantId, TrackId};
use crate::speaking::TICK;

/// Stream id (msid) of the slot m-lines in the subscriber's SDP.
const SLOT_STREAM: &str = "tympan-slots";

/// Reads the RFC 6464 level of one publisher packet into the track's voice activity. No
/// allocation: the packet is parsed in place and the extension id comes from the publisher's
/// negotiated map.
pub(super) fn observe_level(now: Instant, ext: &ExtensionMap, track: &mut Track, packet: &[u8]) {
    if track.kind != MediaKind::Audio {
        return;
    }
    let Ok(rtp) = RtpPacket::parse(packet) else {
        return;
    };
    if let Some(Ok(KnownExtension::AudioLevel { voice, level })) =
        ext.get(&rtp, ExtensionKind::AudioLevel)
    {
        track.vad.on_level(now, level, voice);
    }
}

impl Engine {
    /// Whether `participant`'s room forwards audio through last-N slots.
    pub(super) fn in_last_n(&self, participant: ParticipantId) -> bool {
        self.participants
            .get(&participant)
            .and_then(|p| self.speech.get(&p.room))
            .is_some_and(|r| r.last_n)
    }

    /// Switches `room` to last-N when it has grown past the threshold: every participant's
    /// per-publisher audio m-lines are replaced by N slots (one server offer each).
    pub(super) fn check_last_n(&mut self, now: Instant, room: &str) {
        let Some(size) = self.rooms.get(room).map(|r| r.len()) else {
            return;
        };
        let state = self.speech.entry(room.to_owned()).or_default();
        if state.last_n || size <= self.config.last_n_threshold {
            return;
        }
        state.last_n = true;
        tracing::info!(
            room,
            participants = size,
            slots = self.config.last_n,
            "room switches to last-N audio"
        );
        let members: Vec<ParticipantId> = self
            .rooms
            .get(room)
            .map(|r| r.members.keys().copied().collect())
            .unwrap_or_default();
        for &q in &members {
            // Drop q's audio subscriptions.
            let audio: Vec<(String, ParticipantId, TrackId)> = self
                .participants
                .get(&q)
                .into_iter()
                .flat_map(|x| x.receiving.iter())
                .filter(|r| {
                    self.participants
                        .get(&r.publisher)
                        .and_then(|p| p.tracks.iter().find(|t| t.id == r.track))
                        .is_some_and(|t| t.kind == MediaKind::Audio)
                })
                .map(|r| (r.mid.clone(), r.publisher, r.track))
                .collect();
            for (mid, publisher, track) in audio {
                if let Some(t) = self
                    .participants
                    .get_mut(&publisher)
                    .and_then(|p| p.tracks.iter_mut().find(|t| t.id == track))
                {
                    t.subscribers
                        .retain(|s| !(s.subscriber == q && s.mid == mid));
                }
                if let Some(x) = self.participants.get_mut(&q) {
                    if let Some(peer) = x.peer.as_mut() {
                        peer.remove_send_track(&mid);
                    }
                    x.receiving.retain(|r| r.mid != mid);
                }
            }
            self.add_slots(q);
        }
        for q in members {
            self.maybe_offer(now, q);
        }
    }

    /// Gives `participant` its N slot m-lines (in a last-N room, once it has a peer).
    pub(super) fn add_slots(&mut self, participant: ParticipantId) {
        // WHIP/WHEP sessions never renegotiate; a participant without the right to subscribe
        // receives nothing.
        if !self.in_last_n(participant) || self.sessions.is_headless(participant) {
            return;
        }
        if self
            .participants
            .get(&participant)
            .is_some_and(|q| !q.access.options.can_subscribe)
        {
            return;
        }
        let n = self.config.last_n.min(usize::from(u8::MAX));
        let Some(q) = self.participants.get_mut(&participant) else {
            return;
        };
        let Some(peer) = q.peer.as_mut() else {
            return;
        };
        if !q.slots.is_empty() {
            return;
        }
        for i in 0..n {
            let ssrc = self.rng.ssrc();
            let seed = self.rng.next_u64();
            let mid = peer.add_send_track(MediaKind::Audio, ssrc, SLOT_STREAM, &format!("slot{i}"));
            q.slots.push(Slot {
                mid,
                forwarder: Forwarder::new(ssrc, 48_000, seed, false),
                ready: false,
                source: None,
            });
        }
        let mapping = (0..n).map(|i| (i as u8, None)).collect();
        self.notify(participant, Notice::AudioSlots(mapping));
    }

    /// Marks negotiated slots ready and rebuilds their payload-type and extension maps (after
    /// an offer/answer of the subscriber).
    pub(super) fn refresh_slots(&mut self, subscriber: ParticipantId) {
        let n = self
            .participants
            .get(&subscriber)
            .map_or(0, |q| q.slots.len());
        for i in 0..n {
            self.refresh_slot(subscriber, i);
        }
    }

    /// Recomputes slot `i` of `subscriber` for its current source.
    fn refresh_slot(&mut self, subscriber: ParticipantId, i: usize) {
        let Some(q) = self.participants.get(&subscriber) else {
            return;
        };
        let (Some(peer), Some(slot)) = (q.peer.as_ref(), q.slots.get(i)) else {
            return;
        };
        let sending = peer.media().any(|m| m.mid == slot.mid && m.sending);
        let sub_codecs = if sending {
            codecs_of(peer, &slot.mid)
        } else {
            Vec::new()
        };
        let negotiated = q.outstanding.is_none();
        let send_ext = q.send_ext;
        let source = slot.source.and_then(|(p, t)| {
            let x = self.participants.get(&p)?;
            let track = x.tracks.iter().find(|tr| tr.id == t)?;
            Some((codecs_of(x.peer.as_ref()?, &track.mid), x.recv_ext))
        });
        let Some(slot) = self
            .participants
            .get_mut(&subscriber)
            .and_then(|q| q.slots.get_mut(i))
        else {
            return;
        };
        slot.ready = sending && !sub_codecs.is_empty() && (negotiated || slot.ready);
        match source {
            Some((pub_codecs, recv_ext)) => {
                slot.forwarder.pt_map = PtMap::build(&pub_codecs, &sub_codecs);
                slot.forwarder.ext_map = ExtIdMap::build(&recv_ext, &send_ext);
            }
            None => slot.forwarder.pt_map = PtMap::default(),
        }
    }

    /// Points slot `i` of `subscriber` at `source` (listener lists of the old and new track
    /// updated, maps rebuilt). The slot's rewriter continues its stream across the switch.
    fn set_slot_source(
        &mut self,
        subscriber: ParticipantId,
        i: usize,
        source: Option<(ParticipantId, TrackId)>,
    ) {
        let Some(old) = self
            .participants
            .get_mut(&subscriber)
            .and_then(|q| q.slots.get_mut(i))
            .map(|s| std::mem::replace(&mut s.source, source))
        else {
            return;
        };
        let me = (subscriber, i as u8);
        if let Some((p, t)) = old
            && let Some(track) = self
                .participants
                .get_mut(&p)
                .and_then(|x| x.tracks.iter_mut().find(|tr| tr.id == t))
        {
            track.slot_listeners.retain(|l| *l != me);
        }
        if let Some((p, t)) = source
            && let Some(track) = self
                .participants
                .get_mut(&p)
                .and_then(|x| x.tracks.iter_mut().find(|tr| tr.id == t))
            && !track.slot_listeners.contains(&me)
        {
            track.slot_listeners.push(me);
        }
        self.refresh_slot(subscriber, i);
    }

    /// Forwards one publisher packet (track index `ti`) into every slot that carries it.
    pub(super) fn forward_to_slots(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        ti: usize,
        packet: &[u8],
    ) {
        let Some(t) = self
            .participants
            .get_mut(&publisher)
            .and_then(|p| p.tracks.get_mut(ti))
        else {
            return;
        };
        if t.slot_listeners.is_empty() {
            return;
        }
        let track = t.id;
        // Moved out (no allocation) so that the subscribers can be borrowed.
        let listeners = std::mem::take(&mut t.slot_listeners);
        for &(qid, i) in &listeners {
            let Some(q) = self.participants.get_mut(&qid) else {
                continue;
            };
            let Participant {
                slots,
                peer,
                connected,
                ..
            } = q;
            let (Some(slot), Some(peer)) = (slots.get_mut(usize::from(i)), peer.as_mut()) else {
                continue;
            };
            if slot.source != Some((publisher, track)) {
                continue; // stale entry, cleaned up by the next tick
            }
            if !slot.ready || !*connected {
                self.counters.rtp_not_forwarded += 1;
                continue;
            }
            match slot.forwarder.forward(now, packet, &mut self.scratch) {
                Outcome::Send(len) => {
                    let out = self.scratch.get(..len).unwrap_or(&[]);
                    match peer.send_rtp(now, &slot.mid, out) {
                        Ok(()) => {
                            self.counters.rtp_forwarded += 1;
                            self.counters.rtp_bytes_forwarded += len as u64;
                        }
                        Err(_) => self.counters.rtp_not_forwarded += 1,
                    }
                }
                _ => self.counters.rtp_not_forwarded += 1,
            }
        }
        if let Some(t) = self
            .participants
            .get_mut(&publisher)
            .and_then(|p| p.tracks.get_mut(ti))
        {
            t.slot_listeners = listeners;
        }
    }

    /// The periodic tick: voice activity of every audio track, `speaking` and
    /// `active_speakers` events, last-N slot assignment.
    pub(super) fn speech_tick(&mut self, now: Instant) {
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        let mut any_audio = false;
        for room in rooms {
            any_audio |= self.speech_tick_room(now, &room);
        }
        self.speech_tick = any_audio.then_some(now + TICK);
    }

    /// One room's tick; returns whether the room has an audio track.
    fn speech_tick_room(&mut self, now: Instant, room: &str) -> bool {
        let members: Vec<ParticipantId> = self
            .rooms
            .get(room)
            .map(|r| r.members.keys().copied().collect())
            .unwrap_or_default();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut speakers: Vec<(ParticipantId, f32)> = Vec::new();
        let mut edges: Vec<(ParticipantId, bool)> = Vec::new();
        let mut any_audio = false;
        for &pid in &members {
            let Some(p) = self.participants.get_mut(&pid) else {
                continue;
            };
            let mut speaking = false;
            let mut level = 0.0f32;
            for t in p.tracks.iter_mut().filter(|t| t.kind == MediaKind::Audio) {
                any_audio = true;
                t.vad.tick(now, t.muted);
                if t.vad.speaking() {
                    speaking = true;
                    level = level.max(t.vad.level());
                    candidates.push(Candidate {
                        participant: pid,
                        track: t.id,
                        level: t.vad.level(),
                    });
                }
            }
            if speaking {
                speakers.push((pid, level));
            }
            if p.speaking_notified.due(now, speaking) {
                tracing::debug!(participant = %pid, speaking, level, "speaking edge");
                p.speaking_notified.speaking = speaking;
                p.speaking_notified.at = Some(now);
                edges.push((pid, speaking));
            }
        }
        for (participant, speaking) in edges {
            for &q in &members {
                self.notify(
                    q,
                    Notice::Speaking {
                        participant,
                        speaking,
                    },
                );
            }
        }
        speakers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let state = self.speech.entry(room.to_owned()).or_default();
        if state.active_due(now, &speakers) {
            state.active = speakers.iter().map(|s| s.0).collect();
            state.active_at = Some(now);
            for &q in &members {
                self.notices
                    .push_back((q, Notice::ActiveSpeakers(speakers.clone())));
            }
        }
        if state.last_n {
            self.assign_slots(&members, &candidates);
        }
        any_audio
    }

    /// Last-N: moves speakers into and out of every member's slots.
    fn assign_slots(&mut self, members: &[ParticipantId], candidates: &[Candidate]) {
        for &q in members {
            let current: Vec<Option<(ParticipantId, TrackId)>> = match self.participants.get(&q) {
                Some(x) if !x.slots.is_empty() => x.slots.iter().map(|s| s.source).collect(),
                _ => continue,
            };
            let mut next = vec![None; current.len()];
            assign(&current, candidates, q, &mut next);
            if next == current {
                continue;
            }
            for (i, (&old, &new)) in current.iter().zip(&next).enumerate() {
                if old != new {
                    self.set_slot_source(q, i, new);
                }
            }
            let mapping = next
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u8, s.map(|(p, _)| p)))
                .collect();
            self.notify(q, Notice::AudioSlots(mapping));
        }
        // Drop listener entries of departed subscribers and of switched slots.
        for &p in members {
            let valid: Vec<Vec<(ParticipantId, u8)>> = match self.participants.get(&p) {
                Some(x) => x
                    .tracks
                    .iter()
                    .map(|t| {
                        t.slot_listeners
                            .iter()
                            .copied()
                            .filter(|&(q, i)| {
                                self.participants
                                    .get(&q)
                                    .and_then(|y| y.slots.get(usize::from(i)))
                                    .is_some_and(|s| s.source == Some((p, t.id)))
                            })
                            .collect()
                    })
                    .collect(),
                None => continue,
            };
            if let Some(x) = self.participants.get_mut(&p) {
                for (t, v) in x.tracks.iter_mut().zip(valid) {
                    if t.slot_listeners.len() != v.len() {
                        t.slot_listeners = v;
                    }
                }
            }
        }
    }
}

//! The engine entry points of WHIP publishers and WHEP viewers (the SDP side is in
//! [`crate::whip`]). A child module of `engine` so that it can reach the engine's
//! participants and tracks.

use std::time::Instant;

use tympan_sdp::MediaKind;

use super::{Engine, Incoming, Participant, extmap_of, name_error, peer_error};
use crate::notice::{ErrorCode, LeaveReason, Notice, SignalError};
use crate::peer::{Peer, PeerConfig};
use crate::room::{ParticipantId, TrackAnnouncement, TrackSource, validate_room_name};
use crate::whip::{AvailableTrack, SessionKind, assign_tracks, summarize_offer};

/// The display name of WHEP viewers (never shown to the room).
const VIEWER_NAME: &str = "WHEP viewer";

impl Engine {
    /// A WHIP publisher (RFC 9725) joins `room` as `name` with the SDP `offer`: it is
    /// announced to the room like any participant ([`Notice::ParticipantJoined`], then
    /// [`Notice::TrackPublished`] for each sending m-line: audio as `microphone`, video as
    /// `camera`) and its tracks are forwarded to everyone. It is publish-only: it never gets
    /// server offers or subscriptions, and notices addressed to it are dropped. Returns its
    /// id and the SDP answer (with the server's candidates; no trickle needed).
    ///
    /// Errors: `bad_name`, `room_full`, `bad_sdp`, `negotiation_failed` (also when the
    /// offer sends no audio or video), `internal` after [`Engine::close`]. On error nothing
    /// is left behind and the room hears nothing.
    pub fn whip_publish(
        &mut self,
        now: Instant,
        room: &str,
        name: &str,
        offer: &str,
    ) -> Result<(ParticipantId, String), SignalError> {
        let summary = summarize_offer(offer)?;
        let tracks: Vec<TrackAnnouncement> = summary
            .sections
            .iter()
            .filter(|s| s.publishes())
            .map(|s| TrackAnnouncement {
                mid: s.mid.clone(),
                kind: s.kind.clone(),
                source: if s.kind == MediaKind::Audio {
                    TrackSource::Microphone
                } else {
                    TrackSource::Camera
                },
                muted: false,
            })
            .collect();
        if tracks.is_empty() {
            return Err(SignalError::new(
                ErrorCode::NegotiationFailed,
                "a WHIP offer must send at least one audio or video m-line",
            ));
        }
        let joined = self.join(now, room, name)?;
        let pid = joined.participant;
        self.sessions.insert(pid, SessionKind::WhipPublisher);
        match self.handle_offer(now, pid, offer, &tracks) {
            Ok(answer) => {
                tracing::debug!(participant = %pid, room, "WHIP publisher joined");
                Ok((pid, answer))
            }
            Err(e) => {
                // Undo the join without the room ever hearing of it (all of this happened
                // within this call: nothing was delivered yet).
                self.remove_participant(now, pid, LeaveReason::Left);
                self.notices.retain(|(_, n)| !mentions(n, pid));
                Err(e)
            }
        }
    }

    /// A WHEP viewer (draft-ietf-wish-whep) of `room`: its offer's m-lines that want to
    /// receive are filled, in m-line order, with the room's current tracks of the same kind
    /// in publication order (only `participant`'s tracks when it is `Some`); surplus m-lines
    /// are answered `inactive`. The subscriptions are wired at once and video ones ask the
    /// publisher for a keyframe. The viewer is invisible: not announced, not in
    /// participant lists, not counted against the room size (see [`crate::RoomSummary`]'s
    /// `viewers`). Tracks published later are not added (WHEP has no renegotiation here);
    /// a served track whose publisher leaves goes silent. Returns the viewer's id and the
    /// SDP answer (with the server's candidates).
    ///
    /// Errors: `bad_name` (room name), `not_joined` (no such room, or `participant` is not
    /// in it), `bad_sdp`, `negotiation_failed`, `internal` after [`Engine::close`].
    pub fn whep_subscribe(
        &mut self,
        now: Instant,
        room: &str,
        participant: Option<ParticipantId>,
        offer: &str,
    ) -> Result<(ParticipantId, String), SignalError> {
        if self.closed {
            return Err(SignalError::new(
                ErrorCode::Internal,
                "server shutting down",
            ));
        }
        validate_room_name(room).map_err(|p| name_error("room name", p))?;
        let Some(members) = self.rooms.get(room) else {
            return Err(SignalError::new(
                ErrorCode::NotJoined,
                format!("there is no room named {room}"),
            ));
        };
        if let Some(p) = participant
            && !members.members.contains_key(&p)
        {
            return Err(SignalError::new(
                ErrorCode::NotJoined,
                format!("{p} is not in room {room}"),
            ));
        }
        let summary = summarize_offer(offer)?;
        let mut available: Vec<AvailableTrack> = members
            .members
            .keys()
            .filter(|q| participant.is_none_or(|p| p == **q))
            .filter(|q| !self.sessions.is_viewer(**q))
            .filter_map(|q| self.participants.get(q).map(|x| (*q, x)))
            .flat_map(|(q, x)| x.tracks.iter().map(move |t| (q, t.id, t.kind.clone())))
            .collect();
        // Publication order: track ids grow with every publication.
        available.sort_by_key(|(_, t, _)| *t);
        let assignment = assign_tracks(&summary.sections, &available);

        let pid = ParticipantId(self.next_participant);
        self.next_participant += 1;
        let seed = self.rng.next_u64();
        let mut peer = Peer::new(
            PeerConfig {
                local_candidates: self.local_candidates.clone(),
                dtls: self.dtls.clone(),
                seed,
                cname: format!("tympan-{pid}"),
            },
            now,
        );
        // (mid, publisher, track, kind, ssrc, forwarder seed)
        let mut wired = Vec::new();
        for (section, slot) in summary.sections.iter().zip(&assignment) {
            if let Some((publisher, track)) = slot {
                let ssrc = self.rng.ssrc();
                let fseed = self.rng.next_u64();
                wired.push((
                    section.mid.clone(),
                    *publisher,
                    *track,
                    section.kind.clone(),
                    ssrc,
                    fseed,
                ));
            }
        }
        let ids: Vec<(String, String)> = wired
            .iter()
            .map(|(_, p, t, _, _, _)| (p.to_string(), t.to_string()))
            .collect();
        let sends: Vec<(&str, u32, &str, &str)> = wired
            .iter()
            .zip(&ids)
            .map(|((mid, _, _, _, ssrc, _), (p, t))| (mid.as_str(), *ssrc, p.as_str(), t.as_str()))
            .collect();
        let answer = peer
            .accept_offer_sending(now, offer, &sends)
            .map_err(peer_error)?;
        self.router.insert(peer.local_ufrag().to_owned(), pid);
        let ext = extmap_of(offer);
        let mut viewer = Participant {
            name: VIEWER_NAME.to_owned(),
            room: room.to_owned(),
            peer: Some(peer),
            answered: true,
            connected: false,
            tracks: Vec::new(),
            receiving: Vec::new(),
            negotiation: 0,
            outstanding: None,
            recv_ext: Default::default(),
            send_ext: Default::default(),
            tuples: Vec::new(),
            slots: Vec::new(),
            speaking_notified: Default::default(),
            access: super::access::ParticipantAccess::new(
                super::JoinOptions {
                    identity: None,
                    can_publish: false,
                    can_subscribe: true,
                },
                self.token_rng.token(),
            ),
        };
        if let Some(map) = ext {
            viewer.recv_ext = map;
            viewer.send_ext = map;
        }
        for (mid, publisher, track, kind, ssrc, fseed) in wired {
            viewer.receiving.push(Incoming {
                mid: mid.clone(),
                publisher,
                track,
            });
            self.attach_subscription(publisher, track, pid, mid, ssrc, fseed, &kind);
        }
        self.participants.insert(pid, viewer);
        self.sessions.insert(pid, SessionKind::WhepViewer);
        // Payload-type and extension maps, ready flags, keyframe requests for video.
        self.refresh_subscriptions(now, pid);
        tracing::debug!(participant = %pid, room, served = ids.len(), "WHEP viewer added");
        Ok((pid, answer))
    }

    /// Ends a WHIP or WHEP session (HTTP `DELETE`): a WHIP publisher leaves the room like a
    /// participant saying `leave` (the others get [`Notice::ParticipantLeft`] with reason
    /// `left`); a WHEP viewer just goes away. No-op for unknown ids and for participants
    /// that joined over signalling (use [`Engine::leave`] for them).
    pub fn end_session(&mut self, now: Instant, participant: ParticipantId) {
        if self.whip_session(participant).is_some() {
            self.remove_participant(now, participant, LeaveReason::Left);
        }
    }

    /// What kind of WHIP/WHEP session `participant` is, while it exists (`None` for
    /// participants that joined over signalling, and once the session ended or its media
    /// path was lost).
    pub fn whip_session(&self, participant: ParticipantId) -> Option<SessionKind> {
        if !self.participants.contains_key(&participant) {
            return None;
        }
        self.sessions.kind(participant)
    }

    /// WHEP viewers currently watching `room`.
    pub(crate) fn viewers_of(&self, room: &str) -> usize {
        self.participants
            .iter()
            .filter(|(id, p)| p.room == room && self.sessions.is_viewer(**id))
            .count()
    }
}

/// Whether a notice is about participant `p` (to purge an undone WHIP join).
fn mentions(n: &Notice, p: ParticipantId) -> bool {
    match n {
        Notice::ParticipantJoined(info) | Notice::ParticipantUpdated(info) => info.id == p,
        Notice::ParticipantLeft { participant, .. }
        | Notice::TrackPublished { participant, .. }
        | Notice::TrackUnpublished { participant, .. } => *participant == p,
        _ => false,
    }
}

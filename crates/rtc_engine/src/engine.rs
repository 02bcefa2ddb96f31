//! The top-level [`Engine`]: rooms of participants, each with one [`Peer`], and the
//! forwarding of media between them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tympan_ice::agent::{Candidate, TcpType, UfragRouter};
use tympan_rtp::extensions::ExtensionMap;
use tympan_sdp::MediaKind;

use crate::forward::{ExtIdMap, Forwarder, Outcome, PtMap};
use crate::notice::{ErrorCode, LeaveReason, Notice, SignalError};
use crate::peer::{
    CodecInfo, Datagram, DisconnectReason, Peer, PeerConfig, PeerError, PeerEvent, Received,
    SignalingState, TimeoutReason, TransmitMeta, Transport,
};
use crate::room::{
    ChatEntry, Joined, NameProblem, OfferedTrack, ParticipantId, ParticipantInfo, PublishedTrack,
    Room, TrackAnnouncement, TrackId, TrackInfo, TrackSource, validate_chat, validate_display_name,
    validate_room_name,
};
use crate::seed_rng::SeedRng;
use crate::stats::{EngineStats, RoomDetails};

// A child module so that it can reach the engine's internals; the file sits beside this one.
#[path = "room_data.rs"]
pub(crate) mod room_data;

// Speaking detection and last-N slots: the engine side of `speaking.rs` and `last_n.rs`.
#[path = "speaking_engine.rs"]
mod speaking_engine;

mod whip_sessions;

mod access;
pub use access::JoinOptions;

/// Keyframe requests to one publisher track are sent at most this often.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// How long a removed participant's peer is kept to flush its DTLS close_notify.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Size of the forwarding scratch buffer (larger packets are not forwarded).
const SCRATCH_LEN: usize = 4096;

/// Configuration of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Advertised UDP host candidates (the public ip:port of the media socket).
    pub udp_addrs: Vec<SocketAddr>,
    /// Advertised ICE-TCP passive candidates.
    pub tcp_addrs: Vec<SocketAddr>,
    /// The server's DTLS certificate (one for all peers).
    pub certificate: tympan_dtls::DtlsCertificate,
    /// Most participants in one room (default 50).
    pub max_room_size: usize,
    /// Seed of ICE credentials, SSRCs and sequence numbers (fix it for reproducible tests).
    pub seed: u64,
    /// Largest room-data message, in bytes (default 16 KiB); larger ones get `too_large`.
    pub max_data_message: usize,
    /// Chat messages a room keeps for late joiners (default 100; 0 keeps none).
    pub chat_history: usize,
    /// Audio slots per subscriber in last-N rooms (default 3; see [`crate::last_n`]).
    pub last_n: usize,
    /// Rooms with more participants than this switch to last-N audio (default 20; 0 = every
    /// room).
    pub last_n_threshold: usize,
    /// How long a participant whose signalling connection went away is kept for
    /// [`Engine::resume`] (default 20 s).
    pub resume_grace: Duration,
    /// Key of the generator of resume tokens: fill it from the operating system's random
    /// source in production (the default, all zeros, makes tokens predictable).
    pub secret_seed: [u8; 32],
}

impl EngineConfig {
    /// A configuration with the given certificate, no addresses, room size 50, seed 0,
    /// room-data messages up to 16 KiB, 100 chat messages of history.
    pub fn new(certificate: tympan_dtls::DtlsCertificate) -> Self {
        EngineConfig {
            udp_addrs: Vec::new(),
            tcp_addrs: Vec::new(),
            certificate,
            max_room_size: 50,
            seed: 0,
            max_data_message: room_data::DEFAULT_MAX_DATA_MESSAGE,
            chat_history: 100,
            last_n: 3,
            last_n_threshold: 20,
            resume_grace: Duration::from_secs(20),
            secret_seed: [0; 32],
        }
    }
}

/// Why an [`Engine`] could not be created.
#[derive(Debug)]
pub enum EngineError {
    /// The DTLS context could not be set up.
    Dtls(tympan_dtls::DtlsError),
    /// The configuration is unusable.
    Config(&'static str),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Dtls(e) => write!(f, "DTLS setup failed: {e}"),
            EngineError::Config(m) => write!(f, "bad engine configuration: {m}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// Counters of the whole engine (for logs and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounters {
    /// Datagrams handed to [`Engine::handle_datagram`].
    pub datagrams_in: u64,
    /// Datagrams that reached no peer (unknown ufrag and 5-tuple).
    pub dropped: u64,
    /// Datagrams a peer dropped (garbage, not for it, unknown stream, not connected).
    pub garbage: u64,
    /// Datagrams whose SRTP authentication failed.
    pub srtp_failures: u64,
    /// RTP packets received from publishers.
    pub rtp_in: u64,
    /// RTP packets sent to subscribers (one per subscriber).
    pub rtp_forwarded: u64,
    /// Packet copies not forwarded to a subscriber (no shared codec, waiting for a keyframe,
    /// subscriber not connected or not negotiated yet).
    pub rtp_not_forwarded: u64,
    /// Keyframe requests (PLI/FIR) sent to publishers.
    pub plis: u64,
    /// Keyframe requests held back by the 500 ms throttle.
    pub plis_throttled: u64,
    /// Server offers sent.
    pub offers: u64,
    /// Participants removed because their media path was lost.
    pub timeouts: u64,
    /// Bytes of the datagrams handed to [`Engine::handle_datagram`].
    pub bytes_in: u64,
    /// Datagrams handed out by [`Engine::poll_transmit`].
    pub datagrams_out: u64,
    /// Bytes of those datagrams.
    pub bytes_out: u64,
    /// Plaintext RTP bytes (header and payload) received from publishers.
    pub rtp_bytes_in: u64,
    /// Plaintext RTP bytes sent to subscribers (counted with [`EngineCounters::rtp_forwarded`]).
    pub rtp_bytes_forwarded: u64,
    /// RTCP compounds received (all peers).
    pub rtcp_in: u64,
    /// RTCP compounds sent (reports, NACKs, PLI/FIR, transport-wide CC feedback).
    pub rtcp_out: u64,
    /// Packets subscribers asked to have retransmitted (NACKed sequence numbers).
    pub nacks_received: u64,
    /// Packets the server asked publishers to retransmit (NACKed sequence numbers).
    pub nacks_sent: u64,
    /// Retransmissions sent to subscribers in answer to their NACKs (RTX when negotiated).
    pub rtx_sent: u64,
    /// RTX retransmissions received from publishers (answers to the server's NACKs).
    pub rtx_received: u64,
    /// PLIs received from subscribers.
    pub plis_received: u64,
    /// FIRs received from subscribers.
    pub firs_received: u64,
    /// Data channel messages received from participants.
    pub data_messages_in: u64,
    /// Data channel messages sent to participants.
    pub data_messages_out: u64,
}

/// One room, for logs/metrics/`/api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    /// Room name.
    pub name: String,
    /// Participants in it.
    pub participants: usize,
    /// Published tracks in it.
    pub tracks: usize,
    /// WHEP viewers watching it (not in `participants`).
    pub viewers: usize,
}

/// One subscriber of a published track.
#[derive(Debug)]
struct Subscription {
    subscriber: ParticipantId,
    /// The mid in the subscriber's peer.
    mid: String,
    forwarder: Forwarder,
    /// Negotiated with the subscriber (its answer arrived) and a codec is shared.
    ready: bool,
}

/// A published track.
#[derive(Debug)]
struct Track {
    id: TrackId,
    /// The mid in the publisher's peer.
    mid: String,
    kind: MediaKind,
    source: TrackSource,
    muted: bool,
    subscribers: Vec<Subscription>,
    last_keyframe_request: Option<Instant>,
    keyframe_request_pending: bool,
    /// Voice activity from the RFC 6464 audio level (audio tracks).
    vad: crate::speaking::VoiceActivity,
    /// Last-N slots carrying this track: (subscriber, slot index).
    slot_listeners: Vec<(ParticipantId, u8)>,
}

impl Track {
    fn info(&self) -> TrackInfo {
        TrackInfo {
            id: self.id,
            kind: self.kind.clone(),
            source: self.source,
            muted: self.muted,
        }
    }
}

/// A track this participant receives.
#[derive(Debug, Clone)]
struct Incoming {
    mid: String,
    publisher: ParticipantId,
    track: TrackId,
}

#[derive(Debug)]
struct Participant {
    name: String,
    room: String,
    peer: Option<Peer>,
    /// The client's offer has been answered (the peer has a remote description).
    answered: bool,
    /// DTLS-SRTP is up.
    connected: bool,
    tracks: Vec<Track>,
    receiving: Vec<Incoming>,
    /// Number of the last server offer.
    negotiation: u64,
    /// The server offer waiting for its answer.
    outstanding: Option<u64>,
    /// Extension ids the client sends with (from its offer).
    recv_ext: ExtensionMap,
    /// Extension ids the client parses (from its latest SDP).
    send_ext: ExtensionMap,
    /// 5-tuples learned for this participant.
    tuples: Vec<(SocketAddr, SocketAddr, Transport)>,
    /// Last-N audio slots (in last-N rooms).
    slots: Vec<crate::last_n::Slot>,
    /// The last `speaking` event about this participant.
    speaking_notified: crate::speaking::SpeakingNotified,
    /// Grants, resume token, detached state.
    access: access::ParticipantAccess,
}

impl Participant {
    fn info(&self, id: ParticipantId) -> ParticipantInfo {
        ParticipantInfo {
            id,
            name: self.name.clone(),
            tracks: self.tracks.iter().map(Track::info).collect(),
        }
    }
}

/// The sans-IO room server: see the crate documentation for how to drive it.
///
/// Participants join rooms over signalling ([`Engine::join`], [`Engine::handle_offer`], ...),
/// their media arrives as datagrams ([`Engine::handle_datagram`]) and is forwarded to every
/// other participant of the room; what to tell each participant comes out of
/// [`Engine::poll_notice`], what to send on the wire out of [`Engine::poll_transmit`].
pub struct Engine {
    config: EngineConfig,
    dtls: Arc<tympan_dtls::DtlsContext>,
    local_candidates: Vec<Candidate>,
    rng: SeedRng,
    next_participant: u64,
    next_track: u64,
    rooms: BTreeMap<String, Room>,
    participants: BTreeMap<ParticipantId, Participant>,
    router: UfragRouter<ParticipantId>,
    tuples: HashMap<(SocketAddr, SocketAddr, Transport), ParticipantId>,
    notices: VecDeque<(ParticipantId, Notice)>,
    /// Peers of removed participants, kept until their close_notify is sent.
    closing: Vec<(Peer, Instant)>,
    counters: EngineCounters,
    stats: EngineStats,
    scratch: Vec<u8>,
    tx_cursor: ParticipantId,
    closed: bool,
    /// Per room: last-N mode and the last active-speakers list.
    speech: BTreeMap<String, crate::speaking::RoomSpeech>,
    /// Next speaking/last-N tick (while some room has an audio track).
    speech_tick: Option<Instant>,
    /// WHIP publishers and WHEP viewers (participants without a WebSocket).
    sessions: crate::whip::Sessions,
    token_rng: access::TokenRng,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("rooms", &self.rooms.len())
            .field("participants", &self.participants.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn name_error(what: &str, problem: NameProblem) -> SignalError {
    SignalError::new(ErrorCode::BadName, format!("{what} {problem}"))
}

fn peer_error(e: PeerError) -> SignalError {
    let code = match &e {
        PeerError::BadSdp(_) => ErrorCode::BadSdp,
        PeerError::Negotiation(_) => ErrorCode::NegotiationFailed,
        PeerError::Glare => ErrorCode::Glare,
        PeerError::StaleAnswer => ErrorCode::StaleAnswer,
        PeerError::NotReady | PeerError::Closed | PeerError::Send(_) => ErrorCode::Internal,
    };
    SignalError::new(code, e.to_string())
}

fn not_joined(p: ParticipantId) -> SignalError {
    SignalError::new(ErrorCode::NotJoined, format!("{p} is not in a room"))
}

/// The header-extension table of an SDP (all sections merged; BUNDLE shares one table).
fn extmap_of(sdp: &str) -> Option<ExtensionMap> {
    let parsed = tympan_sdp::parse(sdp).ok()?;
    let mut map = ExtensionMap::new();
    let mut any = false;
    let attrs = parsed
        .attributes
        .iter()
        .chain(parsed.media.iter().flat_map(|m| m.attributes.iter()));
    for a in attrs {
        if let tympan_sdp::Attribute::Extmap(e) = a {
            any |= map.insert_uri(e.id, &e.uri);
        }
    }
    any.then_some(map)
}

fn codecs_of(peer: &Peer, mid: &str) -> Vec<CodecInfo> {
    peer.media()
        .find(|m| m.mid == mid)
        .map(|m| m.codecs.to_vec())
        .unwrap_or_default()
}

fn clock_rate_of(kind: &MediaKind) -> u32 {
    if *kind == MediaKind::Audio {
        48_000
    } else {
        90_000
    }
}

impl Engine {
    /// A new engine. Needs at least one UDP or TCP address to advertise.
    pub fn new(config: EngineConfig, now: Instant) -> Result<Self, EngineError> {
        if config.udp_addrs.is_empty() && config.tcp_addrs.is_empty() {
            return Err(EngineError::Config("no UDP or TCP address to advertise"));
        }
        if config.max_room_size == 0 {
            return Err(EngineError::Config("max_room_size is 0"));
        }
        let dtls = tympan_dtls::DtlsContext::new(
            config.certificate.clone(),
            tympan_dtls::DtlsConfig::default(),
        )
        .map_err(EngineError::Dtls)?;
        let local_candidates = config
            .udp_addrs
            .iter()
            .map(|&a| Candidate::host(a))
            .chain(
                config
                    .tcp_addrs
                    .iter()
                    .map(|&a| Candidate::host_tcp(a, TcpType::Passive)),
            )
            .collect();
        Ok(Engine {
            rng: SeedRng::new(config.seed),
            token_rng: access::TokenRng::new(&config),
            config,
            dtls: Arc::new(dtls),
            local_candidates,
            next_participant: 1,
            next_track: 1,
            rooms: BTreeMap::new(),
            participants: BTreeMap::new(),
            router: UfragRouter::new(),
            tuples: HashMap::new(),
            notices: VecDeque::new(),
            closing: Vec::new(),
            counters: EngineCounters::default(),
            stats: EngineStats::new(now),
            scratch: vec![0; SCRATCH_LEN],
            tx_cursor: ParticipantId(0),
            closed: false,
            speech: BTreeMap::new(),
            speech_tick: None,
            sessions: Default::default(),
        })
    }

    fn notify(&mut self, to: ParticipantId, notice: Notice) {
        self.notices.push_back((to, notice));
    }

    fn notify_others(&mut self, room: &str, except: ParticipantId, notice: &Notice) {
        if self.sessions.is_viewer(except) {
            return; // WHEP viewers are invisible
        }
        if let Some(r) = self.rooms.get(room) {
            for q in r.others(except) {
                self.notices.push_back((q, notice.clone()));
            }
        }
    }

    fn room_of(&self, p: ParticipantId) -> Result<String, SignalError> {
        self.participants
            .get(&p)
            .map(|x| x.room.clone())
            .ok_or_else(|| not_joined(p))
    }

    // ------------------------------------------------------------------ signalling

    /// Joins `name` to `room` (created on first join). The others in the room get
    /// [`Notice::ParticipantJoined`]. Errors: `bad_name`, `room_full`, `internal` after
    /// [`Engine::close`].
    pub fn join(&mut self, now: Instant, room: &str, name: &str) -> Result<Joined, SignalError> {
        self.join_with(now, room, name, JoinOptions::default())
    }

    fn join_inner(
        &mut self,
        now: Instant,
        room: &str,
        name: &str,
        options: JoinOptions,
    ) -> Result<Joined, SignalError> {
        if self.closed {
            return Err(SignalError::new(
                ErrorCode::Internal,
                "server shutting down",
            ));
        }
        validate_room_name(room).map_err(|p| name_error("room name", p))?;
        let name = validate_display_name(name).map_err(|p| name_error("display name", p))?;
        if let Some(r) = self.rooms.get(room)
            && r.len() >= self.config.max_room_size
        {
            return Err(SignalError::new(
                ErrorCode::RoomFull,
                format!(
                    "room {room} has reached its limit of {} participants",
                    self.config.max_room_size
                ),
            ));
        }
        let id = ParticipantId(self.next_participant);
        self.next_participant += 1;
        let r = self.rooms.entry(room.to_owned()).or_default();
        let others: Vec<ParticipantId> = r.others(id).collect();
        r.insert(id);
        let participant = Participant {
            name: name.to_owned(),
            room: room.to_owned(),
            peer: None,
            answered: false,
            connected: false,
            tracks: Vec::new(),
            receiving: Vec::new(),
            negotiation: 0,
            outstanding: None,
            recv_ext: ExtensionMap::new(),
            send_ext: ExtensionMap::new(),
            tuples: Vec::new(),
            slots: Vec::new(),
            speaking_notified: Default::default(),
            access: access::ParticipantAccess::new(options.clone(), self.token_rng.token()),
        };
        let resume_token = participant.access.resume_token.clone();
        let info = participant.info(id);
        self.participants.insert(id, participant);
        let participants = others
            .iter()
            .filter_map(|q| self.participants.get(q).map(|x| x.info(*q)))
            .collect();
        let chat_history = self
            .rooms
            .get(room)
            .map(|r| r.chat_history.iter().cloned().collect())
            .unwrap_or_default();
        self.notify_others(room, id, &Notice::ParticipantJoined(info));
        self.check_last_n(now, room);
        tracing::debug!(participant = %id, room, "joined");
        Ok(Joined {
            participant: id,
            room: room.to_owned(),
            participants,
            chat_history,
            identity: options.identity,
            can_publish: options.can_publish,
            can_subscribe: options.can_subscribe,
            resume_token,
        })
    }

    /// Removes a participant from its room (no-op if unknown): its tracks are unpublished
    /// from everyone (renegotiating them), the others get [`Notice::ParticipantLeft`], its
    /// peer closes (DTLS close_notify), and an empty room is removed.
    pub fn leave(&mut self, now: Instant, participant: ParticipantId, reason: LeaveReason) {
        self.remove_participant(now, participant, reason);
    }

    /// A client offer (the first one creates its peer connection): returns the SDP answer.
    /// Every sending m-line becomes a published track (metadata from `tracks`, by mid);
    /// m-lines that stopped sending are unpublished. Errors: `not_joined`, `glare` (a server
    /// offer is outstanding), `bad_sdp`, `negotiation_failed`.
    pub fn handle_offer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        sdp: &str,
        tracks: &[TrackAnnouncement],
    ) -> Result<String, SignalError> {
        let pid = participant;
        let seed = self.rng.next_u64();
        let p = self
            .participants
            .get_mut(&pid)
            .ok_or_else(|| not_joined(pid))?;
        if let Some(n) = p.outstanding {
            return Err(SignalError::new(
                ErrorCode::Glare,
                format!(
                    "server offer {n} is waiting for your answer: roll back, answer it, then offer again"
                ),
            ));
        }
        let created = p.peer.is_none();
        let can_publish = p.access.options.can_publish;
        let old_ufrag = p.peer.as_ref().map(|peer| peer.local_ufrag().to_owned());
        let peer = p.peer.get_or_insert_with(|| {
            Peer::new(
                PeerConfig {
                    local_candidates: self.local_candidates.clone(),
                    dtls: self.dtls.clone(),
                    seed,
                    cname: format!("tympan-{pid}"),
                },
                now,
            )
        });
        if created {
            peer.set_accept_media(can_publish);
        }
        let answer = match peer.accept_offer(now, sdp) {
            Ok(a) => a,
            Err(e) => {
                if created {
                    p.peer = None;
                }
                return Err(peer_error(e));
            }
        };
        if created {
            self.router.insert(peer.local_ufrag().to_owned(), pid);
        } else if let Some(old) = old_ufrag.filter(|old| old != peer.local_ufrag()) {
            // ICE restart: checks now carry the new ufrag.
            self.router.remove(&old);
            self.router.insert(peer.local_ufrag().to_owned(), pid);
        }
        p.answered = true;
        if let Some(map) = extmap_of(sdp) {
            p.recv_ext = map;
            p.send_ext = map;
        }
        // What the client sends now.
        let sending: Vec<(String, MediaKind)> = peer
            .media()
            .filter(|m| m.receiving)
            .map(|m| (m.mid.to_owned(), m.kind.clone()))
            .collect();
        let room = p.room.clone();
        let gone: Vec<TrackId> = p
            .tracks
            .iter()
            .filter(|t| !sending.iter().any(|(mid, _)| *mid == t.mid))
            .map(|t| t.id)
            .collect();
        // Metadata updates of tracks that stay.
        let mut updated = false;
        for t in p.tracks.iter_mut() {
            if let Some(a) = tracks.iter().find(|a| a.mid == t.mid)
                && (a.muted != t.muted || a.source != t.source)
            {
                t.muted = a.muted;
                t.source = a.source;
                updated = true;
            }
        }
        let new: Vec<(String, MediaKind)> = sending
            .into_iter()
            .filter(|(mid, _)| !p.tracks.iter().any(|t| t.mid == *mid))
            .collect();

        let mut affected: Vec<ParticipantId> = vec![pid];
        for t in gone {
            self.unpublish(pid, t, &mut affected);
        }
        if updated && let Some(info) = self.participants.get(&pid).map(|x| x.info(pid)) {
            self.notify_others(&room, pid, &Notice::ParticipantUpdated(info));
        }
        for (mid, kind) in new {
            let announced = tracks.iter().find(|a| a.mid == mid);
            let id = TrackId(self.next_track);
            self.next_track += 1;
            let track = Track {
                id,
                mid,
                kind,
                source: announced.map_or(TrackSource::Other, |a| a.source),
                muted: announced.is_some_and(|a| a.muted),
                subscribers: Vec::new(),
                last_keyframe_request: None,
                keyframe_request_pending: false,
                vad: Default::default(),
                slot_listeners: Vec::new(),
            };
            if track.kind == MediaKind::Audio {
                self.speech_tick.get_or_insert(now);
            }
            let info = track.info();
            if let Some(p) = self.participants.get_mut(&pid) {
                p.tracks.push(track);
            }
            self.notify_others(
                &room,
                pid,
                &Notice::TrackPublished {
                    participant: pid,
                    track: info,
                },
            );
            let others: Vec<ParticipantId> = self
                .rooms
                .get(&room)
                .map(|r| r.others(pid).collect())
                .unwrap_or_default();
            for q in others {
                if self.subscribe(q, pid, id) {
                    affected.push(q);
                }
            }
        }
        if created {
            // The newcomer receives everything already published in the room.
            let existing: Vec<(ParticipantId, TrackId)> = self
                .rooms
                .get(&room)
                .into_iter()
                .flat_map(|r| r.others(pid))
                .flat_map(|q| {
                    self.participants
                        .get(&q)
                        .into_iter()
                        .flat_map(move |x| x.tracks.iter().map(move |t| (q, t.id)))
                })
                .collect();
            for (q, t) in existing {
                self.subscribe(pid, q, t);
            }
            self.add_slots(pid);
        }
        // The publisher's codecs may have changed: refresh its subscriptions.
        let subs: Vec<ParticipantId> = self
            .participants
            .get(&pid)
            .into_iter()
            .flat_map(|x| x.tracks.iter())
            .flat_map(|t| t.subscribers.iter().map(|s| s.subscriber))
            .collect();
        for q in subs {
            self.refresh_subscriptions(now, q);
        }
        self.refresh_subscriptions(now, pid);
        affected.sort_unstable();
        affected.dedup();
        for q in affected {
            self.maybe_offer(now, q);
        }
        Ok(answer)
    }

    /// The client's answer to the server offer numbered `negotiation`. Errors: `not_joined`,
    /// `stale_answer` (not the outstanding offer), `bad_sdp`, `negotiation_failed`.
    pub fn handle_answer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        negotiation: u64,
        sdp: &str,
    ) -> Result<(), SignalError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or_else(|| not_joined(participant))?;
        if p.outstanding != Some(negotiation) {
            let message = match p.outstanding {
                Some(n) => format!("the outstanding server offer is {n}, not {negotiation}"),
                None => format!("no server offer is outstanding (got answer to {negotiation})"),
            };
            return Err(SignalError::new(ErrorCode::StaleAnswer, message));
        }
        let Some(peer) = p.peer.as_mut() else {
            return Err(SignalError::new(ErrorCode::Internal, "no peer connection"));
        };
        peer.accept_answer(now, sdp).map_err(peer_error)?;
        p.outstanding = None;
        if let Some(map) = extmap_of(sdp) {
            p.send_ext = map;
        }
        self.refresh_subscriptions(now, participant);
        self.maybe_offer(now, participant);
        Ok(())
    }

    /// A trickled client candidate (`None` or `""` = end of candidates). Accepted (and
    /// ignored) before the first offer: the server is ICE-lite and learns addresses from
    /// the client's checks. Errors: `not_joined`, `bad_sdp` for a malformed candidate.
    pub fn add_remote_candidate(
        &mut self,
        participant: ParticipantId,
        candidate: Option<&str>,
    ) -> Result<(), SignalError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or_else(|| not_joined(participant))?;
        match p.peer.as_mut() {
            Some(peer) => peer.add_remote_candidate(candidate).map_err(peer_error),
            None => Ok(()),
        }
    }

    /// Sets a published track's mute flag; the others get [`Notice::ParticipantUpdated`]
    /// when it changed. Errors: `not_joined`, `unknown_track`.
    pub fn set_muted(
        &mut self,
        _now: Instant,
        participant: ParticipantId,
        track: TrackId,
        muted: bool,
    ) -> Result<(), SignalError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or_else(|| not_joined(participant))?;
        let t = p.tracks.iter_mut().find(|t| t.id == track).ok_or_else(|| {
            SignalError::new(
                ErrorCode::UnknownTrack,
                format!("{participant} did not publish {track}"),
            )
        })?;
        if t.muted != muted {
            t.muted = muted;
            let info = p.info(participant);
            let room = p.room.clone();
            self.notify_others(&room, participant, &Notice::ParticipantUpdated(info));
        }
        Ok(())
    }

    /// A chat message: everyone in the room, the sender included, gets [`Notice::Chat`], and
    /// the room remembers it for late joiners ([`Joined::chat_history`], the last
    /// [`EngineConfig::chat_history`]). `timestamp_ms` is the shell's wall-clock time (ms since
    /// the Unix epoch): the engine never reads wall time. Errors: `not_joined`, `too_large`
    /// (over 2000 characters), `bad_message` (empty or control characters).
    pub fn chat(
        &mut self,
        _now: Instant,
        participant: ParticipantId,
        text: &str,
        timestamp_ms: u64,
    ) -> Result<(), SignalError> {
        let room = self.room_of(participant)?;
        validate_chat(text).map_err(|p| match p {
            NameProblem::TooLong => SignalError::new(
                ErrorCode::TooLarge,
                format!("chat text over {} characters", crate::room::MAX_CHAT_CHARS),
            ),
            other => SignalError::new(ErrorCode::BadMessage, format!("chat text {other}")),
        })?;
        let name = self
            .participants
            .get(&participant)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let notice = Notice::Chat {
            from: participant,
            name: name.clone(),
            text: text.to_owned(),
            timestamp_ms,
        };
        if let Some(r) = self.rooms.get_mut(&room) {
            for q in r.members.keys() {
                self.notices.push_back((*q, notice.clone()));
            }
            let entry = ChatEntry {
                from: participant,
                name,
                text: text.to_owned(),
                timestamp_ms,
            };
            r.remember_chat(entry, self.config.chat_history);
        }
        Ok(())
    }

    /// The next notice for some participant, in the order they must be delivered. Notices
    /// for detached participants ([`Engine::detach`]) are dropped.
    pub fn poll_notice(&mut self) -> Option<(ParticipantId, Notice)> {
        // WHIP/WHEP sessions have no WebSocket and detached participants have lost theirs:
        // their notices are dropped here.
        while let Some((to, notice)) = self.notices.pop_front() {
            if self.sessions.is_headless(to) || self.is_detached(to) {
                continue;
            }
            return Some((to, notice));
        }
        None
    }

    // ------------------------------------------------------------------ internals

    /// Adds a send track for `track` of `publisher` to `subscriber`'s peer. False if the
    /// subscriber has no peer yet (it gets the track when its peer is created).
    fn subscribe(
        &mut self,
        subscriber: ParticipantId,
        publisher: ParticipantId,
        track: TrackId,
    ) -> bool {
        if self.sessions.is_headless(subscriber) {
            return false; // WHIP publishers receive nothing; WHEP viewers are wired once
        }
        let Some(kind) = self
            .participants
            .get(&publisher)
            .and_then(|p| p.tracks.iter().find(|t| t.id == track))
            .map(|t| t.kind.clone())
        else {
            return false;
        };
        if kind == MediaKind::Audio && self.in_last_n(subscriber) {
            return false; // heard through the subscriber's slots
        }
        if self
            .participants
            .get(&subscriber)
            .is_some_and(|q| !q.access.options.can_subscribe)
        {
            return false;
        }
        let ssrc = self.rng.ssrc();
        let seed = self.rng.next_u64();
        let Some(q) = self.participants.get_mut(&subscriber) else {
            return false;
        };
        let Some(peer) = q.peer.as_mut() else {
            return false;
        };
        let mid = peer.add_send_track(
            kind.clone(),
            ssrc,
            &publisher.to_string(),
            &track.to_string(),
        );
        q.receiving.push(Incoming {
            mid: mid.clone(),
            publisher,
            track,
        });
        self.attach_subscription(publisher, track, subscriber, mid, ssrc, seed, &kind);
        true
    }

    /// Adds `subscriber`'s outgoing stream (`mid`, `ssrc`) to `publisher`'s `track`, not yet
    /// ready (it becomes ready in [`Engine::refresh_subscriptions`] once negotiated).
    #[allow(clippy::too_many_arguments)] // one call per subscription kind, all values distinct
    fn attach_subscription(
        &mut self,
        publisher: ParticipantId,
        track: TrackId,
        subscriber: ParticipantId,
        mid: String,
        ssrc: u32,
        seed: u64,
        kind: &MediaKind,
    ) {
        let video = *kind == MediaKind::Video;
        if let Some(t) = self
            .participants
            .get_mut(&publisher)
            .and_then(|p| p.tracks.iter_mut().find(|t| t.id == track))
        {
            t.subscribers.push(Subscription {
                subscriber,
                mid,
                forwarder: Forwarder::new(ssrc, clock_rate_of(kind), seed, video),
                ready: false,
            });
        }
    }

    /// Removes a published track from its publisher and every subscriber.
    fn unpublish(
        &mut self,
        publisher: ParticipantId,
        track: TrackId,
        affected: &mut Vec<ParticipantId>,
    ) {
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        let Some(i) = p.tracks.iter().position(|t| t.id == track) else {
            return;
        };
        let t = p.tracks.remove(i);
        let room = p.room.clone();
        for s in t.subscribers {
            if let Some(q) = self.participants.get_mut(&s.subscriber) {
                if let Some(peer) = q.peer.as_mut() {
                    peer.remove_send_track(&s.mid);
                }
                q.receiving.retain(|r| r.mid != s.mid);
                affected.push(s.subscriber);
            }
        }
        self.notify_others(
            &room,
            publisher,
            &Notice::TrackUnpublished {
                participant: publisher,
                track,
            },
        );
    }

    /// Recomputes the payload-type and extension maps of everything `subscriber` receives
    /// and marks negotiated subscriptions ready; new video subscriptions ask for a keyframe.
    fn refresh_subscriptions(&mut self, now: Instant, subscriber: ParticipantId) {
        let Some(q) = self.participants.get(&subscriber) else {
            return;
        };
        let Some(qpeer) = q.peer.as_ref() else {
            return;
        };
        let mut updates = Vec::new();
        for r in &q.receiving {
            let sending = qpeer.media().any(|m| m.mid == r.mid && m.sending);
            let sub_codecs = if sending {
                codecs_of(qpeer, &r.mid)
            } else {
                Vec::new()
            };
            updates.push((r.publisher, r.track, r.mid.clone(), sub_codecs));
        }
        let send_ext = q.send_ext;
        let negotiated = q.outstanding.is_none();
        let mut want_keyframe = Vec::new();
        for (publisher, track, mid, sub_codecs) in updates {
            let Some(p) = self.participants.get_mut(&publisher) else {
                continue;
            };
            let recv_ext = p.recv_ext;
            let Some(ppeer) = p.peer.as_ref() else {
                continue;
            };
            let Some(ti) = p.tracks.iter().position(|t| t.id == track) else {
                continue;
            };
            let pub_codecs = codecs_of(ppeer, &p.tracks[ti].mid);
            let t = &mut p.tracks[ti];
            let Some(s) = t
                .subscribers
                .iter_mut()
                .find(|s| s.subscriber == subscriber && s.mid == mid)
            else {
                continue;
            };
            s.forwarder.pt_map = PtMap::build(&pub_codecs, &sub_codecs);
            s.forwarder.ext_map = ExtIdMap::build(&recv_ext, &send_ext);
            let was_ready = s.ready;
            s.ready = !s.forwarder.pt_map.is_empty() && (negotiated || was_ready);
            if s.ready && !was_ready && s.forwarder.waiting_keyframe {
                want_keyframe.push((publisher, ti));
            }
        }
        for (publisher, ti) in want_keyframe {
            self.request_keyframe(now, publisher, ti);
        }
        self.refresh_slots(subscriber);
    }

    /// Sends the subscriber's pending changes as a server offer when possible.
    fn maybe_offer(&mut self, now: Instant, participant: ParticipantId) {
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        if p.outstanding.is_some()
            || !p.answered
            || p.access.detached_until.is_some()
            || self.sessions.is_headless(participant)
        {
            return; // (WHIP/WHEP have no renegotiation; a detached participant gets it on resume)
        }
        let Some(peer) = p.peer.as_mut() else {
            return;
        };
        if !peer.needs_offer() || peer.signaling_state() != SignalingState::Stable {
            return;
        }
        match peer.create_offer(now) {
            Ok(sdp) => {
                p.negotiation += 1;
                p.outstanding = Some(p.negotiation);
                let tracks = p
                    .receiving
                    .iter()
                    .map(|r| OfferedTrack {
                        mid: r.mid.clone(),
                        participant: r.publisher,
                        track: r.track,
                        slot: None,
                    })
                    .chain(p.slots.iter().enumerate().map(|(i, s)| OfferedTrack {
                        mid: s.mid.clone(),
                        participant: ParticipantId(0),
                        track: TrackId(0),
                        slot: Some(i as u8),
                    }))
                    .collect();
                let negotiation = p.negotiation;
                self.counters.offers += 1;
                let offer = Notice::Offer {
                    negotiation,
                    sdp,
                    tracks,
                };
                p.access.last_offer = Some(offer.clone());
                self.notify(participant, offer);
            }
            Err(e) => tracing::warn!(participant = %participant, error = %e, "create_offer failed"),
        }
    }

    /// Asks the publisher of track index `ti` for a keyframe, at most every 500 ms (a
    /// request inside the window is sent when the window ends).
    fn request_keyframe(&mut self, now: Instant, publisher: ParticipantId, ti: usize) {
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        let Some(t) = p.tracks.get_mut(ti) else {
            return;
        };
        if t.kind != MediaKind::Video {
            return;
        }
        let due = t
            .last_keyframe_request
            .is_none_or(|last| now >= last + KEYFRAME_REQUEST_INTERVAL);
        if due {
            if let Some(peer) = p.peer.as_mut() {
                peer.request_keyframe(now, &t.mid);
            }
            t.last_keyframe_request = Some(now);
            t.keyframe_request_pending = false;
            self.counters.plis += 1;
        } else {
            t.keyframe_request_pending = true;
            self.counters.plis_throttled += 1;
        }
    }

    fn remove_participant(&mut self, now: Instant, pid: ParticipantId, reason: LeaveReason) {
        let Some(mut p) = self.participants.remove(&pid) else {
            return;
        };
        let mut affected = Vec::new();
        // Unpublish its tracks (notices go to the others still in the room).
        for t in std::mem::take(&mut p.tracks) {
            for s in t.subscribers {
                if let Some(q) = self.participants.get_mut(&s.subscriber) {
                    if let Some(peer) = q.peer.as_mut() {
                        peer.remove_send_track(&s.mid);
                    }
                    q.receiving.retain(|r| r.mid != s.mid);
                    affected.push(s.subscriber);
                }
            }
            self.notify_others(
                &p.room,
                pid,
                &Notice::TrackUnpublished {
                    participant: pid,
                    track: t.id,
                },
            );
        }
        // Drop its subscriptions.
        for r in &p.receiving {
            if let Some(t) = self
                .participants
                .get_mut(&r.publisher)
                .and_then(|x| x.tracks.iter_mut().find(|t| t.id == r.track))
            {
                t.subscribers.retain(|s| s.subscriber != pid);
            }
        }
        self.notify_others(
            &p.room,
            pid,
            &Notice::ParticipantLeft {
                participant: pid,
                reason,
            },
        );
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.remove(pid);
            if r.is_empty() {
                self.rooms.remove(&p.room);
                self.speech.remove(&p.room);
            }
        }
        for t in &p.tuples {
            self.tuples.remove(t);
        }
        if let Some(mut peer) = p.peer.take() {
            self.stats.retire(&peer);
            self.router.remove(peer.local_ufrag());
            peer.close(now);
            if peer.has_transmit() {
                self.closing.push((peer, now + CLOSE_LINGER));
            }
        }
        tracing::debug!(participant = %pid, room = %p.room, reason = %reason, "left");
        affected.sort_unstable();
        affected.dedup();
        for q in affected {
            self.maybe_offer(now, q);
        }
        self.sessions.forget(pid);
    }

    /// Handles everything the participant's peer reported.
    fn drain_events(&mut self, now: Instant, pid: ParticipantId) {
        loop {
            let Some(event) = self
                .participants
                .get_mut(&pid)
                .and_then(|p| p.peer.as_mut())
                .and_then(|peer| peer.poll_event())
            else {
                return;
            };
            match event {
                PeerEvent::Connected => {
                    let Some(p) = self.participants.get_mut(&pid) else {
                        return;
                    };
                    p.connected = true;
                    // Subscriptions waiting for a keyframe can now receive one.
                    let wanted: Vec<(ParticipantId, TrackId)> =
                        p.receiving.iter().map(|r| (r.publisher, r.track)).collect();
                    for (publisher, track) in wanted {
                        self.keyframe_for(now, publisher, track, Some(pid));
                    }
                }
                PeerEvent::KeyframeRequested { mid } => {
                    let Some(r) = self
                        .participants
                        .get(&pid)
                        .and_then(|p| p.receiving.iter().find(|r| r.mid == mid))
                        .map(|r| (r.publisher, r.track))
                    else {
                        continue;
                    };
                    self.keyframe_for(now, r.0, r.1, None);
                }
                PeerEvent::DataChannelOpen { channel, label } => {
                    self.room_data_opened(pid, channel, &label);
                }
                PeerEvent::DataChannelMessage {
                    channel,
                    data,
                    binary,
                } => self.room_data_message(now, pid, channel, &data, binary),
                PeerEvent::DataChannelClosed { channel } => self.room_data_closed(pid, channel),
                PeerEvent::Disconnected { reason } => {
                    let reason = match reason {
                        DisconnectReason::Closed => continue,
                        DisconnectReason::DtlsClosed => LeaveReason::Disconnected,
                        DisconnectReason::ConsentExpired | DisconnectReason::DtlsFailed => {
                            LeaveReason::Timeout
                        }
                    };
                    if reason == LeaveReason::Timeout {
                        self.counters.timeouts += 1;
                    }
                    tracing::info!(participant = %pid, %reason, "media path lost");
                    self.notify(pid, Notice::Removed { reason });
                    self.remove_participant(now, pid, reason);
                    return;
                }
                _ => {}
            }
        }
    }

    /// Keyframe request for a track: from a subscriber's PLI (`only_waiting` = None), or for
    /// `only_waiting`'s subscription if it still waits for a keyframe.
    fn keyframe_for(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        track: TrackId,
        only_waiting: Option<ParticipantId>,
    ) {
        let Some(p) = self.participants.get(&publisher) else {
            return;
        };
        let Some(ti) = p.tracks.iter().position(|t| t.id == track) else {
            return;
        };
        if let Some(q) = only_waiting {
            let waiting = p.tracks[ti]
                .subscribers
                .iter()
                .any(|s| s.subscriber == q && s.ready && s.forwarder.waiting_keyframe);
            if !waiting {
                return;
            }
        }
        self.request_keyframe(now, publisher, ti);
    }

    /// Forwards one publisher packet to every subscriber of its track.
    fn forward(&mut self, now: Instant, publisher: ParticipantId, mid: &str, packet: &[u8]) {
        self.counters.rtp_in += 1;
        self.counters.rtp_bytes_in += packet.len() as u64;
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        let Some(ti) = p.tracks.iter().position(|t| t.mid == mid) else {
            return;
        };
        speaking_engine::observe_level(now, &p.recv_ext, &mut p.tracks[ti], packet);
        // Moved out (no allocation) so that the subscribers' peers can be borrowed.
        let mut subs = std::mem::take(&mut p.tracks[ti].subscribers);
        let mut need_keyframe = false;
        for s in subs.iter_mut() {
            let q = match self.participants.get_mut(&s.subscriber) {
                Some(q) if s.ready && q.connected => q,
                _ => {
                    self.counters.rtp_not_forwarded += 1;
                    continue;
                }
            };
            let Some(peer) = q.peer.as_mut() else {
                continue;
            };
            match s.forwarder.forward(now, packet, &mut self.scratch) {
                Outcome::Send(len) => {
                    let out = self.scratch.get(..len).unwrap_or(&[]);
                    match peer.send_rtp(now, &s.mid, out) {
                        Ok(()) => {
                            self.counters.rtp_forwarded += 1;
                            self.counters.rtp_bytes_forwarded += len as u64;
                        }
                        Err(_) => self.counters.rtp_not_forwarded += 1,
                    }
                }
                Outcome::WaitingKeyframe => {
                    need_keyframe = true;
                    self.counters.rtp_not_forwarded += 1;
                }
                Outcome::NoCodec | Outcome::BeforeSwitch | Outcome::Malformed => {
                    self.counters.rtp_not_forwarded += 1;
                }
            }
        }
        if let Some(t) = self
            .participants
            .get_mut(&publisher)
            .and_then(|p| p.tracks.get_mut(ti))
        {
            t.subscribers = subs;
        }
        if need_keyframe {
            self.request_keyframe(now, publisher, ti);
        }
        self.forward_to_slots(now, publisher, ti, packet);
    }

    // ------------------------------------------------------------------ media

    /// One datagram from a media socket: routed to its participant's peer by the STUN
    /// USERNAME (ICE ufrag), else by the 5-tuple learned from its accepted checks. Media from
    /// a publisher is forwarded to the subscribers at once. Unroutable datagrams are counted
    /// ([`EngineCounters::dropped`]) and ignored.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Datagram<'_>) {
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += datagram.contents.len() as u64;
        let tuple = (datagram.local, datagram.remote, datagram.transport);
        let (pid, by_ufrag) = match self.router.route(datagram.contents) {
            Some(&pid) => (pid, true),
            None => match self.tuples.get(&tuple) {
                Some(&pid) => (pid, false),
                None => {
                    self.counters.dropped += 1;
                    return;
                }
            },
        };
        let Some(peer) = self
            .participants
            .get_mut(&pid)
            .and_then(|p| p.peer.as_mut())
        else {
            self.counters.dropped += 1;
            return;
        };
        match peer.handle_datagram(now, datagram) {
            Received::Rtp { mid, packet } => self.forward(now, pid, mid.as_str(), packet),
            Received::Handled => {
                if by_ufrag && !self.tuples.contains_key(&tuple) {
                    self.tuples.insert(tuple, pid);
                    if let Some(p) = self.participants.get_mut(&pid) {
                        p.tuples.push(tuple);
                    }
                }
            }
            Received::Dropped(crate::peer::DropReason::SrtpFailed) => {
                self.counters.srtp_failures += 1
            }
            Received::Dropped(_) => self.counters.garbage += 1,
        }
        self.drain_events(now, pid);
    }

    /// The next datagram to send, written into `buf` (at least 1500 bytes), taken from the
    /// peers in turn.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<TransmitMeta> {
        let meta = self.next_transmit(buf)?;
        self.counters.datagrams_out += 1;
        self.counters.bytes_out += meta.len as u64;
        Some(meta)
    }

    fn next_transmit(&mut self, buf: &mut [u8]) -> Option<TransmitMeta> {
        let cursor = self.tx_cursor;
        let after = self
            .participants
            .range_mut((Bound::Excluded(cursor), Bound::Unbounded));
        for (id, p) in after {
            if let Some(m) = p.peer.as_mut().and_then(|peer| peer.poll_transmit(buf)) {
                self.tx_cursor = *id;
                return Some(m);
            }
        }
        for (id, p) in self.participants.range_mut(..=cursor) {
            if let Some(m) = p.peer.as_mut().and_then(|peer| peer.poll_transmit(buf)) {
                self.tx_cursor = *id;
                return Some(m);
            }
        }
        for (peer, _) in self.closing.iter_mut() {
            if let Some(m) = peer.poll_transmit(buf) {
                return Some(m);
            }
        }
        None
    }

    /// Advances every timer due at `now`: the peers' (ICE consent, DTLS, SCTP, RTCP, NACK,
    /// TWCC), held-back keyframe requests, and the linger of closed peers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_detached(now);
        let mut next = self.participants.keys().next().copied();
        while let Some(pid) = next {
            if let Some(peer) = self
                .participants
                .get_mut(&pid)
                .and_then(|p| p.peer.as_mut())
                && peer.poll_timeout().is_some_and(|(t, _)| t <= now)
            {
                peer.handle_timeout(now);
                self.drain_events(now, pid);
            }
            // Held-back keyframe requests.
            let due: Option<usize> = self.participants.get(&pid).and_then(|p| {
                p.tracks.iter().position(|t| {
                    t.keyframe_request_pending
                        && t.last_keyframe_request
                            .is_none_or(|l| now >= l + KEYFRAME_REQUEST_INTERVAL)
                })
            });
            if let Some(ti) = due {
                self.request_keyframe(now, pid, ti);
                continue; // look at this participant again for more due tracks
            }
            next = self
                .participants
                .range((Bound::Excluded(pid), Bound::Unbounded))
                .next()
                .map(|(k, _)| *k);
        }
        self.closing
            .retain(|(peer, until)| peer.has_transmit() && *until > now);
        let participants = self
            .participants
            .iter()
            .map(|(id, p)| (*id, p.peer.as_ref()));
        self.stats.handle_timeout(now, participants);
        if self.speech_tick.is_some_and(|t| t <= now) {
            self.speech_tick(now);
        }
    }

    /// When to call [`Engine::handle_timeout`] next, and why: the earliest of all peers'
    /// deadlines, held-back keyframe requests and closed peers' linger.
    pub fn poll_timeout(&self) -> Option<(Instant, TimeoutReason)> {
        let mut best: Option<(Instant, TimeoutReason)> = None;
        let mut consider = |c: Option<(Instant, TimeoutReason)>| {
            if let Some((t, r)) = c
                && best.is_none_or(|(b, _)| t < b)
            {
                best = Some((t, r));
            }
        };
        for p in self.participants.values() {
            consider(p.peer.as_ref().and_then(|peer| peer.poll_timeout()));
            for t in &p.tracks {
                if t.keyframe_request_pending
                    && let Some(last) = t.last_keyframe_request
                {
                    consider(Some((
                        last + KEYFRAME_REQUEST_INTERVAL,
                        TimeoutReason::KeyframeThrottle,
                    )));
                }
            }
        }
        consider(
            self.next_detach_deadline()
                .map(|t| (t, TimeoutReason::RoomHousekeeping)),
        );
        for (peer, until) in &self.closing {
            consider(Some((*until, TimeoutReason::RoomHousekeeping)));
            consider(peer.poll_timeout());
        }
        let sample = self.stats.poll_timeout(!self.participants.is_empty());
        consider(sample.map(|t| (t, TimeoutReason::RoomHousekeeping)));
        consider(
            self.speech_tick
                .map(|t| (t, TimeoutReason::RoomHousekeeping)),
        );
        best
    }

    /// Shutdown: every participant gets [`Notice::Removed`] (with
    /// [`LeaveReason::Disconnected`]; the shell says `bye` with reason `shutdown`), every
    /// peer closes (DTLS close_notify queued for [`Engine::poll_transmit`]), rooms are
    /// removed and further joins are refused.
    pub fn close(&mut self, now: Instant) {
        self.closed = true;
        let participants = std::mem::take(&mut self.participants);
        for (pid, p) in participants {
            self.notices.push_back((
                pid,
                Notice::Removed {
                    reason: LeaveReason::Disconnected,
                },
            ));
            if let Some(mut peer) = p.peer {
                self.stats.retire(&peer);
                peer.close(now);
                if peer.has_transmit() {
                    self.closing.push((peer, now + CLOSE_LINGER));
                }
            }
        }
        self.rooms.clear();
        self.speech.clear();
        self.speech_tick = None;
        self.sessions.clear();
        self.tuples.clear();
        self.router = UfragRouter::new();
    }

    /// The rooms, by name.
    pub fn rooms(&self) -> impl Iterator<Item = RoomSummary> + '_ {
        self.rooms.iter().map(|(name, r)| RoomSummary {
            name: name.clone(),
            participants: r.len(),
            tracks: r
                .members
                .keys()
                .filter_map(|p| self.participants.get(p))
                .map(|p| p.tracks.len())
                .sum(),
            viewers: self.viewers_of(name),
        })
    }

    /// Counters since the engine started (peer-level ones include removed participants).
    pub fn counters(&self) -> EngineCounters {
        let mut c = self.counters;
        let live = self.participants.values().filter_map(|p| p.peer.as_ref());
        self.stats.fill_counters(&mut c, live);
        c
    }

    /// One room in detail (participants, their tracks, transport, per-peer RTT, loss, jitter
    /// and bit rates, room totals), or `None` if there is no such room. Bit rates and the
    /// inbound fraction lost cover the last [`crate::STATS_INTERVAL`] window.
    pub fn room_details(&self, room: &str) -> Option<RoomDetails> {
        let r = self.rooms.get(room)?;
        let participants = r
            .members
            .keys()
            .filter_map(|id| {
                let p = self.participants.get(id)?;
                let tracks = p.tracks.iter().map(Track::info).collect();
                Some(
                    self.stats
                        .participant(*id, &p.name, p.connected, tracks, p.peer.as_ref()),
                )
            })
            .collect();
        Some(self.stats.room(room, participants))
    }

    /// The participant's info (name and tracks), if it is in a room.
    pub fn participant(&self, participant: ParticipantId) -> Option<ParticipantInfo> {
        self.participants
            .get(&participant)
            .map(|p| p.info(participant))
    }

    /// The tracks `participant` publishes, each with the mid of the m-line (in the
    /// participant's own peer connection) that carries it, in m-line order of publication.
    /// A client needs this to name its own tracks in `set_muted`; the shell sends it with the
    /// reply to the client's offer.
    pub fn published_tracks(&self, participant: ParticipantId) -> Vec<PublishedTrack> {
        self.participants
            .get(&participant)
            .map(|p| {
                p.tracks
                    .iter()
                    .map(|t| PublishedTrack {
                        mid: t.mid.clone(),
                        track: t.info(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

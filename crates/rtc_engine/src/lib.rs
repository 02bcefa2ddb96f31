//! tympan-rtc-engine: a sans-IO WebRTC room server — peers (ICE-lite, DTLS-SRTP, SCTP, SDP
//! negotiation), rooms, tracks and media forwarding.
//!
//! The [`Engine`] is driven like every tympan crate: the caller feeds it signalling requests
//! (the JSON messages of `docs/signalling.md` map one-to-one onto its methods), datagrams
//! with the time they arrived, and timeouts; it hands back notices for participants
//! ([`Engine::poll_notice`]), datagrams to send ([`Engine::poll_transmit`]) and its next
//! deadline with the reason ([`Engine::poll_timeout`]). It never reads the clock, opens a
//! socket or spawns anything.
//!
//! - Rooms are created on the first join and removed when the last participant leaves.
//! - Each sending m-line of a participant's offer becomes a published track; every other
//!   participant is renegotiated with a server offer ([`Notice::Offer`], one outstanding at a
//!   time; an offer crossing it gets [`ErrorCode::Glare`]).
//! - Media is forwarded with a per-subscriber SSRC/sequence/timestamp space, payload types
//!   and header-extension ids mapped to the subscriber's, without allocating per packet;
//!   new video subscriptions start at a keyframe; keyframe requests reach the publisher at
//!   most every 500 ms per track.
//! - A participant whose ICE consent expires is removed and the others are told.
//! - Room data: messages on a participant's `tympan-data` / `tympan-data-lossy` data channels
//!   are relayed to the others of the room on their channel of the same kind, with the
//!   server's `from` ([`parse_envelope`], [`delivery_json`]; errors go back to the sender).
//! - Chat: [`Engine::chat`] takes the shell's wall-clock time; each room keeps its last
//!   [`EngineConfig::chat_history`] messages for late joiners ([`Joined::chat_history`]).
//! - Speaking detection ([`speaking`]): the RFC 6464 audio level of every published audio
//!   track gives a smoothed level and voice activity; the room hears about it through
//!   [`Notice::Speaking`] and [`Notice::ActiveSpeakers`].
//! - Last-N audio ([`last_n`]): rooms above [`EngineConfig::last_n_threshold`] participants
//!   send each subscriber [`EngineConfig::last_n`] audio slots carrying the loudest current
//!   speakers instead of every publisher's audio ([`Notice::AudioSlots`]).
//! - WHIP publishers and WHEP viewers (no WebSocket, one offer/answer over HTTP):
//!   [`Engine::whip_publish`], [`Engine::whep_subscribe`], [`Engine::end_session`]; the SDP
//!   side (offer summary, m-line filling, trickle fragments) is in [`whip`].
//! - Access: [`Engine::join_with`] takes [`JoinOptions`] (identity, may publish, may
//!   subscribe; the shell checks tokens). Reconnect: when the signalling connection drops the
//!   shell calls [`Engine::detach`]; the participant keeps its id, tracks and media for
//!   [`EngineConfig::resume_grace`] (default 20 s) unseen by the others, and
//!   [`Engine::resume`] with its resume token takes it back. A client offer with new ICE
//!   credentials restarts ICE (the client moved to another network); DTLS and SRTP stay.
//! - Observability: [`Engine::counters`] (datagrams, bytes, RTP/RTCP, NACK, RTX, PLI/FIR,
//!   data channel messages since the start) and [`Engine::room_details`] (participants,
//!   tracks, transport, per-peer RTT, loss, jitter and bit rates over the last
//!   [`STATS_INTERVAL`], sampled on the engine's own timer), plain integer counting on the
//!   forward path.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tympan_rtc_engine::{Datagram, Engine, EngineConfig, Notice, Transport};
//!
//! let start = Instant::now(); // the shell owns the clock; the engine only gets Instants
//! let mut config = EngineConfig::new(tympan_dtls::DtlsCertificate::generate().unwrap());
//! config.udp_addrs.push("127.0.0.1:3478".parse().unwrap()); // advertised candidate
//! let mut engine = Engine::new(config, start).unwrap();
//!
//! // Signalling (from the WebSocket): two participants join the same room.
//! let ana = engine.join(start, "demo", "Ana").unwrap();
//! let ben = engine.join(start, "demo", "Ben").unwrap();
//! assert_eq!(ben.participants[0].name, "Ana");
//! let room = engine.room_details("demo").unwrap(); // what `/api/rooms/demo` shows
//! assert_eq!(room.totals.participants, 2);
//! assert!(!room.participants[0].connected); // no offer yet: no media path
//! // Each then sends its SDP offer: `engine.handle_offer(now, id, &sdp, &tracks)` returns the
//! // answer; later server offers arrive as `Notice::Offer` and are answered with
//! // `engine.handle_answer(now, id, negotiation, &sdp)`.
//!
//! // Notices go to the participants' WebSockets.
//! let (to, notice) = engine.poll_notice().unwrap();
//! assert_eq!(to, ana.participant);
//! assert!(matches!(notice, Notice::ParticipantJoined(p) if p.id == ben.participant));
//!
//! // Ana's WebSocket drops: she stays (for `resume_grace`) and comes back on a new one.
//! engine.detach(start, ana.participant);
//! let back = engine.resume(start, &ana.resume_token).unwrap();
//! assert_eq!(back.participant, ana.participant);
//! assert_eq!(back.participants[0].name, "Ben");
//!
//! // The media loop: datagrams in, datagrams out, timers.
//! let mut now = start;
//! let mut buf = vec![0u8; 2048];
//! let mut incoming = b"not a WebRTC packet".to_vec(); // e.g. from recv_from
//! engine.handle_datagram(now, Datagram {
//!     local: "127.0.0.1:3478".parse().unwrap(),
//!     remote: "127.0.0.1:50000".parse().unwrap(),
//!     transport: Transport::Udp,
//!     contents: &mut incoming,
//! });
//! for _ in 0..3 {
//!     while let Some(t) = engine.poll_transmit(&mut buf) {
//!         let _datagram = &buf[..t.len]; // send_to(t.remote) from socket t.local
//!     }
//!     match engine.poll_timeout() {
//!         Some((at, _reason)) if at <= now => engine.handle_timeout(now),
//!         _ => now += Duration::from_millis(10), // wait for a datagram or the deadline
//!     }
//! }
//! assert_eq!(engine.counters().dropped, 1); // nobody owned that datagram
//! assert_eq!(engine.counters().bytes_in, 19);
//!
//! engine.leave(now, ben.participant, tympan_rtc_engine::LeaveReason::Left);
//! engine.close(now); // shutdown: Notice::Removed for everyone, DTLS close_notify queued
//! ```

pub mod peer;
pub mod whip;

mod engine;
mod forward;
pub mod last_n;
mod notice;
mod room;
mod seed_rng;
pub mod speaking;
mod stats;

#[doc(hidden)]
pub use forward::fuzz_forward;

#[doc(hidden)]
pub use engine::room_data::fuzz_room_data;
pub use engine::room_data::{
    DEFAULT_MAX_DATA_MESSAGE, DataError, DataErrorCode, DataKind, Envelope, LOSSY_LABEL,
    MAX_TOPIC_CHARS, RELIABLE_LABEL, Recipients, delivery_json, parse_envelope,
};
pub use engine::{
    Engine, EngineConfig, EngineCounters, EngineError, JoinOptions, KEYFRAME_REQUEST_INTERVAL,
    RoomSummary,
};
pub use notice::{ErrorCode, LeaveReason, Notice, SignalError};
pub use peer::{Datagram, TimeoutReason, TransmitMeta, Transport};
pub use room::{
    ChatEntry, IdParseError, Joined, MAX_CHAT_CHARS, MAX_NAME_CHARS, OfferedTrack, ParticipantId,
    ParticipantInfo, PublishedTrack, TrackAnnouncement, TrackId, TrackInfo, TrackSource,
};
pub use stats::{
    DirectionStats, ParticipantDetails, PeerDetails, RoomDetails, RoomTotals, STATS_INTERVAL,
};

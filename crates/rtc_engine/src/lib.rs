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

mod engine;
mod forward;
mod notice;
mod room;
mod seed_rng;
mod stats;

#[doc(hidden)]
pub use forward::fuzz_forward;

pub use engine::{
    Engine, EngineConfig, EngineCounters, EngineError, KEYFRAME_REQUEST_INTERVAL, RoomSummary,
};
pub use notice::{ErrorCode, LeaveReason, Notice, SignalError};
pub use peer::{Datagram, TimeoutReason, TransmitMeta, Transport};
pub use room::{
    IdParseError, Joined, MAX_CHAT_CHARS, MAX_NAME_CHARS, OfferedTrack, ParticipantId,
    ParticipantInfo, PublishedTrack, TrackAnnouncement, TrackId, TrackInfo, TrackSource,
};
pub use stats::{
    DirectionStats, ParticipantDetails, PeerDetails, RoomDetails, RoomTotals, STATS_INTERVAL,
};

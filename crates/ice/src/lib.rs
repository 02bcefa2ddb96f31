//! tympan-ice: STUN codec, ICE agent (full and lite) and TURN client, all sans-IO.
//!
//! * [`stun`]: zero-copy STUN (RFC 8489) parsing, a builder that writes into your buffer,
//!   MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT without allocating, the RFC 7983
//!   demultiplexer ([`stun::classify`]) and RFC 6544 TCP framing ([`stun::framing`]).
//! * [`agent`]: an ICE agent (RFC 8445, trickle, consent freshness per RFC 7675), full
//!   (controlling/controlled) or lite, driven by five calls: `handle_packet`,
//!   `handle_timeout`, `poll_transmit`, `poll_event`, `poll_timeout`.
//! * [`turn`]: a TURN (RFC 8656) client: allocation with long-term credentials, refresh,
//!   permissions, channels, Send/Data indications and ChannelData.
//!
//! Nothing here opens sockets or reads the clock: you pass bytes and an [`std::time::Instant`]
//! in, and get datagrams, events and the next deadline out.
//!
//! # STUN
//!
//! ```
//! use tympan_ice::stun::{Class, MessageBuilder, Method, StunMessage, TransactionId};
//!
//! let mut buf = [0u8; 128];
//! let mut b = MessageBuilder::new(&mut buf, Method::BINDING, Class::Request, TransactionId([1; 12]));
//! b.username("remote:local").priority(1_853_824_767).ice_controlling(42)
//!     .message_integrity(b"the-remote-password").fingerprint();
//! let bytes = b.finish().unwrap();
//!
//! let msg = StunMessage::parse(bytes).unwrap();
//! assert_eq!(msg.username(), Some("remote:local"));
//! assert!(msg.verify_integrity(b"the-remote-password").is_ok());
//! assert!(msg.verify_fingerprint().is_ok());
//! ```
//!
//! # ICE
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tympan_ice::agent::{Candidate, Credentials, IceAgent, IceConfig, IceEvent};
//!
//! let mut agent = IceAgent::new(IceConfig { controlling: true, seed: 7, ..Default::default() });
//! agent.add_local_candidate(Candidate::host("192.0.2.1:5000".parse().unwrap()));
//! // From the peer's SDP:
//! agent.set_remote_credentials(Credentials::new("peer", "peer-password-0123456789"));
//! agent.add_remote_candidate(
//!     Candidate::from_sdp("candidate:1 1 udp 2130706431 198.51.100.7 6000 typ host").unwrap(),
//! );
//!
//! let now = Instant::now(); // in tests: a fixed base plus Durations
//! agent.handle_timeout(now);
//! let check = agent.poll_transmit().expect("a connectivity check");
//! assert_eq!(check.destination, "198.51.100.7:6000".parse().unwrap());
//! // Send `check.contents` from `check.source`; feed every received datagram to
//! // `agent.handle_packet(now, from, to, &bytes)`; call `handle_timeout` at `poll_timeout()`;
//! // react to `poll_event()` (state changes, the selected pair).
//! assert!(agent.poll_timeout().unwrap() <= now + Duration::from_secs(1));
//! # while let Some(e) = agent.poll_event() { let _: IceEvent = e; }
//! ```

pub mod agent;
pub mod stun;
pub mod turn;

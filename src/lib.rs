//! # tympan
//!
//! A WebRTC stack and selective forwarding unit (SFU) written in Rust from scratch.
//!
//! This umbrella crate re-exports the protocol crates so that an application can depend on one
//! crate. Each protocol crate is also usable on its own (`tympan-sdp`, `tympan-ice`, …): they are
//! sans-IO state machines that are given bytes and the time, and hand back bytes, events and
//! their next timeout.
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`sdp`] | `tympan-sdp` | SDP model, parse/serialize, JSEP offer/answer |
//! | [`ice`] | `tympan-ice` | STUN codec, ICE agent (full and lite), TURN client |
//! | [`rtp`] | `tympan-rtp` | RTP/RTCP, header extensions, TWCC, NACK/RTX, SRTP |
//! | [`dtls`] | `tympan-dtls` | DTLS 1.2 on OpenSSL, DTLS-SRTP keying |
//! | [`sctp`] | `tympan-sctp` | WebRTC data channels over SCTP (DCEP) |

pub use tympan_dtls as dtls;
pub use tympan_ice as ice;
pub use tympan_rtp as rtp;
pub use tympan_sctp as sctp;
pub use tympan_sdp as sdp;

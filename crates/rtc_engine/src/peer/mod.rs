//! One WebRTC endpoint: SDP offer/answer and renegotiation, ICE-lite, DTLS, SRTP, SCTP data
//! channels and RFC 7983 demultiplexing, composed from tympan's protocol crates. Sans-IO.
//!
//! A [`Peer`] is the server side of one client's peer connection: the client offers, the peer
//! answers ([`Peer::accept_offer`]); later the peer may offer its own changes (tracks it sends,
//! [`Peer::add_send_track`] then [`Peer::create_offer`] / [`Peer::accept_answer`]). It is
//! ICE-lite and controlled, the DTLS server when the offer says `actpass`; a client offer with
//! new ICE credentials restarts ICE (new local ufrag/pwd in the answer, see
//! [`Peer::accept_offer`]) while DTLS and SRTP carry on. Drive it with datagrams and time; it never reads a clock or touches a socket.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use tympan_rtc_engine::peer::{Peer, PeerConfig, PeerError, SignalingState};
//!
//! let now = Instant::now(); // the caller's clock (tests: a fixed base plus Durations)
//! let cert = tympan_dtls::DtlsCertificate::generate()?;
//! let dtls = Arc::new(tympan_dtls::DtlsContext::new(cert, Default::default())?);
//! let udp = "192.0.2.1:3478".parse()?;
//! let mut peer = Peer::new(
//!     PeerConfig {
//!         local_candidates: vec![tympan_ice::agent::Candidate::host(udp)],
//!         dtls,
//!         seed: 1,
//!         cname: "sfu".into(),
//!     },
//!     now,
//! );
//! assert_eq!(peer.signaling_state(), SignalingState::Stable);
//! // The client speaks first: no offer of ours before its offer was answered.
//! assert_eq!(peer.create_offer(now), Err(PeerError::NotReady));
//! // Then, per client offer: `let answer = peer.accept_offer(now, &sdp)?;` and the loop:
//! // `handle_datagram` for each received datagram, `handle_timeout` at `poll_timeout`,
//! // `poll_transmit` until None, `poll_event` until None.
//! let mut buf = [0u8; 1500];
//! assert!(peer.poll_transmit(&mut buf).is_none());
//! peer.handle_timeout(now + Duration::from_millis(10));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod media;
mod negotiation;
mod transport;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tympan_ice::agent::{Credentials, IceAgent, IceConfig, IceEvent, IceState};
use tympan_ice::stun::{PacketKind, classify};

use crate::seed_rng::SeedRng;

use media::{MediaEvent, MediaStreams, RecvStreamConfig, SendStreamConfig};

pub use media::LinkQuality;
use negotiation::{Negotiation, Section};

pub use tympan_ice::agent::Transport;
pub use tympan_sctp::ChannelId;

/// One datagram received on a media socket (for TCP: one RFC 4571 frame, already de-framed).
#[derive(Debug)]
pub struct Datagram<'a> {
    /// The server socket it arrived on.
    pub local: SocketAddr,
    /// Who sent it.
    pub remote: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// The bytes; SRTP is decrypted in place.
    pub contents: &'a mut [u8],
}

/// Where the caller must send `len` bytes it got written into its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransmitMeta {
    /// Local socket address to send from.
    pub local: SocketAddr,
    /// Destination.
    pub remote: SocketAddr,
    /// UDP or TCP (the caller frames TCP per RFC 4571).
    pub transport: Transport,
    /// Number of bytes written at the start of the caller's buffer.
    pub len: usize,
}

/// Why a deadline was asked for (helps debug busy loops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutReason {
    /// ICE (consent freshness, check timeouts).
    Ice,
    /// DTLS handshake retransmission.
    Dtls,
    /// SCTP retransmission / heartbeats.
    Sctp,
    /// RTCP reports.
    Rtcp,
    /// NACK generation.
    Nack,
    /// TWCC feedback.
    Twcc,
    /// Keyframe request throttling.
    KeyframeThrottle,
    /// Room housekeeping (engine).
    RoomHousekeeping,
    /// Anything else.
    Other,
}

/// Configuration of one [`Peer`].
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Host UDP candidates and TCP passive candidates advertised in our SDP.
    pub local_candidates: Vec<tympan_ice::agent::Candidate>,
    /// DTLS context (certificate) shared by the whole server.
    pub dtls: Arc<tympan_dtls::DtlsContext>,
    /// Seed of ICE credentials, SSRCs, ... (fix it for deterministic tests).
    pub seed: u64,
    /// RTCP CNAME.
    pub cname: String,
}

/// The JSEP signalling state (the server never rolls back, so there is no remote-offer state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingState {
    /// No offer outstanding.
    Stable,
    /// We sent an offer and wait for the answer.
    HaveLocalOffer,
}

/// Errors of negotiation and sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// The SDP does not parse.
    BadSdp(String),
    /// The SDP parses but cannot be negotiated.
    Negotiation(String),
    /// A remote offer arrived while our offer is outstanding.
    Glare,
    /// An answer arrived with no offer outstanding.
    StaleAnswer,
    /// Not in a state to do this (not connected, not stable, no remote description).
    NotReady,
    /// The peer is closed.
    Closed,
    /// Sending failed.
    Send(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::BadSdp(m) => write!(f, "bad SDP: {m}"),
            PeerError::Negotiation(m) => write!(f, "negotiation failed: {m}"),
            PeerError::Glare => f.write_str("glare: our offer is outstanding"),
            PeerError::StaleAnswer => f.write_str("answer without an outstanding offer"),
            PeerError::NotReady => f.write_str("peer not ready"),
            PeerError::Closed => f.write_str("peer closed"),
            PeerError::Send(m) => write!(f, "send failed: {m}"),
        }
    }
}

impl std::error::Error for PeerError {}

/// A negotiated codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecInfo {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name: "opus", "VP8", "H264", "VP9", "AV1".
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Audio channels.
    pub channels: Option<u16>,
    /// The `a=fmtp` parameters (empty when none).
    pub fmtp: String,
    /// The RTX payload type associated with this codec, if negotiated.
    pub rtx_payload_type: Option<u8>,
}

/// A media section as negotiated, as the engine sees it.
#[derive(Debug, Clone)]
pub struct MediaInfo<'a> {
    /// The section's mid.
    pub mid: &'a str,
    /// Audio or video (application sections are not listed).
    pub kind: tympan_sdp::MediaKind,
    /// The remote sends on it (a publisher track).
    pub receiving: bool,
    /// We send on it (a subscribed track).
    pub sending: bool,
    /// Negotiated codecs, preferred first.
    pub codecs: &'a [CodecInfo],
}

/// What [`Peer::handle_datagram`] made of a datagram.
#[derive(Debug)]
pub enum Received<'a> {
    /// Decrypted RTP from the remote for an audio/video section we receive; `packet` is the
    /// whole plaintext RTP packet (RTX already unwrapped).
    Rtp {
        /// The section's mid (an inline copy: no allocation, no borrow of the peer).
        mid: Mid,
        /// The plaintext RTP packet.
        packet: &'a mut [u8],
    },
    /// Consumed internally (STUN, DTLS, SCTP, RTCP).
    Handled,
    /// Dropped, with the reason.
    Dropped(DropReason),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not addressed to this peer (unknown 5-tuple / ufrag).
    NotForUs,
    /// Does not parse.
    Garbage,
    /// SRTP/SRTCP authentication or replay check failed.
    SrtpFailed,
    /// RTP for no known stream.
    UnknownStream,
    /// Media before DTLS-SRTP is set up.
    NotConnected,
    /// The peer is closed.
    Closed,
}

/// Why the peer disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// ICE consent expired.
    ConsentExpired,
    /// The remote closed DTLS (close_notify).
    DtlsClosed,
    /// The DTLS handshake or a fatal alert failed.
    DtlsFailed,
    /// Closed locally.
    Closed,
}

/// Events of a [`Peer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// ICE selected a path.
    IceConnected {
        /// The remote address.
        remote: SocketAddr,
        /// UDP or TCP.
        transport: Transport,
    },
    /// DTLS done, SRTP keys installed: media can flow.
    Connected,
    /// PLI/FIR from the remote on a section we send.
    KeyframeRequested {
        /// The section's mid.
        mid: String,
    },
    /// A data channel opened (by the remote).
    DataChannelOpen {
        /// The channel.
        channel: ChannelId,
        /// Its label.
        label: String,
    },
    /// A data channel message.
    DataChannelMessage {
        /// The channel.
        channel: ChannelId,
        /// The payload.
        data: Vec<u8>,
        /// Binary (true) or text (false).
        binary: bool,
    },
    /// A data channel closed.
    DataChannelClosed {
        /// The channel.
        channel: ChannelId,
    },
    /// The peer is gone.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Counters of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Round-trip time from RTCP, if known.
    pub rtt: Option<Duration>,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// RTP packets received (delivered to the engine).
    pub packets_in: u64,
    /// RTP bytes received (plaintext).
    pub bytes_in: u64,
    /// RTP packets sent.
    pub packets_out: u64,
    /// RTP bytes sent (plaintext).
    pub bytes_out: u64,
    /// SRTP/SRTCP failures.
    pub srtp_failures: u64,
    /// RTCP compounds received.
    pub rtcp_in: u64,
    /// RTCP compounds sent.
    pub rtcp_out: u64,
    /// Sequence numbers the remote NACKed (asked us to retransmit).
    pub nacks_in: u64,
    /// Sequence numbers we NACKed (asked the remote to retransmit).
    pub nacks_out: u64,
    /// Retransmissions we sent in answer to NACKs (RTX-wrapped when RTX is negotiated).
    pub retransmits_out: u64,
    /// RTX retransmissions received from the remote (unwrapped).
    pub rtx_in: u64,
    /// PLIs received on sections we send.
    pub plis_in: u64,
    /// FIRs received on sections we send.
    pub firs_in: u64,
    /// Data channel messages received.
    pub data_messages_in: u64,
    /// Data channel messages sent.
    pub data_messages_out: u64,
}

/// [`LinkQuality`] in both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerQuality {
    /// The remote's streams, as the server receives them.
    pub inbound: LinkQuality,
    /// The server's streams, as the remote reports receiving them (RTCP RR/SR blocks).
    pub outbound: LinkQuality,
}

/// A media section id (`a=mid`), stored inline (at most 32 bytes) so that handing it out per
/// packet neither allocates nor borrows the peer. Derefs to `&str`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mid {
    len: u8,
    bytes: [u8; negotiation::MAX_MID_LEN],
}

impl Mid {
    /// The mid `s`, if it is at most 32 bytes long.
    pub fn new(s: &str) -> Option<Mid> {
        let len = s.len();
        if len > negotiation::MAX_MID_LEN {
            return None;
        }
        let mut bytes = [0u8; negotiation::MAX_MID_LEN];
        bytes.get_mut(..len)?.copy_from_slice(s.as_bytes());
        Some(Mid {
            len: len as u8,
            bytes,
        })
    }

    /// The mid as text.
    pub fn as_str(&self) -> &str {
        let b = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        std::str::from_utf8(b).unwrap_or("")
    }
}

impl std::ops::Deref for Mid {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Mid {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Mid {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Mid {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Mid {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One WebRTC endpoint: ICE-lite (controlled), DTLS (server when it answers `actpass`),
/// SRTP/SRTCP, SCTP data channels and SDP negotiation, composed from tympan's crates.
///
/// Sans-IO: feed it datagrams ([`Peer::handle_datagram`]) and time ([`Peer::handle_timeout`]
/// at [`Peer::poll_timeout`]); send what [`Peer::poll_transmit`] writes; act on
/// [`Peer::poll_event`].
#[derive(Debug)]
pub struct Peer {
    config: PeerConfig,
    ice: IceAgent,
    negotiation: Negotiation,
    transport: transport::Transport,
    media: MediaStreams,
    /// What `media` was configured with, per mid, to re-apply only on change.
    applied_recv: Vec<RecvStreamConfig>,
    applied_send: Vec<SendStreamConfig>,
    events: VecDeque<PeerEvent>,
    rng: SeedRng,
    closed: bool,
    disconnected: bool,
    stats: PeerStats,
}

impl Peer {
    /// A new peer; nothing happens until [`Peer::accept_offer`].
    pub fn new(config: PeerConfig, now: Instant) -> Self {
        let mut rng = SeedRng::new(config.seed ^ 0x7E3A_91C5_D2B4_0F68);
        let ice_cfg = IceConfig {
            lite: true,
            controlling: false,
            seed: config.seed,
            ..IceConfig::default()
        };
        let mut ice = IceAgent::new(ice_cfg);
        for c in &config.local_candidates {
            ice.add_local_candidate(c.clone());
        }
        let creds = ice.local_credentials().clone();
        let candidates = config
            .local_candidates
            .iter()
            .filter_map(|c| tympan_sdp::parse_candidate(&c.to_sdp()).ok())
            .collect();
        let caps = negotiation::server_capabilities(
            &creds.ufrag,
            &creds.pwd,
            config.dtls.fingerprint().sha256(),
            candidates,
            config.seed >> 1,
        );
        let negotiation = Negotiation::new(caps, config.cname.clone());
        let media = MediaStreams::new(rng.ssrc(), config.cname.clone(), now);
        Peer {
            ice,
            negotiation,
            transport: transport::Transport::new(),
            media,
            applied_recv: Vec::new(),
            applied_send: Vec::new(),
            events: VecDeque::new(),
            rng,
            closed: false,
            disconnected: false,
            stats: PeerStats::default(),
            config,
        }
    }

    /// Our ICE ufrag (for the engine's `UfragRouter`).
    pub fn local_ufrag(&self) -> &str {
        &self.ice.local_credentials().ufrag
    }

    /// The signalling state.
    pub fn signaling_state(&self) -> SignalingState {
        if self.negotiation.has_local_offer() {
            SignalingState::HaveLocalOffer
        } else {
            SignalingState::Stable
        }
    }

    // ------------------------------------------------------------------ negotiation

    /// Remote offer -> our answer (SDP text). Errors: [`PeerError::BadSdp`],
    /// [`PeerError::Negotiation`], [`PeerError::Glare`] (our offer is outstanding; we never
    /// roll back), [`PeerError::Closed`].
    ///
    /// An offer whose `ice-ufrag`/`ice-pwd` differ from the previous one is an ICE restart
    /// (the client called `restartIce()`, typically after its network changed): the answer
    /// carries new local credentials ([`Peer::local_ufrag`] changes: re-route on it), the
    /// lite agent starts over while the current path stays in use until the client nominates
    /// a new one; DTLS, SRTP and SCTP are untouched.
    pub fn accept_offer(&mut self, now: Instant, sdp: &str) -> Result<String, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let rng = &mut self.rng;
        let (answer, restarted) = self
            .negotiation
            .accept_offer(sdp, || (ice_string(rng, 8), ice_string(rng, 24)))?;
        if restarted {
            let (ufrag, pwd) = self.negotiation.local_ice();
            tracing::debug!(ufrag, "ICE restart");
            self.ice.restart(Credentials::new(ufrag, pwd));
        }
        self.after_negotiation(now);
        Ok(answer)
    }

    /// Whether m-lines the remote sends on are accepted (default true). When false (a
    /// participant without the right to publish), later answers say `inactive` for them, so
    /// nothing the remote sends becomes a track; data channels are unaffected. Set it before
    /// the first [`Peer::accept_offer`].
    pub fn set_accept_media(&mut self, accept: bool) {
        self.negotiation.accept_media = accept;
    }

    /// Adds a track we send (a subscription); takes effect in the next
    /// [`Peer::create_offer`]. Returns the mid it will use (`s0`, `s1`, ...). `ssrc` is the
    /// engine's outgoing SSRC; the peer picks the RTX SSRC. `stream_id`/`track_id` go into
    /// `a=msid` (and `a=ssrc:<ssrc> msid:`).
    pub fn add_send_track(
        &mut self,
        kind: tympan_sdp::MediaKind,
        ssrc: u32,
        stream_id: &str,
        track_id: &str,
    ) -> String {
        let mut rtx = self.rng.ssrc();
        while rtx == ssrc {
            rtx = self.rng.ssrc();
        }
        self.negotiation
            .add_send_track(kind, ssrc, rtx, stream_id, track_id)
    }

    /// Stops sending on `mid` (the section becomes `inactive` in the next offer). Packets
    /// for it are refused at once.
    pub fn remove_send_track(&mut self, mid: &str) {
        self.negotiation.remove_send_track(mid);
    }

    /// True when add/remove_send_track changed something that needs an offer.
    pub fn needs_offer(&self) -> bool {
        self.negotiation.needs_offer()
    }

    /// Our offer for the pending changes (state -> HaveLocalOffer): same ICE credentials,
    /// fingerprint and DTLS role, the m-lines in their order, new `sendonly` sections for
    /// added tracks, `inactive` for removed ones. Error [`PeerError::NotReady`] if not stable
    /// or no remote description yet.
    pub fn create_offer(&mut self, _now: Instant) -> Result<String, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        self.negotiation.create_offer()
    }

    /// The remote answer to our outstanding offer (state -> Stable).
    /// [`PeerError::StaleAnswer`] when no offer is outstanding.
    pub fn accept_answer(&mut self, now: Instant, sdp: &str) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        self.negotiation.accept_answer(sdp)?;
        self.after_negotiation(now);
        Ok(())
    }

    /// Like [`Peer::accept_offer`], but the answer sends one track on each of the given
    /// remote-offered m-lines (which must offer to receive): `(mid, ssrc, stream_id,
    /// track_id)`, as for [`Peer::add_send_track`]. This is how a WHEP viewer's recvonly
    /// offer is filled without a renegotiation. Other m-lines are answered as usual.
    pub fn accept_offer_sending(
        &mut self,
        now: Instant,
        sdp: &str,
        sends: &[(&str, u32, &str, &str)],
    ) -> Result<String, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let mut tracks = Vec::with_capacity(sends.len());
        for &(mid, ssrc, stream_id, track_id) in sends {
            let mut rtx = self.rng.ssrc();
            while rtx == ssrc {
                rtx = self.rng.ssrc();
            }
            tracks.push((
                mid.to_owned(),
                negotiation::SendTrack {
                    ssrc,
                    rtx_ssrc: rtx,
                    stream_id: stream_id.to_owned(),
                    track_id: track_id.to_owned(),
                    removed: false,
                },
            ));
        }
        let rng = &mut self.rng;
        let (answer, restarted) = self
            .negotiation
            .accept_offer_sending(sdp, tracks, || (ice_string(rng, 8), ice_string(rng, 24)))?;
        if restarted {
            let (ufrag, pwd) = self.negotiation.local_ice();
            self.ice.restart(Credentials::new(ufrag, pwd));
        }
        self.after_negotiation(now);
        Ok(answer)
    }

    /// A trickled remote candidate (`candidate:...`, as `RTCIceCandidate.candidate`);
    /// `None` or `""` = end of candidates. Host names (mDNS `.local`) are ignored: as an
    /// ICE-lite agent we learn the address from the remote's checks anyway.
    pub fn add_remote_candidate(&mut self, candidate: Option<&str>) -> Result<(), PeerError> {
        match candidate.map(str::trim) {
            None | Some("") => {
                self.ice.end_of_remote_candidates();
                Ok(())
            }
            Some(text) => {
                let parsed = tympan_sdp::parse_candidate(text)
                    .map_err(|e| PeerError::BadSdp(format!("candidate: {e}")))?;
                if parsed.address.parse::<std::net::IpAddr>().is_err() {
                    return Ok(());
                }
                match tympan_ice::agent::Candidate::from_sdp(text) {
                    Ok(c) => {
                        self.ice.add_remote_candidate(c);
                        Ok(())
                    }
                    Err(e) => Err(PeerError::BadSdp(format!("candidate: {e}"))),
                }
            }
        }
    }

    /// The negotiated audio/video sections (application sections are not listed).
    pub fn media(&self) -> impl Iterator<Item = MediaInfo<'_>> {
        self.negotiation
            .sections
            .iter()
            .filter(|s| s.is_av() && !s.rejected && !s.fresh)
            .map(|s| MediaInfo {
                mid: &s.mid,
                kind: s.kind.clone(),
                receiving: s.receiving,
                sending: s.sending && s.send.as_ref().is_some_and(|t| !t.removed),
                codecs: &s.codecs,
            })
    }

    /// Configures ICE, DTLS and the media streams from the negotiated state.
    fn after_negotiation(&mut self, now: Instant) {
        let Some(params) = self.negotiation.transport.clone() else {
            return;
        };
        self.ice
            .set_remote_credentials(Credentials::new(&params.remote_ufrag, &params.remote_pwd));
        for c in &params.remote_candidates {
            if let Ok(c) = tympan_ice::agent::Candidate::from_sdp(c) {
                self.ice.add_remote_candidate(c);
            }
        }
        self.transport.configure(&self.config.dtls, &params, now);
        self.configure_media();
        self.pump(now);
    }

    fn configure_media(&mut self) {
        let mut recv = Vec::new();
        let mut send = Vec::new();
        let mut extensions = tympan_rtp::extensions::ExtensionMap::new();
        let mut twcc = false;
        for s in self.negotiation.sections.iter().filter(|s| s.is_av()) {
            if s.rejected || s.fresh {
                continue;
            }
            for (id, uri) in &s.extensions {
                extensions.insert_uri(*id, uri);
                twcc |= uri == tympan_rtp::extensions::URI_TRANSPORT_CC;
            }
            if s.receiving {
                recv.push(recv_config(s));
            }
            if let Some(t) = s.send.as_ref().filter(|t| !t.removed && s.sending) {
                send.push(SendStreamConfig {
                    mid: s.mid.clone(),
                    ssrc: t.ssrc,
                    rtx_ssrc: s.has_rtx().then_some(t.rtx_ssrc),
                    clock_rate: s.clock_rate(),
                    rtx_payload_types: s.rtx_payload_types(),
                    history: if s.kind == tympan_sdp::MediaKind::Video {
                        512
                    } else {
                        128
                    },
                });
            }
        }
        self.media.set_extensions(extensions);
        self.media.set_twcc(twcc);
        // Re-apply only what changed.
        let mut removed: Vec<String> = Vec::new();
        for old in &self.applied_recv {
            if !recv.contains(old) {
                removed.push(old.mid.clone());
            }
        }
        for old in &self.applied_send {
            if !send.contains(old) {
                removed.push(old.mid.clone());
            }
        }
        for mid in &removed {
            self.media.remove_mid(mid);
        }
        for cfg in &recv {
            if !self.applied_recv.contains(cfg) || removed.contains(&cfg.mid) {
                self.media.add_recv_stream(cfg.clone());
            }
        }
        for cfg in &send {
            if !self.applied_send.contains(cfg) || removed.contains(&cfg.mid) {
                self.media.add_send_stream(cfg.clone());
            }
        }
        self.applied_recv = recv;
        self.applied_send = send;
    }

    // ------------------------------------------------------------------ transport

    /// Feeds one datagram. STUN, DTLS (and the SCTP inside) and SRTCP are consumed here
    /// (see [`Peer::poll_event`]); SRTP is decrypted in place and, when it is media of a
    /// section we receive, returned as [`Received::Rtp`]. Allocation-free for RTP/RTCP.
    pub fn handle_datagram<'a>(&mut self, now: Instant, datagram: Datagram<'a>) -> Received<'a> {
        self.stats.datagrams_in += 1;
        if self.closed {
            return Received::Dropped(DropReason::Closed);
        }
        let Datagram {
            local,
            remote,
            transport,
            contents,
        } = datagram;
        match classify(contents) {
            PacketKind::Stun => {
                let handled = self
                    .ice
                    .handle_packet_on(now, transport, remote, local, contents);
                self.pump(now);
                if handled {
                    Received::Handled
                } else {
                    Received::Dropped(DropReason::NotForUs)
                }
            }
            PacketKind::Dtls => {
                if !self.transport.knows_path(local, remote, transport) {
                    return Received::Dropped(DropReason::NotForUs);
                }
                if !self.transport.handle_dtls(now, contents) {
                    return Received::Dropped(DropReason::NotConnected);
                }
                self.pump(now);
                Received::Handled
            }
            PacketKind::Rtp => {
                let (n, mid) = {
                    let Some(rx) = self.transport.srtp_rx.as_mut() else {
                        return Received::Dropped(DropReason::NotConnected);
                    };
                    let len = match rx.unprotect_rtp(contents) {
                        Ok(len) => len,
                        Err(_) => {
                            self.stats.srtp_failures += 1;
                            return Received::Dropped(DropReason::SrtpFailed);
                        }
                    };
                    let Some(packet) = contents.get_mut(..len) else {
                        return Received::Dropped(DropReason::Garbage);
                    };
                    match self.media.on_rtp(now, packet) {
                        Ok((mid, n)) => match Mid::new(mid) {
                            Some(mid) => (n.min(len), mid),
                            None => return Received::Dropped(DropReason::UnknownStream),
                        },
                        Err(reason) => return Received::Dropped(reason),
                    }
                };
                self.stats.packets_in += 1;
                self.stats.bytes_in += n as u64;
                match contents.get_mut(..n) {
                    Some(packet) => Received::Rtp { mid, packet },
                    None => Received::Dropped(DropReason::Garbage),
                }
            }
            PacketKind::Rtcp => {
                let Some(rx) = self.transport.srtp_rx.as_mut() else {
                    return Received::Dropped(DropReason::NotConnected);
                };
                let len = match rx.unprotect_rtcp(contents) {
                    Ok(len) => len,
                    Err(_) => {
                        self.stats.srtp_failures += 1;
                        return Received::Dropped(DropReason::SrtpFailed);
                    }
                };
                if let Some(compound) = contents.get(..len) {
                    self.media.on_rtcp(now, compound);
                }
                self.pump_media(now);
                Received::Handled
            }
            _ => Received::Dropped(DropReason::Garbage),
        }
    }

    /// Drives the timers of ICE, DTLS, SCTP and the media streams.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.ice.handle_timeout(now);
        self.transport.handle_timeout(now);
        if self.transport.srtp_tx.is_some() {
            self.media.handle_timeout(now);
        }
        self.pump(now);
    }

    /// The earliest deadline of ICE, DTLS, SCTP and the media streams, with its reason.
    pub fn poll_timeout(&self) -> Option<(Instant, TimeoutReason)> {
        if self.closed {
            return None;
        }
        let mut best: Option<(Instant, TimeoutReason)> = None;
        let mut consider = |t: Option<Instant>, r: TimeoutReason| {
            if let Some(t) = t {
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, r));
                }
            }
        };
        consider(self.ice.poll_timeout(), TimeoutReason::Ice);
        consider(self.transport.dtls_timeout(), TimeoutReason::Dtls);
        consider(self.transport.sctp_timeout(), TimeoutReason::Sctp);
        if self.transport.srtp_tx.is_some() {
            if let Some((t, r)) = self.media.poll_timeout() {
                consider(Some(t), r);
            }
        }
        best
    }

    /// Copies the next queued datagram into `buf` (>= 1500 bytes) and says where it goes.
    /// A datagram larger than `buf` is dropped.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<TransmitMeta> {
        self.transport.tx.pop_into(buf)
    }

    /// Whether a datagram is queued.
    pub fn has_transmit(&self) -> bool {
        !self.transport.tx.is_empty()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        let event = self.events.pop_front();
        if let Some(PeerEvent::DataChannelMessage { .. }) = &event {
            self.stats.data_messages_in += 1;
        }
        event
    }

    /// Moves everything the parts want to send into the transmit queue and their events out.
    fn pump(&mut self, now: Instant) {
        while let Some(t) = self.ice.poll_transmit() {
            self.transport.on_ice_transmit(t);
        }
        while let Some(e) = self.ice.poll_event() {
            match e {
                IceEvent::SelectedPair {
                    local,
                    remote,
                    transport,
                } => {
                    self.transport.select_path(now, local, remote, transport);
                    self.events
                        .push_back(PeerEvent::IceConnected { remote, transport });
                }
                IceEvent::StateChanged(IceState::Failed) => {
                    self.disconnect(DisconnectReason::ConsentExpired);
                }
                _ => {}
            }
        }
        self.transport.pump(now, &mut self.events);
        if let Some(reason) = self.transport.take_failure() {
            self.disconnect(reason);
        }
        if self.transport.srtp_tx.is_some() {
            self.pump_media(now);
        }
    }

    /// Keyframe requests, retransmissions and RTCP of the media streams.
    fn pump_media(&mut self, now: Instant) {
        while let Some(e) = self.media.poll_event() {
            match e {
                MediaEvent::KeyframeRequested { mid } => {
                    self.events.push_back(PeerEvent::KeyframeRequested { mid });
                }
            }
        }
        let media = &mut self.media;
        self.transport
            .send_media(|buf| media.poll_retransmit(buf), false);
        let media = &mut self.media;
        self.transport
            .send_media(|buf| media.poll_rtcp(now, buf), true);
    }

    fn disconnect(&mut self, reason: DisconnectReason) {
        if !self.disconnected {
            self.disconnected = true;
            self.events.push_back(PeerEvent::Disconnected { reason });
        }
    }

    // ------------------------------------------------------------------ media out

    /// Sends one plaintext RTP packet (already rewritten by the engine: our SSRC for `mid`,
    /// the negotiated payload type, sequence, timestamp). Records it for NACK/RTX and SR,
    /// protects a copy with SRTP and queues it. No allocation once warm. Errors when not
    /// connected, or when `mid` is not a section we send on.
    pub fn send_rtp(&mut self, now: Instant, mid: &str, packet: &[u8]) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        if self.transport.srtp_tx.is_none() || !self.transport.has_path() {
            return Err(PeerError::NotReady);
        }
        let sending = self
            .negotiation
            .sections
            .iter()
            .any(|s| s.mid == mid && s.sending && s.send.as_ref().is_some_and(|t| !t.removed));
        if !sending {
            return Err(PeerError::Send(format!("not sending on mid {mid}")));
        }
        if let Err(reason) = self.media.on_send_rtp(now, mid, packet) {
            return Err(PeerError::Send(format!("mid {mid}: {reason:?}")));
        }
        self.transport.send_rtp(packet)?;
        self.stats.packets_out += 1;
        self.stats.bytes_out += packet.len() as u64;
        Ok(())
    }

    /// Asks the remote sender on `mid` (a publisher track) for a keyframe (PLI; FIR if only
    /// FIR is negotiated); the RTCP goes out with the next poll_transmit.
    pub fn request_keyframe(&mut self, now: Instant, mid: &str) {
        if self.closed {
            return;
        }
        self.media.request_keyframe(now, mid);
        if self.transport.srtp_tx.is_some() {
            self.pump_media(now);
        }
    }

    // ------------------------------------------------------------------ data channels

    /// Sends a data channel message (text when `binary` is false).
    pub fn send_data(
        &mut self,
        now: Instant,
        channel: ChannelId,
        data: &[u8],
        binary: bool,
    ) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        self.transport.send_data(channel, data, binary)?;
        self.stats.data_messages_out += 1;
        self.pump(now);
        Ok(())
    }

    /// Graceful close: SCTP shutdown and DTLS close_notify queued (poll_transmit them), ICE
    /// closed. No event follows a local close.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.transport.close(now);
        self.ice.close();
        self.negotiation.abandon_offer();
        self.closed = true;
        self.disconnected = true;
    }

    /// Whether the peer is closed (locally).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Counters.
    pub fn stats(&self) -> PeerStats {
        let m = self.media.counters();
        PeerStats {
            rtt: self.media.rtt(),
            rtcp_in: m.rtcp_in,
            rtcp_out: m.rtcp_out,
            nacks_in: m.nacked_in,
            nacks_out: m.nacked_out,
            retransmits_out: m.retransmits,
            rtx_in: m.rtx_in,
            plis_in: m.plis_in,
            firs_in: m.firs_in,
            ..self.stats
        }
    }

    /// Loss and jitter of the media in both directions (see [`PeerQuality`]).
    pub fn quality(&self) -> PeerQuality {
        let (inbound, outbound) = self.media.quality();
        PeerQuality { inbound, outbound }
    }

    /// UDP or TCP: the transport of the path media uses (the ICE-selected pair, else the
    /// latest path the remote proved), if any.
    pub fn selected_transport(&self) -> Option<Transport> {
        self.transport.path_transport()
    }
}

/// A random ICE string (RFC 8839 `ice-char`: ALPHA / DIGIT / "+" / "/") of `len` characters.
fn ice_string(rng: &mut SeedRng, len: usize) -> String {
    const ICE_CHARS: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|_| char::from(ICE_CHARS[(rng.next_u64() >> 58) as usize & 63]))
        .collect()
}

fn recv_config(s: &Section) -> RecvStreamConfig {
    RecvStreamConfig {
        mid: s.mid.clone(),
        ssrc: s.remote_ssrc,
        rtx_ssrc: s.remote_rtx_ssrc,
        clock_rate: s.clock_rate(),
        rtx_payload_types: s.rtx_payload_types(),
        nack: s.nack(),
        pli: s.pli(),
        fir: s.fir(),
    }
}

/// A str0m-shaped offer (audio, video, data channel) for [`fuzz_peer_input`].
const FUZZ_OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:fuzz\r\n\
a=ice-pwd:fuzzfuzzfuzzfuzzfuzzfuzz\r\n\
a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=ssrc:1111 cname:x\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:fuzz\r\n\
a=ice-pwd:fuzzfuzzfuzzfuzzfuzzfuzz\r\n\
a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=ssrc-group:FID 2222 3333\r\n\
a=ssrc:2222 cname:x\r\n\
a=ssrc:3333 cname:x\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:fuzz\r\n\
a=ice-pwd:fuzzfuzzfuzzfuzzfuzzfuzz\r\n\
a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r\n\
a=setup:actpass\r\n\
a=mid:2\r\n\
a=sctp-port:5000\r\n";

/// The entry point of the `peer_datagram` fuzz target: a peer that answered a fixed offer is
/// fed `data` as a sequence of datagrams (each prefixed by a 2-byte big-endian length), with
/// timers driven in simulated time from `base`. Returns how many datagrams came out as media
/// (none can: the fuzzer does not know the SRTP keys). Panics are bugs.
#[doc(hidden)]
pub fn fuzz_peer_input(base: Instant, data: &[u8]) -> usize {
    static CONTEXT: std::sync::OnceLock<Option<Arc<tympan_dtls::DtlsContext>>> =
        std::sync::OnceLock::new();
    let Some(ctx) = CONTEXT
        .get_or_init(|| {
            let cert = tympan_dtls::DtlsCertificate::generate().ok()?;
            tympan_dtls::DtlsContext::new(cert, tympan_dtls::DtlsConfig::default())
                .ok()
                .map(Arc::new)
        })
        .clone()
    else {
        return 0;
    };
    let local = SocketAddr::from(([10, 0, 0, 1], 5000));
    let remote = SocketAddr::from(([10, 0, 0, 2], 6000));
    let mut peer = Peer::new(
        PeerConfig {
            local_candidates: vec![tympan_ice::agent::Candidate::host(local)],
            dtls: ctx,
            seed: 1,
            cname: "fuzz".into(),
        },
        base,
    );
    if peer.accept_offer(base, FUZZ_OFFER).is_err() {
        return 0;
    }
    let mut media = 0;
    let mut now = base;
    let mut rest = data;
    let mut buf = vec![0u8; 1500];
    let mut datagram = Vec::with_capacity(1500);
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (chunk, after) = tail.split_at(len);
        rest = after;
        datagram.clear();
        datagram.extend_from_slice(chunk);
        let received = peer.handle_datagram(
            now,
            Datagram {
                local,
                remote,
                transport: Transport::Udp,
                contents: &mut datagram,
            },
        );
        if matches!(received, Received::Rtp { .. }) {
            media += 1;
        }
        now += Duration::from_millis(7);
        peer.handle_timeout(now);
        while peer.poll_transmit(&mut buf).is_some() {}
        while peer.poll_event().is_some() {}
    }
    media
}

#[cfg(test)]
mod tests {
    use super::Mid;

    #[test]
    fn mid_is_an_inline_str() {
        let m = Mid::new("sdparta_0").expect("short mid");
        assert_eq!(m.as_str(), "sdparta_0");
        assert_eq!(&*m, "sdparta_0");
        assert!(m == "sdparta_0");
        assert_eq!(m.to_string(), "sdparta_0");
        assert_eq!(format!("{m:?}"), "\"sdparta_0\"");
        assert_eq!(Mid::new("").map(|m| m.len()), Some(0));
        let longest = "x".repeat(32);
        assert_eq!(Mid::new(&longest).map(|m| m.len()), Some(32));
        assert!(Mid::new(&"x".repeat(33)).is_none());
        // Multi-byte UTF-8 survives.
        assert_eq!(Mid::new("ñ0").map(|m| m.to_string()), Some("ñ0".into()));
    }

    #[test]
    fn fuzz_offer_is_answered() {
        let now = std::time::Instant::now();
        let ctx = tympan_dtls::DtlsContext::new(
            tympan_dtls::DtlsCertificate::generate().expect("cert"),
            tympan_dtls::DtlsConfig::default(),
        )
        .expect("context");
        let mut peer = super::Peer::new(
            super::PeerConfig {
                local_candidates: vec![tympan_ice::agent::Candidate::host(
                    "10.0.0.1:5000".parse().expect("addr"),
                )],
                dtls: std::sync::Arc::new(ctx),
                seed: 1,
                cname: "t".into(),
            },
            now,
        );
        let answer = peer.accept_offer(now, super::FUZZ_OFFER).expect("answer");
        assert!(answer.contains("a=ice-lite"));
        assert_eq!(peer.media().count(), 2);
    }

    #[test]
    fn fuzz_entry_point_answers_and_survives() {
        let base = std::time::Instant::now();
        assert_eq!(super::fuzz_peer_input(base, &[]), 0);
        assert_eq!(
            super::fuzz_peer_input(base, &[0, 3, 128, 96, 0, 0, 1, 23]),
            0
        );
    }
}

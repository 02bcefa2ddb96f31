//! SDP negotiation of one peer: answers to the remote's offers (initial and re-offers), our own
//! renegotiation offers for send tracks, and the negotiated state of every m-line.
//!
//! The server never makes the initial offer: the first description is always a remote offer.
//! Later offers (ours or theirs) keep the m-lines, their order and mids, the ICE credentials and
//! the DTLS fingerprint and role (no new DTLS association). A remote offer with new ICE
//! credentials is an ICE restart (RFC 8839 §4.4.1.1.1): the answer carries new local
//! credentials from the caller, DTLS and SRTP are kept.

use std::borrow::Cow;

use tympan_sdp::jsep::{
    self, CodecCapability, DataChannelCapability, ExtensionCapability, Feedback, LocalCapabilities,
    NegotiatedSession, TrackSpec,
};
use tympan_sdp::{
    Attribute, Connection, Direction, Extmap, Fingerprint, Fmtp, FmtpParam, Group,
    MediaDescription, MediaKind, Msid, ProfileLevelId, RtcpFb, Rtpmap, SessionDescription, Setup,
    Ssrc, SsrcGroup,
};

use super::{CodecInfo, PeerError};

/// Longest mid we accept (mids are carried inline in [`super::Mid`]).
pub(crate) const MAX_MID_LEN: usize = 32;

/// A track we send on a section (a subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendTrack {
    pub ssrc: u32,
    pub rtx_ssrc: u32,
    pub stream_id: String,
    pub track_id: String,
    /// `remove_send_track` was called.
    pub removed: bool,
}

/// A codec of a section, with what is needed to write it back into an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SectionCodec {
    pub params: Vec<FmtpParam>,
    pub feedback: Vec<Feedback>,
}

/// One m-line as negotiated (or, for a section we added, as we will offer it).
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub mid: String,
    pub kind: MediaKind,
    pub protocol: String,
    /// Formats of a rejected section (kept to write it back).
    pub formats: Vec<Cow<'static, str>>,
    pub rejected: bool,
    /// Negotiated codecs (engine view) and their SDP details, same order.
    pub codecs: Vec<CodecInfo>,
    pub codec_details: Vec<SectionCodec>,
    /// Negotiated header extensions `(id, uri)`.
    pub extensions: Vec<(u8, String)>,
    /// The remote sends on it.
    pub receiving: bool,
    /// We send on it (negotiated).
    pub sending: bool,
    /// Our track on this section, if any.
    pub send: Option<SendTrack>,
    /// SSRCs the remote announced: (primary, rtx).
    pub remote_ssrc: Option<u32>,
    pub remote_rtx_ssrc: Option<u32>,
    /// Added or changed locally since the last completed negotiation.
    pub pending: bool,
    /// Never negotiated yet (added by `add_send_track`, not yet answered).
    pub fresh: bool,
}

impl Section {
    /// Whether the section carries RTP (audio/video).
    pub(crate) fn is_av(&self) -> bool {
        matches!(self.kind, MediaKind::Audio | MediaKind::Video)
    }

    fn has_feedback(&self, fb_type: &str, param: Option<&str>) -> bool {
        self.codec_details.iter().any(|c| {
            c.feedback
                .iter()
                .any(|f| f.fb_type == fb_type && f.param.as_deref() == param)
        })
    }

    pub(crate) fn nack(&self) -> bool {
        self.has_feedback("nack", None)
    }

    pub(crate) fn pli(&self) -> bool {
        self.has_feedback("nack", Some("pli"))
    }

    pub(crate) fn fir(&self) -> bool {
        self.has_feedback("ccm", Some("fir"))
    }

    /// `(rtx pt, apt)` pairs.
    pub(crate) fn rtx_payload_types(&self) -> Vec<(u8, u8)> {
        self.codecs
            .iter()
            .filter_map(|c| c.rtx_payload_type.map(|r| (r, c.payload_type)))
            .collect()
    }

    pub(crate) fn has_rtx(&self) -> bool {
        self.codecs.iter().any(|c| c.rtx_payload_type.is_some())
    }

    pub(crate) fn clock_rate(&self) -> u32 {
        self.codecs.first().map_or(
            if self.kind == MediaKind::Audio {
                48_000
            } else {
                90_000
            },
            |c| c.clock_rate,
        )
    }
}

/// What a completed negotiation tells the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransportParams {
    pub remote_ufrag: String,
    pub remote_pwd: String,
    pub remote_fingerprint: [u8; 32],
    /// Our DTLS role: `Passive` = server, `Active` = client.
    pub local_setup: Setup,
    pub remote_candidates: Vec<String>,
    /// SCTP: `(remote port, remote max message size)` when a data channel is negotiated.
    pub sctp: Option<(u16, u64)>,
}

/// The negotiation state machine of one peer.
#[derive(Debug)]
pub(crate) struct Negotiation {
    caps: LocalCapabilities,
    pub sections: Vec<Section>,
    /// Our offer waiting for its answer.
    pending_offer: Option<SessionDescription>,
    /// For each section in the pending offer: its mid and whether its track was removed then.
    offered: Vec<(String, bool)>,
    session_version: u64,
    next_mid: u64,
    /// Set after the first remote offer was answered.
    pub transport: Option<TransportParams>,
    cname: String,
    /// Tracks to send on remote-offered mids in the answer being made (WHEP, see
    /// [`Negotiation::accept_offer_sending`]); empty otherwise.
    preset_sends: Vec<(String, SendTrack)>,
    /// Whether m-lines the remote sends on are accepted (`recvonly` in our answer); when
    /// false they are answered `inactive` (a participant not allowed to publish).
    pub accept_media: bool,
}

/// The codecs and extensions the server supports (see the engine contract).
pub(crate) fn server_capabilities(
    ufrag: &str,
    pwd: &str,
    fingerprint: &[u8; 32],
    candidates: Vec<tympan_sdp::Candidate>,
    session_id: u64,
) -> LocalCapabilities {
    let fingerprint = Fingerprint {
        hash_function: Cow::Borrowed("sha-256"),
        bytes: fingerprint.to_vec(),
    };
    let mut caps =
        LocalCapabilities::webrtc_default(jsep::IceCredentials::new(ufrag, pwd), fingerprint);
    let fb = |list: &[(&str, Option<&str>)]| -> Vec<Feedback> {
        list.iter().map(|(t, p)| Feedback::new(t, *p)).collect()
    };
    let video_fb = fb(&[
        ("goog-remb", None),
        ("transport-cc", None),
        ("ccm", Some("fir")),
        ("nack", None),
        ("nack", Some("pli")),
    ]);
    let mut opus = CodecCapability::new(MediaKind::Audio, "opus", 48_000, 111);
    opus.channels = Some(2);
    opus.params = vec![FmtpParam::MinPtime(10), FmtpParam::UseInbandFec(true)];
    opus.feedback = fb(&[("transport-cc", None), ("nack", None)]);
    let video = |name: &str, pt: u8, rtx: u8, params: Vec<FmtpParam>| {
        let mut c = CodecCapability::new(MediaKind::Video, name, 90_000, pt);
        c.params = params;
        c.feedback = video_fb.clone();
        c.rtx_payload_type = Some(rtx);
        c
    };
    let h264 = |profile_iop: u8, pt: u8, rtx: u8| {
        video(
            "H264",
            pt,
            rtx,
            vec![
                FmtpParam::LevelAsymmetryAllowed(true),
                FmtpParam::PacketizationMode(1),
                FmtpParam::ProfileLevelId(ProfileLevelId {
                    profile_idc: 0x42,
                    profile_iop,
                    level_idc: 0x1f,
                }),
            ],
        )
    };
    caps.codecs = vec![
        opus,
        video("VP8", 96, 97, Vec::new()),
        h264(0xe0, 106, 107),
        h264(0x00, 108, 109),
        video("VP9", 98, 99, vec![FmtpParam::ProfileId(0)]),
        video("AV1", 45, 46, Vec::new()),
    ];
    let ext = |uri: &str, id, audio, video| ExtensionCapability {
        uri: uri.to_string(),
        id,
        audio,
        video,
    };
    caps.extensions = vec![
        ext(tympan_rtp::extensions::URI_AUDIO_LEVEL, 1, true, false),
        ext(tympan_rtp::extensions::URI_ABS_SEND_TIME, 2, true, true),
        ext(tympan_rtp::extensions::URI_TRANSPORT_CC, 3, true, true),
        ext(tympan_rtp::extensions::URI_MID, 4, true, true),
    ];
    caps.data_channel = Some(DataChannelCapability {
        sctp_port: 5000,
        max_message_size: 262_144,
    });
    caps.ice_lite = true;
    caps.trickle = false;
    caps.answer_setup = Setup::Passive;
    caps.candidates = candidates;
    caps.end_of_candidates = true;
    caps.receive_simulcast = false;
    caps.session_id = session_id;
    caps
}

fn bad(e: impl std::fmt::Display) -> PeerError {
    PeerError::Negotiation(e.to_string())
}

fn codec_info(c: &jsep::NegotiatedCodec) -> CodecInfo {
    let fmtp = c
        .params
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";");
    CodecInfo {
        payload_type: c.payload_type,
        name: c.name.to_string(),
        clock_rate: c.clock_rate,
        channels: c.channels,
        fmtp,
        rtx_payload_type: c.rtx_payload_type,
    }
}

/// Primary and RTX SSRC the remote announced in a section.
fn remote_ssrcs(m: &jsep::NegotiatedMedia) -> (Option<u32>, Option<u32>) {
    if let Some(g) = m
        .remote_ssrc_groups
        .iter()
        .find(|g| g.semantics.eq_ignore_ascii_case("FID"))
    {
        return (g.ssrcs.first().copied(), g.ssrcs.get(1).copied());
    }
    (m.remote_ssrcs.first().copied(), None)
}

impl Negotiation {
    pub(crate) fn new(caps: LocalCapabilities, cname: String) -> Self {
        Negotiation {
            caps,
            sections: Vec::new(),
            pending_offer: None,
            offered: Vec::new(),
            session_version: 1,
            next_mid: 0,
            transport: None,
            cname,
            preset_sends: Vec::new(),
            accept_media: true,
        }
    }

    pub(crate) fn has_local_offer(&self) -> bool {
        self.pending_offer.is_some()
    }

    pub(crate) fn needs_offer(&self) -> bool {
        self.sections.iter().any(|s| s.pending)
    }

    /// Adds a send section; returns its mid.
    pub(crate) fn add_send_track(
        &mut self,
        kind: MediaKind,
        ssrc: u32,
        rtx_ssrc: u32,
        stream_id: &str,
        track_id: &str,
    ) -> String {
        // Server-added sections get mids of their own namespace ("s0", "s1", ...): the remote
        // picks numeric mids for its new transceivers and must not collide with ours before
        // it has seen them.
        let mut mid = format!("s{}", self.next_mid);
        while self.sections.iter().any(|s| s.mid == mid) {
            self.next_mid += 1;
            mid = format!("s{}", self.next_mid);
        }
        self.next_mid += 1;
        // Codecs and extensions: those already negotiated on a section of the same kind (the
        // remote knows them; BUNDLE needs one extension map), else our defaults.
        let template = self
            .sections
            .iter()
            .find(|s| s.kind == kind && !s.rejected && !s.fresh && !s.codecs.is_empty());
        let (codecs, codec_details, extensions) = match template {
            Some(t) => (
                t.codecs.clone(),
                t.codec_details.clone(),
                t.extensions.clone(),
            ),
            None => self.default_codecs(&kind),
        };
        self.sections.push(Section {
            mid: mid.clone(),
            kind,
            protocol: "UDP/TLS/RTP/SAVPF".to_string(),
            formats: Vec::new(),
            rejected: false,
            codecs,
            codec_details,
            extensions,
            receiving: false,
            sending: false,
            send: Some(SendTrack {
                ssrc,
                rtx_ssrc,
                stream_id: stream_id.to_string(),
                track_id: track_id.to_string(),
                removed: false,
            }),
            remote_ssrc: None,
            remote_rtx_ssrc: None,
            pending: true,
            fresh: true,
        });
        mid
    }

    /// Our codecs and extensions for a new section of `kind` with no template.
    fn default_codecs(
        &self,
        kind: &MediaKind,
    ) -> (Vec<CodecInfo>, Vec<SectionCodec>, Vec<(u8, String)>) {
        let mut infos = Vec::new();
        let mut details = Vec::new();
        for c in self.caps.codecs.iter().filter(|c| &c.kind == kind) {
            let n = jsep::NegotiatedCodec {
                payload_type: c.payload_type,
                name: Cow::Owned(c.name.clone()),
                clock_rate: c.clock_rate,
                channels: c.channels,
                params: c.params.clone(),
                feedback: c.feedback.clone(),
                rtx_payload_type: c.rtx_payload_type,
            };
            infos.push(codec_info(&n));
            details.push(SectionCodec {
                params: c.params.clone(),
                feedback: c.feedback.clone(),
            });
        }
        // Extension ids must agree with what the BUNDLE already uses.
        let mut exts: Vec<(u8, String)> = Vec::new();
        for s in &self.sections {
            for (id, uri) in &s.extensions {
                if !exts.iter().any(|(i, _)| i == id) {
                    exts.push((*id, uri.clone()));
                }
            }
        }
        let mut out = Vec::new();
        for e in self.caps.extensions.iter().filter(|e| e.applies_to(kind)) {
            if let Some((id, _)) = exts.iter().find(|(_, u)| *u == e.uri) {
                out.push((*id, e.uri.clone()));
            } else if !exts.iter().any(|(i, _)| *i == e.id) {
                out.push((e.id, e.uri.clone()));
            }
        }
        (infos, details, out)
    }

    pub(crate) fn remove_send_track(&mut self, mid: &str) {
        if let Some(s) = self.sections.iter_mut().find(|s| s.mid == mid) {
            if let Some(t) = s.send.as_mut() {
                if !t.removed {
                    t.removed = true;
                    s.pending = true;
                }
            }
        }
    }

    /// Our current ICE credentials (ufrag, pwd).
    pub(crate) fn local_ice(&self) -> (&str, &str) {
        (&self.caps.ice.ufrag, &self.caps.ice.pwd)
    }

    /// Answers a remote offer. Returns the answer text and whether the offer restarted ICE
    /// (new remote credentials after the first negotiation): then the answer carries the
    /// local credentials `new_ice` returns (ufrag, pwd).
    pub(crate) fn accept_offer(
        &mut self,
        sdp: &str,
        new_ice: impl FnOnce() -> (String, String),
    ) -> Result<(String, bool), PeerError> {
        if self.pending_offer.is_some() {
            return Err(PeerError::Glare);
        }
        let offer = tympan_sdp::parse(sdp).map_err(|e| PeerError::BadSdp(e.to_string()))?;
        // The m-lines we know must stay where they are (JSEP §5.3.2 / RFC 3264 §8).
        let known: Vec<&Section> = self.sections.iter().filter(|s| !s.fresh).collect();
        if offer.media.len() < known.len() {
            return Err(PeerError::Negotiation(format!(
                "the offer has {} m-lines, {} were negotiated before",
                offer.media.len(),
                known.len()
            )));
        }
        for (i, (s, m)) in known.iter().zip(&offer.media).enumerate() {
            if m.mid() != Some(s.mid.as_str()) || m.kind != s.kind {
                return Err(PeerError::Negotiation(format!(
                    "m-line {i}: expected mid {} ({}), got {:?} ({})",
                    s.mid,
                    s.kind,
                    m.mid(),
                    m.kind
                )));
            }
        }
        for (i, m) in offer.media.iter().enumerate() {
            match m.mid() {
                None => return Err(PeerError::Negotiation(format!("m-line {i}: no a=mid"))),
                Some(mid) if mid.len() > MAX_MID_LEN || mid.is_empty() => {
                    return Err(PeerError::Negotiation(format!(
                        "m-line {i}: mid longer than {MAX_MID_LEN} bytes"
                    )));
                }
                Some(_) => {}
            }
        }
        // What we send on each section: our tracks; everything else is receive-only.
        let mut tracks = Vec::new();
        for m in &offer.media {
            let Some(mid) = m.mid() else { continue };
            let ours = self.sections.iter().find(|s| s.mid == mid && !s.fresh);
            let spec = match ours.and_then(|s| s.send.as_ref().map(|t| (s, t))) {
                Some((s, t)) if !t.removed => {
                    let mut spec = TrackSpec::new(m.kind.clone());
                    spec.direction = Direction::SendOnly;
                    spec.msid = Some(Msid {
                        stream_id: t.stream_id.clone(),
                        track_id: Some(t.track_id.clone()),
                    });
                    spec.ssrc = Some((t.ssrc, self.cname.clone()));
                    spec.rtx_ssrc = s.has_rtx().then_some(t.rtx_ssrc);
                    spec
                }
                Some(_) => {
                    let mut spec = TrackSpec::new(m.kind.clone());
                    spec.direction = Direction::Inactive;
                    spec
                }
                None => match self.preset_sends.iter().find(|(p, _)| p == mid) {
                    Some((_, t)) => self.preset_spec(m, t),
                    None => {
                        let mut spec = TrackSpec::new(m.kind.clone());
                        spec.direction = if self.accept_media || !spec_is_av(&m.kind) {
                            Direction::RecvOnly
                        } else {
                            Direction::Inactive
                        };
                        spec
                    }
                },
            };
            tracks.push((mid.to_string(), spec));
        }
        self.caps.answer_setup = match self.transport.as_ref().map(|t| t.local_setup) {
            Some(s) => s,
            None => Setup::Passive,
        };
        let mut answer =
            jsep::create_answer_with_tracks(&offer, &self.caps, &tracks).map_err(bad)?;
        let restart = match (&self.transport, remote_ice_of(&answer.negotiated)) {
            (Some(prev), Some(ice)) => prev.remote_ufrag != ice.ufrag || prev.remote_pwd != ice.pwd,
            _ => false,
        };
        let mut previous_ice = None;
        if restart {
            let (ufrag, pwd) = new_ice();
            previous_ice = Some(std::mem::replace(
                &mut self.caps.ice,
                jsep::IceCredentials::new(&ufrag, &pwd),
            ));
            answer = match jsep::create_answer_with_tracks(&offer, &self.caps, &tracks) {
                Ok(a) => a,
                Err(e) => {
                    if let Some(old) = previous_ice {
                        self.caps.ice = old;
                    }
                    return Err(bad(e));
                }
            };
        }
        let negotiated = &answer.negotiated;
        let transport = match self.check_transport(negotiated, restart) {
            Ok(t) => t,
            Err(e) => {
                if let Some(old) = previous_ice {
                    self.caps.ice = old;
                }
                return Err(e);
            }
        };
        let mut description = answer.description;
        self.session_version += 1;
        description.origin.session_version = self.session_version;
        add_ssrc_msid_lines(&mut description, &tracks);
        self.apply(negotiated, true);
        self.transport = Some(transport);
        Ok((description.to_string(), restart))
    }

    /// Transport parameters of a negotiation, checked: BUNDLE, rtcp-mux, ICE credentials, a
    /// sha-256 fingerprint, and no change of those against the previous negotiation.
    fn check_transport(
        &self,
        n: &NegotiatedSession,
        ice_restart: bool,
    ) -> Result<TransportParams, PeerError> {
        let accepted: Vec<&jsep::NegotiatedMedia> =
            n.media.iter().filter(|m| !m.rejected).collect();
        let Some(first) = accepted.first() else {
            return Err(PeerError::Negotiation(
                "every m-line is rejected: nothing to negotiate".into(),
            ));
        };
        for m in &accepted {
            let mid = m.mid.as_deref().unwrap_or("");
            if !n.bundle.iter().any(|b| b == mid) {
                return Err(PeerError::Negotiation(format!(
                    "mid {mid} is not in the BUNDLE group (BUNDLE is required)"
                )));
            }
            if matches!(m.kind, MediaKind::Audio | MediaKind::Video) && !m.rtcp_mux {
                return Err(PeerError::Negotiation(format!(
                    "mid {mid}: a=rtcp-mux is required"
                )));
            }
        }
        let ice = first
            .remote_ice
            .clone()
            .ok_or_else(|| PeerError::Negotiation("no a=ice-ufrag/a=ice-pwd".into()))?;
        let fp = first
            .remote_fingerprint
            .clone()
            .ok_or_else(|| PeerError::Negotiation("no a=fingerprint".into()))?;
        if !fp.hash_function.eq_ignore_ascii_case("sha-256") {
            return Err(PeerError::Negotiation(format!(
                "fingerprint hash {} not supported (sha-256 only)",
                fp.hash_function
            )));
        }
        let remote_fingerprint: [u8; 32] =
            fp.bytes.as_slice().try_into().map_err(|_| {
                PeerError::Negotiation("sha-256 fingerprint is not 32 bytes".into())
            })?;
        let sctp = n
            .media
            .iter()
            .filter(|m| !m.rejected)
            .find_map(|m| m.sctp)
            .map(|s| (s.remote_port, s.remote_max_message_size));
        let remote_candidates = accepted
            .iter()
            .flat_map(|m| m.remote_candidates.iter())
            .map(|c| c.to_string())
            .collect();
        let params = TransportParams {
            remote_ufrag: ice.ufrag,
            remote_pwd: ice.pwd,
            remote_fingerprint,
            local_setup: n.local_setup,
            remote_candidates,
            sctp,
        };
        if let Some(prev) = &self.transport {
            if !ice_restart
                && (prev.remote_ufrag != params.remote_ufrag
                    || prev.remote_pwd != params.remote_pwd)
            {
                return Err(PeerError::Negotiation(
                    "new ice-ufrag/ice-pwd in an answer (only a remote offer may restart ICE)"
                        .into(),
                ));
            }
            if prev.remote_fingerprint != params.remote_fingerprint {
                return Err(PeerError::Negotiation(
                    "the DTLS fingerprint changed (new DTLS association not supported)".into(),
                ));
            }
            if prev.local_setup != params.local_setup {
                return Err(PeerError::Negotiation(
                    "the DTLS role changed (new DTLS association not supported)".into(),
                ));
            }
        }
        Ok(params)
    }

    /// Takes a negotiation result into the section list.
    fn apply(&mut self, n: &NegotiatedSession, remote_offered: bool) {
        let mut sections = Vec::with_capacity(n.media.len());
        for m in &n.media {
            let mid = m.mid.clone().unwrap_or_default();
            // A remote mid never adopts one of our not-yet-offered sections.
            let old = self
                .sections
                .iter()
                .position(|s| s.mid == mid && !(remote_offered && s.fresh));
            let old = old.map(|i| self.sections.remove(i));
            let send = old.as_ref().and_then(|s| s.send.clone());
            let (remote_ssrc, remote_rtx_ssrc) = remote_ssrcs(m);
            let mut s = Section {
                mid,
                kind: m.kind.clone(),
                protocol: old.as_ref().map_or_else(
                    || {
                        if m.kind == MediaKind::Application {
                            "UDP/DTLS/SCTP".to_string()
                        } else {
                            "UDP/TLS/RTP/SAVPF".to_string()
                        }
                    },
                    |o| o.protocol.clone(),
                ),
                formats: Vec::new(),
                rejected: m.rejected,
                codecs: m.codecs.iter().map(codec_info).collect(),
                codec_details: m
                    .codecs
                    .iter()
                    .map(|c| SectionCodec {
                        params: c.params.clone(),
                        feedback: c.feedback.clone(),
                    })
                    .collect(),
                extensions: m
                    .extensions
                    .iter()
                    .map(|e| (e.id, e.uri.to_string()))
                    .collect(),
                receiving: !m.rejected && m.direction.receives(),
                sending: !m.rejected && m.direction.sends(),
                send,
                remote_ssrc,
                remote_rtx_ssrc,
                pending: false,
                fresh: false,
            };
            if s.rejected {
                s.formats = vec![Cow::Borrowed("0")];
                if let Some(o) = &old {
                    s.formats = if o.formats.is_empty() {
                        o.codecs
                            .iter()
                            .map(|c| Cow::Owned(c.payload_type.to_string()))
                            .collect()
                    } else {
                        o.formats.clone()
                    };
                }
                if s.formats.is_empty() {
                    s.formats = vec![Cow::Borrowed("0")];
                }
            }
            // A send track whose section did not end up sending (rejected, or answered
            // inactive) stays attached so a later offer can retry; `pending` is only kept for
            // sections the remote offered before we could offer our change.
            if let Some(old) = &old {
                if remote_offered && old.pending {
                    let still_wants = old.send.as_ref().is_some_and(|t| {
                        if t.removed {
                            s.sending
                        } else {
                            !s.sending && !s.rejected
                        }
                    });
                    s.pending = still_wants;
                }
            }
            sections.push(s);
        }
        // Sections we added and not offered yet stay at the end, still pending.
        let mut rest: Vec<Section> = self.sections.drain(..).filter(|s| s.fresh).collect();
        sections.append(&mut rest);
        self.sections = sections;
    }

    /// Our offer for the pending changes.
    pub(crate) fn create_offer(&mut self) -> Result<String, PeerError> {
        if self.pending_offer.is_some() {
            return Err(PeerError::NotReady);
        }
        if self.transport.is_none() {
            return Err(PeerError::NotReady);
        }
        // RFC 8842 §5.2/§5.5: an offer says actpass; the answer keeps the established role
        // (a changed role is refused in accept_answer).
        let setup = Setup::ActPass;
        let mut sdp = SessionDescription::default();
        sdp.origin.session_id = self.caps.session_id;
        self.session_version += 1;
        sdp.origin.session_version = self.session_version;
        sdp.attributes.push(Attribute::IceLite);
        let mut bundle = Vec::new();
        let mut offered = Vec::new();
        for s in &self.sections {
            // A track removed before it was ever offered is simply never offered.
            if s.fresh && s.send.as_ref().is_some_and(|t| t.removed) {
                continue;
            }
            offered.push((s.mid.clone(), s.send.as_ref().is_some_and(|t| t.removed)));
            let m = self.offer_section(s, setup);
            if m.port != 0 {
                bundle.push(s.mid.clone());
            }
            sdp.media.push(m);
        }
        if !bundle.is_empty() {
            sdp.attributes.insert(
                1,
                Attribute::Group(Group {
                    semantics: "BUNDLE".to_string(),
                    mids: bundle,
                }),
            );
        }
        if self.caps.extmap_allow_mixed {
            sdp.attributes.push(Attribute::ExtmapAllowMixed);
        }
        let text = sdp.to_string();
        self.pending_offer = Some(sdp);
        self.offered = offered;
        Ok(text)
    }

    fn transport_attributes(&self, setup: Setup, out: &mut Vec<Attribute>) {
        for c in &self.caps.candidates {
            out.push(Attribute::Candidate(Box::new(c.clone())));
        }
        out.push(Attribute::IceUfrag(self.caps.ice.ufrag.clone()));
        out.push(Attribute::IcePwd(self.caps.ice.pwd.clone()));
        out.push(Attribute::Fingerprint(self.caps.fingerprint.clone()));
        out.push(Attribute::Setup(setup));
    }

    fn offer_section(&self, s: &Section, setup: Setup) -> MediaDescription {
        if s.rejected {
            let mut m = MediaDescription::new(s.kind.clone(), 0, &s.protocol);
            m.formats = s.formats.clone();
            m.connections.push(Connection::unspecified_ipv4());
            m.attributes.push(Attribute::Mid(s.mid.clone()));
            return m;
        }
        let mut m = MediaDescription::new(s.kind.clone(), 9, &s.protocol);
        m.connections.push(Connection::unspecified_ipv4());
        let mut attrs = Vec::new();
        self.transport_attributes(setup, &mut attrs);
        attrs.push(Attribute::Mid(s.mid.clone()));
        if s.kind == MediaKind::Application {
            m.formats.push(Cow::Borrowed("webrtc-datachannel"));
            let dc = self.caps.data_channel.unwrap_or(DataChannelCapability {
                sctp_port: 5000,
                max_message_size: 262_144,
            });
            attrs.push(Attribute::SctpPort(dc.sctp_port));
            attrs.push(Attribute::MaxMessageSize(dc.max_message_size));
            attrs.push(Attribute::EndOfCandidates);
            m.attributes = attrs;
            return m;
        }
        for (id, uri) in &s.extensions {
            attrs.push(Attribute::Extmap(Extmap {
                id: *id,
                direction: None,
                uri: Cow::Owned(uri.clone()),
                attributes: None,
            }));
        }
        let track = s.send.as_ref().filter(|t| !t.removed);
        // We receive what the remote sends (publisher sections) and send our tracks.
        let recv = s.receiving && s.send.is_none();
        let direction = Direction::from_flags(track.is_some(), recv);
        attrs.push(Attribute::Direction(direction));
        if let Some(t) = track {
            attrs.push(Attribute::Msid(Msid {
                stream_id: t.stream_id.clone(),
                track_id: Some(t.track_id.clone()),
            }));
        }
        attrs.push(Attribute::RtcpMux);
        attrs.push(Attribute::RtcpRsize);
        for (c, d) in s.codecs.iter().zip(&s.codec_details) {
            m.formats.push(Cow::Owned(c.payload_type.to_string()));
            attrs.push(Attribute::Rtpmap(Rtpmap {
                payload_type: c.payload_type,
                encoding: Cow::Owned(c.name.clone()),
                clock_rate: c.clock_rate,
                channels: c.channels,
            }));
            for f in &d.feedback {
                attrs.push(Attribute::RtcpFb(RtcpFb {
                    payload_type: Some(c.payload_type),
                    fb_type: f.fb_type.clone(),
                    param: f.param.clone(),
                }));
            }
            if !d.params.is_empty() {
                attrs.push(Attribute::Fmtp(Fmtp {
                    payload_type: c.payload_type,
                    params: d.params.clone(),
                }));
            }
            if let Some(rtx) = c.rtx_payload_type {
                m.formats.push(Cow::Owned(rtx.to_string()));
                attrs.push(Attribute::Rtpmap(Rtpmap {
                    payload_type: rtx,
                    encoding: Cow::Borrowed("rtx"),
                    clock_rate: c.clock_rate,
                    channels: None,
                }));
                attrs.push(Attribute::Fmtp(Fmtp {
                    payload_type: rtx,
                    params: vec![FmtpParam::Apt(c.payload_type)],
                }));
            }
        }
        if let Some(t) = track {
            let rtx = s.has_rtx().then_some(t.rtx_ssrc);
            push_ssrc_attrs(
                &mut attrs,
                t.ssrc,
                rtx,
                &self.cname,
                &t.stream_id,
                &t.track_id,
            );
        }
        attrs.push(Attribute::EndOfCandidates);
        m.attributes = attrs;
        m
    }

    /// The remote's answer to our offer.
    pub(crate) fn accept_answer(&mut self, sdp: &str) -> Result<(), PeerError> {
        let Some(offer) = self.pending_offer.as_ref() else {
            return Err(PeerError::StaleAnswer);
        };
        let answer = tympan_sdp::parse(sdp).map_err(|e| PeerError::BadSdp(e.to_string()))?;
        let negotiated = jsep::apply_answer(offer, &answer).map_err(bad)?;
        let transport = self.check_transport(&negotiated, false)?;
        self.pending_offer = None;
        let offered = std::mem::take(&mut self.offered);
        self.apply(&negotiated, false);
        // Fresh sections removed before they were ever offered are forgotten.
        self.sections
            .retain(|s| !(s.fresh && s.send.as_ref().is_some_and(|t| t.removed)));
        // Changes made while our offer was outstanding still need an offer.
        for s in &mut self.sections {
            let removed_now = s.send.as_ref().is_some_and(|t| t.removed);
            match offered.iter().find(|(mid, _)| *mid == s.mid) {
                Some((_, removed_then)) => s.pending = removed_now != *removed_then,
                None => s.pending = s.fresh,
            }
        }
        if let Some(t) = self.transport.as_mut() {
            t.remote_candidates = transport.remote_candidates;
        }
        Ok(())
    }

    /// Drops a pending local offer (used when the peer closes).
    pub(crate) fn abandon_offer(&mut self) {
        self.pending_offer = None;
    }

    /// Answers a remote offer sending `sends` (mid, track) on the remote's own m-lines
    /// (which must offer to receive): a WHEP viewer's recvonly offer is answered sendonly
    /// there, with our SSRCs and msid. Mids not offered are ignored.
    pub(crate) fn accept_offer_sending(
        &mut self,
        sdp: &str,
        sends: Vec<(String, SendTrack)>,
        new_ice: impl FnOnce() -> (String, String),
    ) -> Result<(String, bool), PeerError> {
        self.preset_sends = sends;
        let result = self.accept_offer(sdp, new_ice);
        let sends = std::mem::take(&mut self.preset_sends);
        let answer = result?;
        for (mid, t) in sends {
            if let Some(s) = self
                .sections
                .iter_mut()
                .find(|s| s.mid == mid && s.send.is_none())
            {
                s.send = Some(t);
            }
        }
        Ok(answer)
    }

    /// The answer's track spec for a preset send track on the offered m-line `m`.
    fn preset_spec(&self, m: &MediaDescription, t: &SendTrack) -> TrackSpec {
        let mut spec = TrackSpec::new(m.kind.clone());
        spec.direction = Direction::SendOnly;
        spec.msid = Some(Msid {
            stream_id: t.stream_id.clone(),
            track_id: Some(t.track_id.clone()),
        });
        spec.ssrc = Some((t.ssrc, self.cname.clone()));
        // An RTX SSRC only when the remote offered RTX on this m-line.
        let rtx = m
            .attributes
            .iter()
            .any(|a| matches!(a, Attribute::Rtpmap(r) if r.encoding.eq_ignore_ascii_case("rtx")));
        spec.rtx_ssrc = rtx.then_some(t.rtx_ssrc);
        spec
    }
}

/// The remote ICE credentials of a negotiation (from its first accepted m-line).
fn remote_ice_of(n: &NegotiatedSession) -> Option<jsep::IceCredentials> {
    n.media
        .iter()
        .filter(|m| !m.rejected)
        .find_map(|m| m.remote_ice.clone())
}

/// Audio or video (data channel sections are always accepted).
fn spec_is_av(kind: &MediaKind) -> bool {
    matches!(kind, MediaKind::Audio | MediaKind::Video)
}

/// `a=ssrc-group:FID`, and `a=ssrc:<ssrc> cname:` / `msid:` lines of a sending track.
fn push_ssrc_attrs(
    attrs: &mut Vec<Attribute>,
    ssrc: u32,
    rtx: Option<u32>,
    cname: &str,
    stream_id: &str,
    track_id: &str,
) {
    if let Some(rtx) = rtx {
        attrs.push(Attribute::SsrcGroup(SsrcGroup {
            semantics: "FID".to_string(),
            ssrcs: vec![ssrc, rtx],
        }));
    }
    for s in std::iter::once(ssrc).chain(rtx) {
        attrs.push(Attribute::Ssrc(Ssrc {
            ssrc: s,
            attribute: Cow::Borrowed("cname"),
            value: Some(cname.to_string()),
        }));
        attrs.push(Attribute::Ssrc(Ssrc {
            ssrc: s,
            attribute: Cow::Borrowed("msid"),
            value: Some(format!("{stream_id} {track_id}")),
        }));
    }
}

/// `create_answer_with_tracks` writes `a=ssrc:<ssrc> cname:` only; add the `msid:` lines.
fn add_ssrc_msid_lines(description: &mut SessionDescription, tracks: &[(String, TrackSpec)]) {
    for m in &mut description.media {
        let Some(mid) = m.mid() else { continue };
        let Some((_, t)) = tracks.iter().find(|(id, _)| id == mid) else {
            continue;
        };
        let Some(msid) = &t.msid else { continue };
        if !m.direction().sends() {
            continue;
        }
        let value = format!(
            "{} {}",
            msid.stream_id,
            msid.track_id.as_deref().unwrap_or("")
        );
        let mut extra = Vec::new();
        for a in &m.attributes {
            if let Attribute::Ssrc(s) = a {
                if s.attribute == "cname" {
                    extra.push(Attribute::Ssrc(Ssrc {
                        ssrc: s.ssrc,
                        attribute: Cow::Borrowed("msid"),
                        value: Some(value.clone()),
                    }));
                }
            }
        }
        // Keep the lines together, before a=end-of-candidates.
        let at = m
            .attributes
            .iter()
            .position(|a| matches!(a, Attribute::EndOfCandidates))
            .unwrap_or(m.attributes.len());
        for (i, a) in extra.into_iter().enumerate() {
            m.attributes.insert(at + i, a);
        }
    }
}

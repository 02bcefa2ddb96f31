//! JSEP offer/answer (RFC 8829 §5, RFC 3264): answer a remote offer from local capabilities,
//! create an offer, and check a remote answer against the offer.
//!
//! ```
//! use tympan_sdp::jsep::{self, IceCredentials, LocalCapabilities, TrackSpec};
//! use tympan_sdp::{Fingerprint, MediaKind, Setup};
//!
//! let fingerprint = Fingerprint { hash_function: "sha-256".into(), bytes: vec![0xAB; 32] };
//! let ours = LocalCapabilities::webrtc_default(IceCredentials::new("ufrag1", "pwd1pwd1pwd1pwd1pwd1pwd1"), fingerprint.clone());
//! let theirs = LocalCapabilities::webrtc_default(IceCredentials::new("ufrag2", "pwd2pwd2pwd2pwd2pwd2pwd2"), fingerprint);
//!
//! let offer = jsep::create_offer(&ours, &[TrackSpec::new(MediaKind::Audio), TrackSpec::new(MediaKind::Video)]);
//! let answer = jsep::create_answer(&offer, &theirs).expect("answer");
//! assert_eq!(answer.negotiated.media[0].codecs[0].name, "opus");
//! let session = jsep::apply_answer(&offer, &answer.description).expect("valid answer");
//! assert_eq!(session.media.len(), 3); // audio, video, data channel
//! assert_eq!(session.media[1].codecs[0].rtx_payload_type, Some(97));
//! assert_eq!(answer.negotiated.media[0].remote_setup, Some(Setup::ActPass));
//! ```

use std::borrow::Cow;
use std::fmt::{self, Display, Formatter};

use crate::attribute::{
    Attribute, Candidate, Direction, Extmap, Fingerprint, Fmtp, FmtpParam, Group, Msid, Rid,
    RidDirection, RtcpFb, Rtpmap, Sctpmap, Setup, Simulcast, SimulcastRid, SsrcGroup,
};
use crate::model::{Connection, MediaDescription, MediaKind, SessionDescription};

/// ICE username fragment and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `ice-ufrag`.
    pub ufrag: String,
    /// `ice-pwd`.
    pub pwd: String,
}

impl IceCredentials {
    /// Builds credentials from the two strings.
    pub fn new(ufrag: &str, pwd: &str) -> Self {
        IceCredentials {
            ufrag: ufrag.to_string(),
            pwd: pwd.to_string(),
        }
    }
}

/// One RTCP feedback mechanism (`nack`, `nack pli`, `ccm fir`, `transport-cc`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Feedback type.
    pub fb_type: Cow<'static, str>,
    /// Parameter (`pli`, `fir`, ...).
    pub param: Option<Cow<'static, str>>,
}

impl Feedback {
    /// Builds a feedback entry, e.g. `Feedback::new("nack", Some("pli"))`.
    pub fn new(fb_type: &str, param: Option<&str>) -> Self {
        Feedback {
            fb_type: Cow::Owned(fb_type.to_string()),
            param: param.map(|p| Cow::Owned(p.to_string())),
        }
    }
}

/// A codec we can send and receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecCapability {
    /// `Audio` or `Video`.
    pub kind: MediaKind,
    /// Encoding name (`opus`, `VP8`, `H264`, ...).
    pub name: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Audio channels.
    pub channels: Option<u16>,
    /// Format parameters (what we put in our fmtp; for H.264 also the profile we support).
    pub params: Vec<FmtpParam>,
    /// RTCP feedback we support for this codec.
    pub feedback: Vec<Feedback>,
    /// Payload type used when we create an offer.
    pub payload_type: u8,
    /// RTX support: the RTX payload type used when we create an offer. When answering, any
    /// offered RTX payload whose `apt` is this codec is accepted if this is `Some`.
    pub rtx_payload_type: Option<u8>,
}

impl CodecCapability {
    /// A codec without parameters, feedback or RTX.
    pub fn new(kind: MediaKind, name: &str, clock_rate: u32, payload_type: u8) -> Self {
        CodecCapability {
            kind,
            name: name.to_string(),
            clock_rate,
            channels: None,
            params: Vec::new(),
            feedback: Vec::new(),
            payload_type,
            rtx_payload_type: None,
        }
    }
}

/// A header extension we support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionCapability {
    /// Extension URI.
    pub uri: String,
    /// Id used when we create an offer.
    pub id: u8,
    /// Usable with audio.
    pub audio: bool,
    /// Usable with video.
    pub video: bool,
}

impl ExtensionCapability {
    /// Whether the extension applies to a media kind.
    pub fn applies_to(&self, kind: &MediaKind) -> bool {
        match kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video,
            _ => false,
        }
    }
}

/// Data channel (SCTP over DTLS) support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannelCapability {
    /// Our SCTP port.
    pub sctp_port: u16,
    /// The largest message we accept.
    pub max_message_size: u64,
}

/// Everything the local side can do; the input of [`create_offer`] and [`create_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Codecs in preference order.
    pub codecs: Vec<CodecCapability>,
    /// Header extensions.
    pub extensions: Vec<ExtensionCapability>,
    /// The most we are willing to do on each audio/video section.
    pub direction: Direction,
    /// Data channel support.
    pub data_channel: Option<DataChannelCapability>,
    /// Our ICE credentials.
    pub ice: IceCredentials,
    /// We are an ICE-lite agent.
    pub ice_lite: bool,
    /// We support trickle ICE (`a=ice-options:trickle`).
    pub trickle: bool,
    /// Our DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// Our role when the offer says `actpass`: `Active` (default) or `Passive`.
    pub answer_setup: Setup,
    /// Candidates to include.
    pub candidates: Vec<Candidate>,
    /// Add `a=end-of-candidates` (all candidates are included).
    pub end_of_candidates: bool,
    /// Accept simulcast sent by the remote (answer `a=simulcast:recv` with its rids).
    pub receive_simulcast: bool,
    /// Support `a=extmap-allow-mixed`.
    pub extmap_allow_mixed: bool,
    /// Session id written in `o=`.
    pub session_id: u64,
}

fn fb(list: &[(&str, Option<&str>)]) -> Vec<Feedback> {
    list.iter().map(|(t, p)| Feedback::new(t, *p)).collect()
}

impl LocalCapabilities {
    /// What a WebRTC SFU typically supports: Opus and PCMU; VP8, VP9 profile 0 and H.264
    /// constrained baseline (packetization-mode 1), each with RTX; audio level, abs-send-time,
    /// transport-wide CC, mid and rid extensions; data channels; simulcast reception.
    pub fn webrtc_default(ice: IceCredentials, fingerprint: Fingerprint) -> Self {
        let video_fb = fb(&[
            ("goog-remb", None),
            ("transport-cc", None),
            ("ccm", Some("fir")),
            ("nack", None),
            ("nack", Some("pli")),
        ]);
        let mut opus = CodecCapability::new(MediaKind::Audio, "opus", 48000, 111);
        opus.channels = Some(2);
        opus.params = vec![FmtpParam::MinPtime(10), FmtpParam::UseInbandFec(true)];
        opus.feedback = fb(&[("transport-cc", None)]);
        let pcmu = CodecCapability::new(MediaKind::Audio, "PCMU", 8000, 0);
        let mut vp8 = CodecCapability::new(MediaKind::Video, "VP8", 90000, 96);
        vp8.feedback = video_fb.clone();
        vp8.rtx_payload_type = Some(97);
        let mut vp9 = CodecCapability::new(MediaKind::Video, "VP9", 90000, 98);
        vp9.params = vec![FmtpParam::ProfileId(0)];
        vp9.feedback = video_fb.clone();
        vp9.rtx_payload_type = Some(99);
        let mut h264 = CodecCapability::new(MediaKind::Video, "H264", 90000, 106);
        h264.params = vec![
            FmtpParam::LevelAsymmetryAllowed(true),
            FmtpParam::PacketizationMode(1),
            FmtpParam::ProfileLevelId(crate::ProfileLevelId {
                profile_idc: 0x42,
                profile_iop: 0xe0,
                level_idc: 0x1f,
            }),
        ];
        h264.feedback = video_fb;
        h264.rtx_payload_type = Some(107);
        let ext = |uri: &str, id, audio, video| ExtensionCapability {
            uri: uri.to_string(),
            id,
            audio,
            video,
        };
        LocalCapabilities {
            codecs: vec![opus, pcmu, vp8, vp9, h264],
            extensions: vec![
                ext(
                    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
                    1,
                    true,
                    false,
                ),
                ext(
                    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
                    2,
                    true,
                    true,
                ),
                ext(
                    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
                    3,
                    true,
                    true,
                ),
                ext("urn:ietf:params:rtp-hdrext:sdes:mid", 4, true, true),
                ext(
                    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
                    10,
                    false,
                    true,
                ),
                ext(
                    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
                    11,
                    false,
                    true,
                ),
            ],
            direction: Direction::SendRecv,
            data_channel: Some(DataChannelCapability {
                sctp_port: 5000,
                max_message_size: 262_144,
            }),
            ice,
            ice_lite: false,
            trickle: true,
            fingerprint,
            answer_setup: Setup::Active,
            candidates: Vec::new(),
            end_of_candidates: false,
            receive_simulcast: true,
            extmap_allow_mixed: true,
            session_id: 1,
        }
    }
}

/// A codec both sides agreed on for one media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// Payload type (the offerer's).
    pub payload_type: u8,
    /// Encoding name as the offer wrote it.
    pub name: Cow<'static, str>,
    /// Clock rate.
    pub clock_rate: u32,
    /// Audio channels.
    pub channels: Option<u16>,
    /// The remote side's format parameters.
    pub params: Vec<FmtpParam>,
    /// Feedback both sides support.
    pub feedback: Vec<Feedback>,
    /// RTX payload type paired with this codec.
    pub rtx_payload_type: Option<u8>,
}

/// A header extension both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedExtension {
    /// Id (the offerer's).
    pub id: u8,
    /// URI.
    pub uri: Cow<'static, str>,
}

/// SCTP parameters of a negotiated data channel section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SctpParameters {
    /// Our SCTP port.
    pub local_port: u16,
    /// The remote SCTP port.
    pub remote_port: u16,
    /// The largest message the remote accepts.
    pub remote_max_message_size: u64,
}

/// The outcome for one media section, seen from the local side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Index of the m-line.
    pub index: usize,
    /// `a=mid`.
    pub mid: Option<String>,
    /// Media kind.
    pub kind: MediaKind,
    /// Rejected (port 0): nothing below applies.
    pub rejected: bool,
    /// What the local side does (sends, receives).
    pub direction: Direction,
    /// Codecs, in the answerer's preference order.
    pub codecs: Vec<NegotiatedCodec>,
    /// Header extensions.
    pub extensions: Vec<NegotiatedExtension>,
    /// RTCP multiplexed with RTP.
    pub rtcp_mux: bool,
    /// Reduced-size RTCP.
    pub rtcp_rsize: bool,
    /// SSRCs the remote announced (`a=ssrc`).
    pub remote_ssrcs: Vec<u32>,
    /// SSRC groups the remote announced (FID, SIM).
    pub remote_ssrc_groups: Vec<SsrcGroup>,
    /// The remote `a=msid`.
    pub remote_msid: Option<Msid>,
    /// Rids the remote sends and we receive (simulcast), in its order.
    pub receive_rids: Vec<String>,
    /// Rids we send that the remote accepted.
    pub send_rids: Vec<String>,
    /// Remote ICE credentials (media level, else session level).
    pub remote_ice: Option<IceCredentials>,
    /// Remote candidates in this section.
    pub remote_candidates: Vec<Candidate>,
    /// Remote DTLS fingerprint (media level, else session level).
    pub remote_fingerprint: Option<Fingerprint>,
    /// Remote `a=setup`.
    pub remote_setup: Option<Setup>,
    /// Data channel parameters (application sections).
    pub sctp: Option<SctpParameters>,
}

/// The result of an offer/answer exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedSession {
    /// Per m-line results, in order.
    pub media: Vec<NegotiatedMedia>,
    /// Mids of the accepted BUNDLE group (the first is the BUNDLE tag).
    pub bundle: Vec<String>,
    /// Our DTLS role: `Active` (client) or `Passive` (server).
    pub local_setup: Setup,
    /// The remote is ICE-lite.
    pub remote_ice_lite: bool,
    /// Both sides allow mixed one-/two-byte header extensions.
    pub extmap_allow_mixed: bool,
}

/// An answer: the description to send back and what it means for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The SDP answer.
    pub description: SessionDescription,
    /// The negotiated parameters.
    pub negotiated: NegotiatedSession,
}

/// What made an offer or answer unacceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationErrorKind {
    /// The answer does not have one m-line per offered m-line.
    MediaCount {
        /// m-lines in the offer.
        offered: usize,
        /// m-lines in the answer.
        answered: usize,
    },
    /// The answer changed the media type of an m-line.
    KindChanged,
    /// The answer changed or dropped the mid.
    MidChanged,
    /// A required attribute is absent.
    Missing,
    /// A payload type the offer did not list.
    PayloadTypeNotOffered(u8),
    /// A payload type mapped to another codec than offered.
    CodecChanged(u8),
    /// An accepted audio/video section without any codec.
    NoCodec,
    /// An extension id the offer did not list.
    ExtensionNotOffered(u8),
    /// An extension id mapped to another URI than offered.
    ExtensionChanged(u8),
    /// The DTLS roles do not fit together.
    SetupConflict {
        /// The offer's setup (None when absent).
        offered: Option<Setup>,
        /// The answer's setup.
        answered: Setup,
    },
    /// The answer's direction is not allowed by the offer's.
    DirectionNotAllowed {
        /// The offer's direction.
        offered: Direction,
        /// The answer's direction.
        answered: Direction,
    },
    /// A BUNDLE mid that the offer did not bundle.
    BundleMidNotOffered(String),
    /// A rid the offer did not list.
    RidNotOffered(String),
    /// The offer asks for something we cannot do (e.g. `setup:holdconn`).
    Unsupported,
}

/// A negotiation failure, naming the m-line (index and mid) and the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationError {
    /// Index of the offending m-line (`None` for session-level problems).
    pub m_line: Option<usize>,
    /// Its mid, if any.
    pub mid: Option<String>,
    /// The attribute or line at fault (`"setup"`, `"rtpmap"`, `"m="`, ...).
    pub attribute: &'static str,
    /// What was wrong.
    pub kind: NegotiationErrorKind,
}

impl Display for NegotiationError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.m_line {
            write!(f, "m-line {i}")?;
            if let Some(mid) = &self.mid {
                write!(f, " (mid {mid})")?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{}: {:?}", self.attribute, self.kind)
    }
}

impl std::error::Error for NegotiationError {}

fn error(
    media: Option<(usize, &MediaDescription)>,
    attribute: &'static str,
    kind: NegotiationErrorKind,
) -> NegotiationError {
    NegotiationError {
        m_line: media.map(|(i, _)| i),
        mid: media.and_then(|(_, m)| m.mid().map(str::to_string)),
        attribute,
        kind,
    }
}

/// Static payload types (RFC 3551) that may appear without `a=rtpmap`.
fn static_rtpmap(pt: u8) -> Option<Rtpmap> {
    let (name, clock) = match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some(Rtpmap {
        payload_type: pt,
        encoding: Cow::Borrowed(name),
        clock_rate: clock,
        channels: None,
    })
}

fn rtpmap_of(media: &MediaDescription, pt: u8) -> Option<Rtpmap> {
    media.rtpmap(pt).cloned().or_else(|| static_rtpmap(pt))
}

fn params_of(media: &MediaDescription, pt: u8) -> Vec<FmtpParam> {
    media.fmtp(pt).map(|f| f.params.clone()).unwrap_or_default()
}

fn find_param<'a>(params: &'a [FmtpParam], key: &str) -> Option<&'a FmtpParam> {
    params.iter().find(|p| p.key() == Some(key))
}

fn h264_profile(params: &[FmtpParam]) -> crate::H264Profile {
    match find_param(params, "profile-level-id") {
        Some(FmtpParam::ProfileLevelId(p)) => p.profile(),
        _ => crate::ProfileLevelId::DEFAULT.profile(),
    }
}

fn packetization_mode(params: &[FmtpParam]) -> u8 {
    match find_param(params, "packetization-mode") {
        Some(FmtpParam::PacketizationMode(m)) => *m,
        _ => 0,
    }
}

fn vp9_profile(params: &[FmtpParam]) -> u8 {
    match find_param(params, "profile-id") {
        Some(FmtpParam::ProfileId(p)) => *p,
        _ => 0,
    }
}

fn other_param<'a>(params: &'a [FmtpParam], key: &str, default: &'a str) -> &'a str {
    match find_param(params, key) {
        Some(FmtpParam::Other { value, .. }) => value,
        _ => default,
    }
}

/// Whether an offered codec (rtpmap + fmtp params) is the codec `cap` describes.
fn codec_matches(rtpmap: &Rtpmap, params: &[FmtpParam], cap: &CodecCapability) -> bool {
    if !rtpmap.encoding.eq_ignore_ascii_case(&cap.name)
        || rtpmap.clock_rate != cap.clock_rate
        || rtpmap.channels.unwrap_or(1) != cap.channels.unwrap_or(1)
    {
        return false;
    }
    match cap.name.to_ascii_uppercase().as_str() {
        "H264" => {
            h264_profile(params) == h264_profile(&cap.params)
                && packetization_mode(params) == packetization_mode(&cap.params)
        }
        "VP9" => vp9_profile(params) == vp9_profile(&cap.params),
        "AV1" => other_param(params, "profile", "0") == other_param(&cap.params, "profile", "0"),
        _ => true,
    }
}

/// Codecs whose answer fmtp must echo the offer's (profile-bearing parameters).
fn echo_offer_params(name: &str) -> bool {
    ["H264", "VP9", "AV1"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

fn offered_feedback(media: &MediaDescription, pt: u8) -> Vec<Feedback> {
    media
        .attributes
        .iter()
        .filter_map(|a| match a {
            Attribute::RtcpFb(fb) if fb.payload_type.is_none_or(|p| p == pt) => Some(Feedback {
                fb_type: fb.fb_type.clone(),
                param: fb.param.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn intersect_feedback(a: &[Feedback], b: &[Feedback]) -> Vec<Feedback> {
    let mut out: Vec<Feedback> = Vec::new();
    for f in a {
        if b.contains(f) && !out.contains(f) {
            out.push(f.clone());
        }
    }
    out
}

/// The RTX payload type the media section pairs with `primary` (via `apt`).
fn rtx_for(media: &MediaDescription, primary: u8, clock_rate: u32) -> Option<u8> {
    media.payload_types().find(|&pt| {
        media
            .rtpmap(pt)
            .is_some_and(|r| r.encoding.eq_ignore_ascii_case("rtx") && r.clock_rate == clock_rate)
            && media.fmtp(pt).and_then(Fmtp::apt) == Some(primary)
    })
}

fn is_rtx(media: &MediaDescription, pt: u8) -> bool {
    media
        .rtpmap(pt)
        .is_some_and(|r| r.encoding.eq_ignore_ascii_case("rtx"))
}

fn session_or_media<'a, T>(
    session: &'a SessionDescription,
    media: &'a MediaDescription,
    pick: impl Fn(&'a Attribute) -> Option<T>,
) -> Option<T> {
    media
        .attributes
        .iter()
        .find_map(&pick)
        .or_else(|| session.attributes.iter().find_map(&pick))
}

fn remote_setup(session: &SessionDescription, media: &MediaDescription) -> Option<Setup> {
    session_or_media(session, media, |a| match a {
        Attribute::Setup(s) => Some(*s),
        _ => None,
    })
}

fn remote_ice(session: &SessionDescription, media: &MediaDescription) -> Option<IceCredentials> {
    let ufrag = session_or_media(session, media, |a| match a {
        Attribute::IceUfrag(u) => Some(u.clone()),
        _ => None,
    })?;
    let pwd = session_or_media(session, media, |a| match a {
        Attribute::IcePwd(p) => Some(p.clone()),
        _ => None,
    })?;
    Some(IceCredentials { ufrag, pwd })
}

fn remote_fingerprint(
    session: &SessionDescription,
    media: &MediaDescription,
) -> Option<Fingerprint> {
    session_or_media(session, media, |a| match a {
        Attribute::Fingerprint(f) => Some(f.clone()),
        _ => None,
    })
}

fn has_anywhere(session: &SessionDescription, media: &MediaDescription, name: &str) -> bool {
    media.has_attribute(name) || session.attribute(name).is_some()
}

/// Fills in what the remote description says about a media section.
fn remote_view(
    index: usize,
    session: &SessionDescription,
    media: &MediaDescription,
) -> NegotiatedMedia {
    let mut remote_ssrcs = Vec::new();
    let mut remote_ssrc_groups = Vec::new();
    let mut remote_msid = None;
    let mut remote_candidates = Vec::new();
    for a in &media.attributes {
        match a {
            Attribute::Ssrc(s) if !remote_ssrcs.contains(&s.ssrc) => remote_ssrcs.push(s.ssrc),
            Attribute::SsrcGroup(g) => remote_ssrc_groups.push(g.clone()),
            Attribute::Msid(m) if remote_msid.is_none() => remote_msid = Some(m.clone()),
            Attribute::Candidate(c) => remote_candidates.push((**c).clone()),
            _ => {}
        }
    }
    NegotiatedMedia {
        index,
        mid: media.mid().map(str::to_string),
        kind: media.kind.clone(),
        rejected: media.port == 0 && !media.has_attribute("bundle-only"),
        direction: Direction::Inactive,
        codecs: Vec::new(),
        extensions: Vec::new(),
        rtcp_mux: media.has_attribute("rtcp-mux"),
        rtcp_rsize: media.has_attribute("rtcp-rsize"),
        remote_ssrcs,
        remote_ssrc_groups,
        remote_msid,
        receive_rids: Vec::new(),
        send_rids: Vec::new(),
        remote_ice: remote_ice(session, media),
        remote_candidates,
        remote_fingerprint: remote_fingerprint(session, media),
        remote_setup: remote_setup(session, media),
        sctp: None,
    }
}

fn rids(media: &MediaDescription, direction: RidDirection) -> Vec<&Rid> {
    media
        .attributes
        .iter()
        .filter_map(|a| match a {
            Attribute::Rid(r) if r.direction == direction => Some(r),
            _ => None,
        })
        .collect()
}

fn simulcast(media: &MediaDescription) -> Option<&Simulcast> {
    media.attributes.iter().find_map(|a| match a {
        Attribute::Simulcast(s) => Some(s),
        _ => None,
    })
}

fn remote_sctp(media: &MediaDescription) -> (u16, u64) {
    let port = media
        .attributes
        .iter()
        .find_map(|a| match a {
            Attribute::SctpPort(p) => Some(*p),
            Attribute::Sctpmap(s) => Some(s.port),
            _ => None,
        })
        .or_else(|| media.formats.first().and_then(|f| f.parse().ok()))
        .unwrap_or(5000);
    let max = media
        .attributes
        .iter()
        .find_map(|a| match a {
            Attribute::MaxMessageSize(m) => Some(*m),
            _ => None,
        })
        .unwrap_or(65536);
    (port, max)
}

fn transport_attributes(caps: &LocalCapabilities, setup: Setup, out: &mut Vec<Attribute>) {
    for c in &caps.candidates {
        out.push(Attribute::Candidate(Box::new(c.clone())));
    }
    out.push(Attribute::IceUfrag(caps.ice.ufrag.clone()));
    out.push(Attribute::IcePwd(caps.ice.pwd.clone()));
    if caps.trickle {
        out.push(Attribute::IceOptions(vec!["trickle".to_string()]));
    }
    out.push(Attribute::Fingerprint(caps.fingerprint.clone()));
    out.push(Attribute::Setup(setup));
}

fn new_session(caps: &LocalCapabilities) -> SessionDescription {
    let mut sdp = SessionDescription::default();
    sdp.origin.session_id = caps.session_id;
    sdp.origin.session_version = 2;
    if caps.ice_lite {
        sdp.attributes.push(Attribute::IceLite);
    }
    sdp
}

fn rejected_section(offer: &MediaDescription) -> MediaDescription {
    let mut m = MediaDescription::new(offer.kind.clone(), 0, &offer.protocol);
    m.formats = offer.formats.clone();
    // RFC 8866 §5.7: every section needs connection data when the session has none.
    m.connections.push(Connection::unspecified_ipv4());
    if let Some(mid) = offer.mid() {
        m.attributes.push(Attribute::Mid(mid.to_string()));
    }
    m
}

fn push_codec_lines(
    out: &mut Vec<Attribute>,
    pt: u8,
    rtpmap: &Rtpmap,
    params: &[FmtpParam],
    feedback: &[Feedback],
) {
    out.push(Attribute::Rtpmap(Rtpmap {
        payload_type: pt,
        ..rtpmap.clone()
    }));
    for f in feedback {
        out.push(Attribute::RtcpFb(RtcpFb {
            payload_type: Some(pt),
            fb_type: f.fb_type.clone(),
            param: f.param.clone(),
        }));
    }
    if !params.is_empty() {
        out.push(Attribute::Fmtp(Fmtp {
            payload_type: pt,
            params: params.to_vec(),
        }));
    }
}

fn push_rtx_lines(out: &mut Vec<Attribute>, rtx: u8, primary: u8, clock_rate: u32) {
    out.push(Attribute::Rtpmap(Rtpmap {
        payload_type: rtx,
        encoding: Cow::Borrowed("rtx"),
        clock_rate,
        channels: None,
    }));
    out.push(Attribute::Fmtp(Fmtp {
        payload_type: rtx,
        params: vec![FmtpParam::Apt(primary)],
    }));
}

/// Answers a remote offer with what `caps` supports (RFC 8829 §5.3).
///
/// Codecs are intersected keeping the offerer's payload types (matched by name, clock rate,
/// channels, and for H.264/VP9/AV1 the profile and packetization mode), RTX is kept when its
/// `apt` codec is kept, header extensions keep the offerer's ids, `setup:actpass` is answered
/// with [`LocalCapabilities::answer_setup`], unsupported sections are rejected with port 0,
/// BUNDLE is kept for accepted sections, offered send simulcast is answered with `recv` and
/// the rids, and data channel sections are answered with our SCTP port and message size.
pub fn create_answer(
    offer: &SessionDescription,
    caps: &LocalCapabilities,
) -> Result<Answer, NegotiationError> {
    create_answer_with_tracks(offer, caps, &[])
}

/// Like [`create_answer`], and also sends local tracks: for each `(mid, track)`, the answer's
/// section with that mid is limited to `track.direction` and, when it sends, carries the
/// track's `a=msid`, `a=ssrc` lines and `a=ssrc-group:FID` (RTX).
pub fn create_answer_with_tracks(
    offer: &SessionDescription,
    caps: &LocalCapabilities,
    tracks: &[(String, TrackSpec)],
) -> Result<Answer, NegotiationError> {
    let mut answer = new_session(caps);
    let offered_mixed = offer.attribute("extmap-allow-mixed").is_some();
    let allow_mixed = offered_mixed && caps.extmap_allow_mixed;
    let mut negotiated = NegotiatedSession {
        media: Vec::new(),
        bundle: Vec::new(),
        local_setup: Setup::Active,
        remote_ice_lite: offer.attribute("ice-lite").is_some(),
        extmap_allow_mixed: allow_mixed,
    };
    let offered_bundle: Vec<String> = offer
        .bundle_groups()
        .next()
        .map(|g| g.to_vec())
        .unwrap_or_default();
    let mut local_setup = None;

    for (index, om) in offer.media.iter().enumerate() {
        let mut view = remote_view(index, offer, om);
        let at = Some((index, om));
        let supported_kind = match om.kind {
            MediaKind::Audio | MediaKind::Video => om.is_rtp(),
            MediaKind::Application => om.is_sctp() && caps.data_channel.is_some(),
            _ => false,
        };
        if view.rejected || !supported_kind {
            view.rejected = true;
            answer.media.push(rejected_section(om));
            negotiated.media.push(view);
            continue;
        }
        let setup = match view.remote_setup {
            Some(Setup::ActPass) | None => match caps.answer_setup {
                Setup::Passive => Setup::Passive,
                _ => Setup::Active,
            },
            Some(Setup::Active) => Setup::Passive,
            Some(Setup::Passive) => Setup::Active,
            Some(Setup::HoldConn) => {
                return Err(error(at, "setup", NegotiationErrorKind::Unsupported));
            }
        };
        if *local_setup.get_or_insert(setup) != setup {
            return Err(error(
                at,
                "setup",
                NegotiationErrorKind::SetupConflict {
                    offered: view.remote_setup,
                    answered: setup,
                },
            ));
        }

        let mut am = MediaDescription::new(om.kind.clone(), 9, &om.protocol);
        am.connections.push(Connection::unspecified_ipv4());
        let mut attrs = Vec::new();
        transport_attributes(caps, setup, &mut attrs);
        if let Some(mid) = om.mid() {
            attrs.push(Attribute::Mid(mid.to_string()));
        }

        if om.kind == MediaKind::Application {
            let dc = caps.data_channel.unwrap_or(DataChannelCapability {
                sctp_port: 5000,
                max_message_size: 65536,
            });
            let (remote_port, remote_max) = remote_sctp(om);
            let legacy = om.has_attribute("sctpmap")
                || !om.formats.iter().any(|f| f == "webrtc-datachannel");
            if legacy {
                am.formats.push(dc.sctp_port.to_string().into());
                let streams = om.attributes.iter().find_map(|a| match a {
                    Attribute::Sctpmap(s) => s.streams,
                    _ => None,
                });
                attrs.push(Attribute::Sctpmap(Sctpmap {
                    port: dc.sctp_port,
                    protocol: "webrtc-datachannel".to_string(),
                    streams: Some(streams.unwrap_or(1024)),
                }));
            } else {
                am.formats.push(Cow::Borrowed("webrtc-datachannel"));
                attrs.push(Attribute::SctpPort(dc.sctp_port));
            }
            attrs.push(Attribute::MaxMessageSize(dc.max_message_size));
            view.sctp = Some(SctpParameters {
                local_port: dc.sctp_port,
                remote_port,
                remote_max_message_size: remote_max,
            });
            view.direction = Direction::SendRecv;
            if caps.end_of_candidates {
                attrs.push(Attribute::EndOfCandidates);
            }
            am.attributes = attrs;
            answer.media.push(am);
            negotiated.media.push(view);
            continue;
        }

        // Codecs, in our preference order, with the offerer's payload types.
        let mut codec_lines = Vec::new();
        for cap in caps.codecs.iter().filter(|c| c.kind == om.kind) {
            for pt in om.payload_types() {
                if view.codecs.iter().any(|c| c.payload_type == pt) || is_rtx(om, pt) {
                    continue;
                }
                let Some(rtpmap) = rtpmap_of(om, pt) else {
                    continue;
                };
                let offer_params = params_of(om, pt);
                if !codec_matches(&rtpmap, &offer_params, cap) {
                    continue;
                }
                let feedback = intersect_feedback(&offered_feedback(om, pt), &cap.feedback);
                let rtx = cap
                    .rtx_payload_type
                    .and_then(|_| rtx_for(om, pt, rtpmap.clock_rate));
                let answer_params = if cap.params.is_empty() || echo_offer_params(&cap.name) {
                    offer_params.clone()
                } else {
                    cap.params.clone()
                };
                am.formats.push(pt.to_string().into());
                push_codec_lines(&mut codec_lines, pt, &rtpmap, &answer_params, &feedback);
                if let Some(rtx) = rtx {
                    push_rtx_lines(&mut codec_lines, rtx, pt, rtpmap.clock_rate);
                }
                view.codecs.push(NegotiatedCodec {
                    payload_type: pt,
                    name: rtpmap.encoding.clone(),
                    clock_rate: rtpmap.clock_rate,
                    channels: rtpmap.channels,
                    params: offer_params,
                    feedback,
                    rtx_payload_type: rtx,
                });
            }
        }
        for c in &view.codecs {
            if let Some(rtx) = c.rtx_payload_type {
                am.formats.push(rtx.to_string().into());
            }
        }
        if view.codecs.is_empty() {
            view.rejected = true;
            answer.media.push(rejected_section(om));
            negotiated.media.push(view);
            continue;
        }

        // Header extensions: offered ones we support, with the offerer's ids.
        for a in &om.attributes {
            if let Attribute::Extmap(e) = a {
                let supported = caps
                    .extensions
                    .iter()
                    .any(|c| c.uri == e.uri && c.applies_to(&om.kind));
                if supported && !view.extensions.iter().any(|x| x.id == e.id) {
                    view.extensions.push(NegotiatedExtension {
                        id: e.id,
                        uri: e.uri.clone(),
                    });
                    attrs.push(Attribute::Extmap(Extmap {
                        id: e.id,
                        direction: None,
                        uri: e.uri.clone(),
                        attributes: None,
                    }));
                }
            }
        }
        if allow_mixed && om.has_attribute("extmap-allow-mixed") {
            attrs.push(Attribute::ExtmapAllowMixed);
        }

        let track = tracks
            .iter()
            .find(|(mid, _)| Some(mid.as_str()) == om.mid())
            .map(|(_, t)| t)
            .filter(|t| t.kind == om.kind);
        let wanted = track.map_or(caps.direction, |t| caps.direction.intersect(t.direction));
        view.direction = wanted.intersect(om.direction().reverse());
        attrs.push(Attribute::Direction(view.direction));
        let sending = track.filter(|_| view.direction.sends());
        if let Some(msid) = sending.and_then(|t| t.msid.as_ref()) {
            attrs.push(Attribute::Msid(msid.clone()));
        }
        if view.rtcp_mux {
            attrs.push(Attribute::RtcpMux);
        }
        if view.rtcp_rsize {
            attrs.push(Attribute::RtcpRsize);
        }
        attrs.append(&mut codec_lines);

        // Simulcast: the offerer sends rids, we receive them.
        let send_rids = rids(om, RidDirection::Send);
        let offered_sc = simulcast(om).filter(|s| !s.send.is_empty());
        if let (Some(sc), true, true) = (
            offered_sc,
            caps.receive_simulcast,
            view.direction.receives(),
        ) {
            let known = |id: &str| send_rids.iter().any(|r| r.id == id);
            let streams: Vec<Vec<SimulcastRid>> = sc
                .send
                .iter()
                .map(|alts| alts.iter().filter(|r| known(&r.id)).cloned().collect())
                .filter(|alts: &Vec<SimulcastRid>| !alts.is_empty())
                .collect();
            for r in &send_rids {
                let listed = streams.iter().flatten().any(|s| s.id == r.id);
                if !listed {
                    continue;
                }
                let payload_types = r
                    .payload_types
                    .iter()
                    .copied()
                    .filter(|pt| view.codecs.iter().any(|c| c.payload_type == *pt))
                    .collect();
                attrs.push(Attribute::Rid(Rid {
                    id: r.id.clone(),
                    direction: RidDirection::Recv,
                    payload_types,
                    restrictions: r.restrictions.clone(),
                }));
                view.receive_rids.push(r.id.clone());
            }
            if !streams.is_empty() {
                attrs.push(Attribute::Simulcast(Simulcast {
                    send: Vec::new(),
                    recv: streams,
                }));
            }
        }
        if let Some(track) = sending {
            push_ssrc_lines(&mut attrs, track);
        }
        if caps.end_of_candidates {
            attrs.push(Attribute::EndOfCandidates);
        }
        am.attributes = attrs;
        answer.media.push(am);
        negotiated.media.push(view);
    }

    // BUNDLE: the offered group, less the rejected sections, in the offer's order.
    let accepted: Vec<String> = offered_bundle
        .iter()
        .filter(|mid| {
            negotiated
                .media
                .iter()
                .any(|m| !m.rejected && m.mid.as_deref() == Some(mid.as_str()))
        })
        .cloned()
        .collect();
    if !accepted.is_empty() {
        answer.attributes.push(Attribute::Group(Group {
            semantics: "BUNDLE".to_string(),
            mids: accepted.clone(),
        }));
    }
    if allow_mixed {
        answer.attributes.push(Attribute::ExtmapAllowMixed);
    }
    negotiated.bundle = accepted;
    negotiated.local_setup = local_setup.unwrap_or(caps.answer_setup);
    Ok(Answer {
        description: answer,
        negotiated,
    })
}

/// One media section of an offer created by [`create_offer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// `Audio` or `Video`.
    pub kind: MediaKind,
    /// The direction offered.
    pub direction: Direction,
    /// `a=msid` stream id and track id, when sending.
    pub msid: Option<Msid>,
    /// Primary SSRC and CNAME, when sending.
    pub ssrc: Option<(u32, String)>,
    /// RTX SSRC (an `a=ssrc-group:FID` is written), when sending.
    pub rtx_ssrc: Option<u32>,
    /// Rids to send as simulcast layers (`a=rid:<id> send` and `a=simulcast:send`).
    pub send_rids: Vec<String>,
}

impl TrackSpec {
    /// A `sendrecv` section of this kind with no SSRCs or simulcast.
    pub fn new(kind: MediaKind) -> Self {
        TrackSpec {
            kind,
            direction: Direction::SendRecv,
            msid: None,
            ssrc: None,
            rtx_ssrc: None,
            send_rids: Vec::new(),
        }
    }
}

/// `a=ssrc-group:FID` (with RTX) and `a=ssrc:<ssrc> cname:<cname>` lines of a sending track.
fn push_ssrc_lines(attrs: &mut Vec<Attribute>, track: &TrackSpec) {
    if let Some((ssrc, cname)) = &track.ssrc {
        if let Some(rtx) = track.rtx_ssrc {
            attrs.push(Attribute::SsrcGroup(SsrcGroup {
                semantics: "FID".to_string(),
                ssrcs: vec![*ssrc, rtx],
            }));
        }
        for s in std::iter::once(*ssrc).chain(track.rtx_ssrc) {
            attrs.push(Attribute::Ssrc(crate::Ssrc {
                ssrc: s,
                attribute: "cname".into(),
                value: Some(cname.clone()),
            }));
        }
    }
}

/// Creates an offer (RFC 8829 §5.2): one BUNDLEd section per track with mids `0`, `1`, ...,
/// our codecs (with RTX) and extensions, `setup:actpass`, and a data channel section last
/// when [`LocalCapabilities::data_channel`] is set.
pub fn create_offer(caps: &LocalCapabilities, tracks: &[TrackSpec]) -> SessionDescription {
    let mut offer = new_session(caps);
    let mut mids = Vec::new();
    for (index, track) in tracks.iter().enumerate() {
        let mid = index.to_string();
        let mut m = MediaDescription::new(track.kind.clone(), 9, "UDP/TLS/RTP/SAVPF");
        m.connections.push(Connection::unspecified_ipv4());
        let mut attrs = Vec::new();
        transport_attributes(caps, Setup::ActPass, &mut attrs);
        attrs.push(Attribute::Mid(mid.clone()));
        for e in caps.extensions.iter().filter(|e| e.applies_to(&track.kind)) {
            attrs.push(Attribute::Extmap(Extmap {
                id: e.id,
                direction: None,
                uri: e.uri.clone().into(),
                attributes: None,
            }));
        }
        if caps.extmap_allow_mixed {
            attrs.push(Attribute::ExtmapAllowMixed);
        }
        attrs.push(Attribute::Direction(track.direction));
        if let Some(msid) = &track.msid {
            attrs.push(Attribute::Msid(msid.clone()));
        }
        attrs.push(Attribute::RtcpMux);
        attrs.push(Attribute::RtcpRsize);
        for c in caps.codecs.iter().filter(|c| c.kind == track.kind) {
            m.formats.push(c.payload_type.to_string().into());
            let rtpmap = Rtpmap {
                payload_type: c.payload_type,
                encoding: c.name.clone().into(),
                clock_rate: c.clock_rate,
                channels: c.channels,
            };
            push_codec_lines(&mut attrs, c.payload_type, &rtpmap, &c.params, &c.feedback);
            if let Some(rtx) = c.rtx_payload_type {
                m.formats.push(rtx.to_string().into());
                push_rtx_lines(&mut attrs, rtx, c.payload_type, c.clock_rate);
            }
        }
        if !track.send_rids.is_empty() {
            for rid in &track.send_rids {
                attrs.push(Attribute::Rid(Rid {
                    id: rid.clone(),
                    direction: RidDirection::Send,
                    payload_types: Vec::new(),
                    restrictions: Vec::new(),
                }));
            }
            attrs.push(Attribute::Simulcast(Simulcast {
                send: track
                    .send_rids
                    .iter()
                    .map(|id| {
                        vec![SimulcastRid {
                            id: id.clone(),
                            paused: false,
                        }]
                    })
                    .collect(),
                recv: Vec::new(),
            }));
        }
        push_ssrc_lines(&mut attrs, track);
        if caps.end_of_candidates {
            attrs.push(Attribute::EndOfCandidates);
        }
        m.attributes = attrs;
        offer.media.push(m);
        mids.push(mid);
    }
    if let Some(dc) = caps.data_channel {
        let mid = tracks.len().to_string();
        let mut m = MediaDescription::new(MediaKind::Application, 9, "UDP/DTLS/SCTP");
        m.formats.push(Cow::Borrowed("webrtc-datachannel"));
        m.connections.push(Connection::unspecified_ipv4());
        let mut attrs = Vec::new();
        transport_attributes(caps, Setup::ActPass, &mut attrs);
        attrs.push(Attribute::Mid(mid.clone()));
        attrs.push(Attribute::SctpPort(dc.sctp_port));
        attrs.push(Attribute::MaxMessageSize(dc.max_message_size));
        if caps.end_of_candidates {
            attrs.push(Attribute::EndOfCandidates);
        }
        m.attributes = attrs;
        offer.media.push(m);
        mids.push(mid);
    }
    if !mids.is_empty() {
        offer.attributes.push(Attribute::Group(Group {
            semantics: "BUNDLE".to_string(),
            mids,
        }));
    }
    if caps.extmap_allow_mixed {
        offer.attributes.push(Attribute::ExtmapAllowMixed);
    }
    offer
}

/// Checks a remote answer against the offer we sent and returns what was negotiated.
///
/// Validates: one m-line per offered m-line with the same kind and mid; accepted sections
/// carry ICE credentials, a fingerprint and a `setup` that fits ours; only offered payload
/// types (mapped to the same codec), extension ids (same URI) and rids; a direction the offer
/// allows; BUNDLE mids that were offered bundled.
pub fn apply_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<NegotiatedSession, NegotiationError> {
    if offer.media.len() != answer.media.len() {
        return Err(error(
            None,
            "m=",
            NegotiationErrorKind::MediaCount {
                offered: offer.media.len(),
                answered: answer.media.len(),
            },
        ));
    }
    let offered_bundle: Vec<&String> = offer.bundle_groups().flatten().collect();
    let mut bundle = Vec::new();
    for group in answer.bundle_groups() {
        for mid in group {
            if !offered_bundle.contains(&mid) {
                return Err(error(
                    None,
                    "group",
                    NegotiationErrorKind::BundleMidNotOffered(mid.clone()),
                ));
            }
            if bundle.is_empty() || !bundle.contains(mid) {
                bundle.push(mid.clone());
            }
        }
    }
    let mut session = NegotiatedSession {
        media: Vec::new(),
        bundle,
        local_setup: Setup::Active,
        remote_ice_lite: answer.attribute("ice-lite").is_some(),
        extmap_allow_mixed: offer.attribute("extmap-allow-mixed").is_some()
            && answer.attribute("extmap-allow-mixed").is_some(),
    };
    let mut local_setup = None;
    for (index, (om, am)) in offer.media.iter().zip(&answer.media).enumerate() {
        let at = Some((index, am));
        if om.kind != am.kind {
            return Err(error(at, "m=", NegotiationErrorKind::KindChanged));
        }
        if om.mid().is_some() && om.mid() != am.mid() {
            return Err(error(at, "mid", NegotiationErrorKind::MidChanged));
        }
        let mut view = remote_view(index, answer, am);
        if am.port == 0 {
            view.rejected = true;
            session.media.push(view);
            continue;
        }
        view.rejected = false;
        if view.remote_ice.is_none() {
            let missing = if has_anywhere(answer, am, "ice-ufrag") {
                "ice-pwd"
            } else {
                "ice-ufrag"
            };
            return Err(error(at, missing, NegotiationErrorKind::Missing));
        }
        if view.remote_fingerprint.is_none() {
            return Err(error(at, "fingerprint", NegotiationErrorKind::Missing));
        }
        let offered_setup = remote_setup(offer, om);
        let Some(answered_setup) = view.remote_setup else {
            return Err(error(at, "setup", NegotiationErrorKind::Missing));
        };
        let ours = match (offered_setup, answered_setup) {
            (Some(Setup::ActPass) | None, Setup::Active) => Setup::Passive,
            (Some(Setup::ActPass) | None, Setup::Passive) => Setup::Active,
            (Some(Setup::Active), Setup::Passive) => Setup::Active,
            (Some(Setup::Passive), Setup::Active) => Setup::Passive,
            (offered, answered) => {
                return Err(error(
                    at,
                    "setup",
                    NegotiationErrorKind::SetupConflict { offered, answered },
                ));
            }
        };
        if *local_setup.get_or_insert(ours) != ours {
            return Err(error(
                at,
                "setup",
                NegotiationErrorKind::SetupConflict {
                    offered: offered_setup,
                    answered: answered_setup,
                },
            ));
        }

        if am.kind == MediaKind::Application {
            let (remote_port, remote_max) = remote_sctp(am);
            let (local_port, _) = remote_sctp(om);
            view.sctp = Some(SctpParameters {
                local_port,
                remote_port,
                remote_max_message_size: remote_max,
            });
            view.direction = Direction::SendRecv;
            session.media.push(view);
            continue;
        }

        // Direction: the answer may only do what the offer allows, reversed.
        let offered_dir = om.direction();
        let answered_dir = am.direction();
        if answered_dir.intersect(offered_dir.reverse()) != answered_dir {
            return Err(error(
                at,
                "direction",
                NegotiationErrorKind::DirectionNotAllowed {
                    offered: offered_dir,
                    answered: answered_dir,
                },
            ));
        }
        view.direction = answered_dir.reverse();

        // Codecs.
        let offered_pts: Vec<u8> = om.payload_types().collect();
        for pt in am.payload_types() {
            if !offered_pts.contains(&pt) {
                return Err(error(
                    at,
                    "m=",
                    NegotiationErrorKind::PayloadTypeNotOffered(pt),
                ));
            }
            let (Some(ours), answered) = (rtpmap_of(om, pt), rtpmap_of(am, pt)) else {
                continue;
            };
            if let Some(theirs) = &answered {
                if !theirs.encoding.eq_ignore_ascii_case(&ours.encoding)
                    || theirs.clock_rate != ours.clock_rate
                {
                    return Err(error(at, "rtpmap", NegotiationErrorKind::CodecChanged(pt)));
                }
            }
            if is_rtx(om, pt) {
                continue;
            }
            let rtx = rtx_for(am, pt, ours.clock_rate).filter(|r| {
                offered_pts.contains(r) && rtx_for(om, pt, ours.clock_rate) == Some(*r)
            });
            let params = match am.fmtp(pt) {
                Some(f) => f.params.clone(),
                None => params_of(om, pt),
            };
            view.codecs.push(NegotiatedCodec {
                payload_type: pt,
                name: ours.encoding.clone(),
                clock_rate: ours.clock_rate,
                channels: ours.channels,
                params,
                feedback: intersect_feedback(&offered_feedback(om, pt), &offered_feedback(am, pt)),
                rtx_payload_type: rtx,
            });
        }
        if view.codecs.is_empty() {
            return Err(error(at, "m=", NegotiationErrorKind::NoCodec));
        }

        // Extensions.
        for a in &am.attributes {
            if let Attribute::Extmap(e) = a {
                let offered = om.attributes.iter().find_map(|a| match a {
                    Attribute::Extmap(o) if o.id == e.id => Some(o),
                    _ => None,
                });
                match offered {
                    None => {
                        return Err(error(
                            at,
                            "extmap",
                            NegotiationErrorKind::ExtensionNotOffered(e.id),
                        ));
                    }
                    Some(o) if o.uri != e.uri => {
                        return Err(error(
                            at,
                            "extmap",
                            NegotiationErrorKind::ExtensionChanged(e.id),
                        ));
                    }
                    Some(_) => view.extensions.push(NegotiatedExtension {
                        id: e.id,
                        uri: e.uri.clone(),
                    }),
                }
            }
        }

        // Rids: what the answerer receives is what we send, and the reverse.
        let our_send: Vec<&Rid> = rids(om, RidDirection::Send);
        let our_recv: Vec<&Rid> = rids(om, RidDirection::Recv);
        for r in rids(am, RidDirection::Recv) {
            if !our_send.iter().any(|o| o.id == r.id) {
                return Err(error(
                    at,
                    "rid",
                    NegotiationErrorKind::RidNotOffered(r.id.clone()),
                ));
            }
            view.send_rids.push(r.id.clone());
        }
        for r in rids(am, RidDirection::Send) {
            if !our_recv.iter().any(|o| o.id == r.id) {
                return Err(error(
                    at,
                    "rid",
                    NegotiationErrorKind::RidNotOffered(r.id.clone()),
                ));
            }
            view.receive_rids.push(r.id.clone());
        }
        session.media.push(view);
    }
    session.local_setup = local_setup.unwrap_or(Setup::Active);
    Ok(session)
}

/// The entry point of the `sdp_negotiate` fuzz target: parse the bytes as a remote offer,
/// answer it with default capabilities, and apply the answer back to the offer. Errors are
/// fine; panics are bugs. Also checks that an answer we produce parses back to itself.
#[doc(hidden)]
pub fn fuzz_negotiate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = crate::parse(text) else {
        return;
    };
    let caps = LocalCapabilities::webrtc_default(
        IceCredentials::new("fuzzufrag", "fuzzpasswordfuzzpassword"),
        Fingerprint {
            hash_function: "sha-256".into(),
            bytes: vec![0x11; 32],
        },
    );
    if let Ok(answer) = create_answer(&offer, &caps) {
        let reparsed = crate::parse(&answer.description.to_string());
        assert_eq!(
            reparsed.as_ref(),
            Ok(&answer.description),
            "our answer does not round-trip"
        );
        let _ = apply_answer(&offer, &answer.description);
    }
}

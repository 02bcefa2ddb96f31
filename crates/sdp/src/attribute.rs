//! Typed `a=` attributes for WebRTC, and the verbatim fallback for everything else.

use std::borrow::Cow;
use std::fmt::{self, Display, Formatter};

/// One `a=` line.
///
/// Attributes WebRTC relies on are typed; any other attribute is kept verbatim as
/// [`Attribute::Unknown`] so that serialising gives back what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=group:<semantics> <mid>...` (RFC 5888, BUNDLE: RFC 9143).
    Group(Group),
    /// `a=bundle-only` (RFC 9143).
    BundleOnly,
    /// `a=mid:<id>` (RFC 5888).
    Mid(String),
    /// `a=msid:<stream id> [<track id>]` (RFC 8830).
    Msid(Msid),
    /// `a=msid-semantic: WMS <ids>` (legacy, still sent by browsers).
    MsidSemantic(MsidSemantic),
    /// `a=ice-ufrag:<ufrag>` (RFC 8839).
    IceUfrag(String),
    /// `a=ice-pwd:<password>` (RFC 8839).
    IcePwd(String),
    /// `a=ice-options:<option>...` (RFC 8839).
    IceOptions(Vec<String>),
    /// `a=ice-lite` (RFC 8839).
    IceLite,
    /// `a=ice-mismatch` (RFC 8839).
    IceMismatch,
    /// `a=candidate:...` (RFC 8839, TCP: RFC 6544).
    Candidate(Box<Candidate>),
    /// `a=end-of-candidates` (RFC 8840).
    EndOfCandidates,
    /// `a=fingerprint:<hash> <hex bytes>` (RFC 8122).
    Fingerprint(Fingerprint),
    /// `a=setup:<role>` (RFC 4145, RFC 8842).
    Setup(Setup),
    /// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
    Rtcp(Rtcp),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// `a=rtcp-mux-only` (RFC 8858).
    RtcpMuxOnly,
    /// `a=rtcp-rsize` (RFC 5506).
    RtcpRsize,
    /// `a=rtpmap:<pt> <name>/<clock>[/<channels>]` (RFC 8866).
    Rtpmap(Rtpmap),
    /// `a=fmtp:<pt> <params>` (RFC 8866).
    Fmtp(Fmtp),
    /// `a=rtcp-fb:<pt|*> <type> [<param>]` (RFC 4585).
    RtcpFb(RtcpFb),
    /// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285).
    Extmap(Extmap),
    /// `a=extmap-allow-mixed` (RFC 8285).
    ExtmapAllowMixed,
    /// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576).
    Ssrc(Ssrc),
    /// `a=ssrc-group:<semantics> <ssrc>...` (RFC 5576).
    SsrcGroup(SsrcGroup),
    /// `a=rid:<id> <send|recv> [<restrictions>]` (RFC 8851).
    Rid(Rid),
    /// `a=simulcast:...` (RFC 8853).
    Simulcast(Simulcast),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive`.
    Direction(Direction),
    /// `a=sctp-port:<port>` (RFC 8841).
    SctpPort(u16),
    /// `a=max-message-size:<bytes>` (RFC 8841).
    MaxMessageSize(u64),
    /// `a=sctpmap:<port> <protocol> [<streams>]` (legacy draft-05 data channels).
    Sctpmap(Sctpmap),
    /// `a=imageattr:<pt|*> <send|recv> ...` (RFC 6236); the part after the format is kept verbatim.
    ImageAttr(ImageAttr),
    /// Any other attribute, verbatim. `value` is `None` for a flag (`a=foo`) and `Some` for
    /// `a=foo:<value>` (possibly empty).
    Unknown {
        /// The attribute name.
        name: String,
        /// The value after the first `:`.
        value: Option<String>,
    },
}

/// Returns a borrowed `'static` string when `s` is one of the common values in `table`, so
/// that parsing the usual WebRTC offer does not allocate for them; otherwise an owned copy.
pub(crate) fn intern(s: &str, table: &'static [&'static str]) -> Cow<'static, str> {
    let first = s.as_bytes().first();
    match table
        .iter()
        .find(|t| t.len() == s.len() && t.as_bytes().first() == first && **t == s)
    {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(s.to_string()),
    }
}

const TRANSPORTS: &[&str] = &["udp", "UDP", "tcp", "TCP"];
const CANDIDATE_EXTENSIONS: &[&str] = &["generation", "network-id", "network-cost", "ufrag"];
const HASHES: &[&str] = &["sha-256", "sha-1", "sha-384", "sha-512", "SHA-256"];
const ENCODINGS: &[&str] = &[
    "opus",
    "rtx",
    "VP8",
    "VP9",
    "H264",
    "AV1",
    "red",
    "ulpfec",
    "telephone-event",
    "PCMU",
    "PCMA",
    "G722",
    "CN",
    "H265",
    "flexfec-03",
    "ISAC",
    "iLBC",
];
const FEEDBACK_TYPES: &[&str] = &["nack", "ccm", "goog-remb", "transport-cc", "trr-int", "ack"];
const FEEDBACK_PARAMS: &[&str] = &["pli", "fir", "sli", "rpsi", "tmmbr"];
const SSRC_ATTRIBUTES: &[&str] = &["cname", "msid", "mslabel", "label"];
const EXTENSION_URIS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:toffset",
    "urn:3gpp:video-orientation",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
    "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
    "urn:ietf:params:rtp-hdrext:csrc-audio-level",
];

/// Where an attribute may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Before the first `m=` line.
    Session,
    /// Inside a media section.
    Media,
}

impl Display for Level {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Session => "session level",
            Level::Media => "media level",
        })
    }
}

/// Attributes that their RFCs define as session-level only.
const SESSION_ONLY: &[&str] = &["ice-lite", "group", "msid-semantic"];

/// Attributes that their RFCs define as media-level only.
const MEDIA_ONLY: &[&str] = &[
    "mid",
    "msid",
    "bundle-only",
    "candidate",
    "remote-candidates",
    "ice-mismatch",
    "rtcp",
    "rtcp-mux",
    "rtcp-mux-only",
    "rtcp-rsize",
    "rtpmap",
    "fmtp",
    "rtcp-fb",
    "ptime",
    "maxptime",
    "ssrc",
    "ssrc-group",
    "rid",
    "simulcast",
    "sctp-port",
    "max-message-size",
    "sctpmap",
    "label",
    "imageattr",
    "framerate",
];

/// Whether an attribute named `name` may appear at `level` (per the attribute's RFC).
pub fn allowed_at(name: &str, level: Level) -> bool {
    match level {
        Level::Session => !MEDIA_ONLY.contains(&name),
        Level::Media => !SESSION_ONLY.contains(&name),
    }
}

/// Whether a parsed attribute may appear at `level`: the same answer as [`allowed_at`] on
/// its name, without comparing names for the typed attributes.
pub(crate) fn attribute_allowed_at(attr: &Attribute, level: Level) -> bool {
    match attr {
        Attribute::Unknown { name, .. } => allowed_at(name, level),
        Attribute::IceLite | Attribute::Group(_) | Attribute::MsidSemantic(_) => {
            level == Level::Session
        }
        Attribute::Mid(_)
        | Attribute::Msid(_)
        | Attribute::BundleOnly
        | Attribute::Candidate(_)
        | Attribute::IceMismatch
        | Attribute::Rtcp(_)
        | Attribute::RtcpMux
        | Attribute::RtcpMuxOnly
        | Attribute::RtcpRsize
        | Attribute::Rtpmap(_)
        | Attribute::Fmtp(_)
        | Attribute::RtcpFb(_)
        | Attribute::Ssrc(_)
        | Attribute::SsrcGroup(_)
        | Attribute::Rid(_)
        | Attribute::Simulcast(_)
        | Attribute::SctpPort(_)
        | Attribute::MaxMessageSize(_)
        | Attribute::Sctpmap(_)
        | Attribute::ImageAttr(_) => level == Level::Media,
        Attribute::IceUfrag(_)
        | Attribute::IcePwd(_)
        | Attribute::IceOptions(_)
        | Attribute::EndOfCandidates
        | Attribute::Fingerprint(_)
        | Attribute::Setup(_)
        | Attribute::Extmap(_)
        | Attribute::ExtmapAllowMixed
        | Attribute::Direction(_) => true,
    }
}

/// `a=group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `BUNDLE`, `LS`, `FID`, ...
    pub semantics: String,
    /// The identification tags (mids) in the group.
    pub mids: Vec<String>,
}

/// `a=msid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msid {
    /// The MediaStream id (`-` for none).
    pub stream_id: String,
    /// The track id ("appdata").
    pub track_id: Option<String>,
}

/// `a=msid-semantic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsidSemantic {
    /// Usually `WMS`.
    pub semantic: String,
    /// Stream ids (or `*`).
    pub ids: Vec<String>,
}

/// ICE candidate type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateType {
    /// `host`
    Host,
    /// `srflx`
    ServerReflexive,
    /// `prflx`
    PeerReflexive,
    /// `relay`
    Relay,
    /// Another token, kept verbatim.
    Other(String),
}

impl CandidateType {
    fn parse(s: &str) -> Self {
        match s {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::ServerReflexive,
            "prflx" => CandidateType::PeerReflexive,
            "relay" => CandidateType::Relay,
            other => CandidateType::Other(other.to_string()),
        }
    }

    /// The token as written after `typ`.
    pub fn as_str(&self) -> &str {
        match self {
            CandidateType::Host => "host",
            CandidateType::ServerReflexive => "srflx",
            CandidateType::PeerReflexive => "prflx",
            CandidateType::Relay => "relay",
            CandidateType::Other(s) => s,
        }
    }
}

/// TCP candidate type (RFC 6544 `tcptype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpType {
    /// `active`: opens outgoing connections.
    Active,
    /// `passive`: accepts incoming connections.
    Passive,
    /// `so`: simultaneous open.
    SimultaneousOpen,
}

impl TcpType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(TcpType::Active),
            "passive" => Some(TcpType::Passive),
            "so" => Some(TcpType::SimultaneousOpen),
            _ => None,
        }
    }

    /// The token as written after `tcptype`.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpType::Active => "active",
            TcpType::Passive => "passive",
            TcpType::SimultaneousOpen => "so",
        }
    }
}

/// `a=candidate` (RFC 8839 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation (1-32 ice-chars).
    pub foundation: String,
    /// Component id: 1 for RTP, 2 for RTCP.
    pub component: u16,
    /// Transport as written (`UDP`, `udp`, `tcp`, ...); compare case-insensitively.
    pub transport: Cow<'static, str>,
    /// Priority.
    pub priority: u32,
    /// Connection address: an IP address, an FQDN or an mDNS `.local` name.
    pub address: String,
    /// Port (0 for TCP active candidates).
    pub port: u16,
    /// Candidate type.
    pub typ: CandidateType,
    /// `raddr`.
    pub related_address: Option<String>,
    /// `rport`.
    pub related_port: Option<u16>,
    /// `tcptype` (TCP candidates).
    pub tcp_type: Option<TcpType>,
    /// Other extension name/value pairs, in order (`generation 0`, `network-id 1`, `ufrag x`, ...).
    pub extensions: Vec<(Cow<'static, str>, String)>,
}

impl Candidate {
    /// Whether the transport is UDP.
    pub fn is_udp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("udp")
    }

    /// Whether the transport is TCP.
    pub fn is_tcp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("tcp")
    }

    /// The address as an IP address, when it is one (not an FQDN or mDNS name).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.address.parse().ok()
    }

    /// Parses the value of an `a=candidate:` line (everything after the colon).
    pub fn parse(value: &str) -> Result<Candidate, &'static str> {
        let mut it = words(value);
        let foundation = it
            .next()
            .filter(|f| is_ice_chars(f, 32))
            .ok_or("foundation")?;
        let component = it
            .next()
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (1..=256).contains(c))
            .ok_or("component-id (1-256)")?;
        let transport = it.next().filter(|t| is_token(t)).ok_or("transport")?;
        let priority = it.next().and_then(parse_u32).ok_or("priority")?;
        let address = it
            .next()
            .filter(|a| !a.is_empty())
            .ok_or("connection-address")?;
        let port = it.next().and_then(parse_u16).ok_or("port")?;
        if it.next() != Some("typ") {
            return Err("\"typ\"");
        }
        let typ = it.next().filter(|t| is_token(t)).ok_or("candidate type")?;
        let mut candidate = Candidate {
            foundation: foundation.to_string(),
            component,
            transport: intern(transport, TRANSPORTS),
            priority,
            address: address.to_string(),
            port,
            typ: CandidateType::parse(typ),
            related_address: None,
            related_port: None,
            tcp_type: None,
            extensions: Vec::new(),
        };
        while let Some(name) = it.next() {
            let value = it.next().ok_or("extension value")?;
            match name {
                "raddr" if candidate.related_address.is_none() => {
                    candidate.related_address = Some(value.to_string())
                }
                "rport" if candidate.related_port.is_none() => {
                    candidate.related_port = Some(parse_u16(value).ok_or("rport port")?)
                }
                "tcptype" if candidate.tcp_type.is_none() => {
                    candidate.tcp_type =
                        Some(TcpType::parse(value).ok_or("tcptype active|passive|so")?)
                }
                _ => {
                    if !is_token(name) {
                        return Err("extension name");
                    }
                    candidate
                        .extensions
                        .push((intern(name, CANDIDATE_EXTENSIONS), value.to_string()))
                }
            }
        }
        Ok(candidate)
    }
}

impl Display for Candidate {
    /// The value of the attribute, without `a=candidate:` (usable in trickle ICE messages).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(96);
        crate::write::push_candidate(&mut out, self);
        f.write_str(&out)
    }
}

/// `a=fingerprint` (RFC 8122).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function name as written (`sha-256`, ...); compare case-insensitively.
    pub hash_function: Cow<'static, str>,
    /// The digest bytes.
    pub bytes: Vec<u8>,
}

impl Fingerprint {
    /// Expected digest length for a known hash function.
    pub fn digest_len(hash_function: &str) -> Option<usize> {
        const KNOWN: [(&str, usize); 7] = [
            ("sha-256", 32),
            ("sha-1", 20),
            ("sha-224", 28),
            ("sha-384", 48),
            ("sha-512", 64),
            ("md5", 16),
            ("md2", 16),
        ];
        KNOWN
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(hash_function))
            .map(|&(_, len)| len)
    }
}

/// `a=setup` role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `active`: will initiate the DTLS handshake (DTLS client).
    Active,
    /// `passive`: will accept it (DTLS server).
    Passive,
    /// `actpass`: either (offers only).
    ActPass,
    /// `holdconn`: not now.
    HoldConn,
}

impl Setup {
    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// `a=rtcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// RTCP port.
    pub port: u16,
    /// Optional `<nettype> <addrtype> <address>`.
    pub address: Option<crate::Connection>,
}

/// `a=rtpmap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name as written (`opus`, `VP8`, `H264`, `rtx`, ...); compare case-insensitively.
    pub encoding: Cow<'static, str>,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (audio channels).
    pub channels: Option<u16>,
}

/// `a=fmtp`: format parameters of one payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// RTP payload type.
    pub payload_type: u8,
    /// The `;`-separated parameters, in order.
    pub params: Vec<FmtpParam>,
}

impl Fmtp {
    /// The `apt` (RTX associated payload type), if present.
    pub fn apt(&self) -> Option<u8> {
        self.params.iter().find_map(|p| match p {
            FmtpParam::Apt(a) => Some(*a),
            _ => None,
        })
    }

    /// Finds a parameter by its key.
    pub fn get(&self, key: &str) -> Option<&FmtpParam> {
        self.params.iter().find(|p| p.key() == Some(key))
    }
}

/// H.264 `profile-level-id`: three bytes (RFC 6184 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLevelId {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// `profile-iop`: the constraint_set flags.
    pub profile_iop: u8,
    /// `level_idc`.
    pub level_idc: u8,
}

/// H.264 profiles that matter for negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Profile {
    /// Constrained Baseline (what browsers use most).
    ConstrainedBaseline,
    /// Baseline.
    Baseline,
    /// Main.
    Main,
    /// Extended.
    Extended,
    /// Constrained High.
    ConstrainedHigh,
    /// High.
    High,
    /// Any other `profile_idc`.
    Other(u8),
}

impl ProfileLevelId {
    /// The default when `profile-level-id` is absent: Baseline level 1.0 (`420010`).
    pub const DEFAULT: ProfileLevelId = ProfileLevelId {
        profile_idc: 0x42,
        profile_iop: 0x00,
        level_idc: 0x10,
    };

    /// The profile these bytes describe.
    pub fn profile(&self) -> H264Profile {
        let iop = self.profile_iop;
        match self.profile_idc {
            0x42 if iop & 0x40 != 0 => H264Profile::ConstrainedBaseline,
            0x42 => H264Profile::Baseline,
            0x4D if iop & 0x80 != 0 => H264Profile::ConstrainedBaseline,
            0x4D => H264Profile::Main,
            0x58 if iop & 0xC0 == 0xC0 => H264Profile::ConstrainedBaseline,
            0x58 => H264Profile::Extended,
            0x64 if iop & 0x0C == 0x0C => H264Profile::ConstrainedHigh,
            0x64 => H264Profile::High,
            other => H264Profile::Other(other),
        }
    }

    fn parse(s: &str) -> Option<Self> {
        if s.len() != 6 || !s.is_ascii() {
            return None;
        }
        let byte = |i: usize| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
        Some(ProfileLevelId {
            profile_idc: byte(0)?,
            profile_iop: byte(2)?,
            level_idc: byte(4)?,
        })
    }
}

impl Display for ProfileLevelId {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.profile_iop, self.level_idc
        )
    }
}

/// One format parameter. Well-known keys are typed; a value that does not fit the type, and
/// every other key, is kept verbatim in [`FmtpParam::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FmtpParam {
    /// Opus `minptime` (ms).
    MinPtime(u32),
    /// Opus `useinbandfec` (0/1).
    UseInbandFec(bool),
    /// Opus `usedtx` (0/1).
    UseDtx(bool),
    /// Opus `stereo` (0/1).
    Stereo(bool),
    /// Opus `sprop-stereo` (0/1).
    SpropStereo(bool),
    /// Opus `cbr` (0/1).
    Cbr(bool),
    /// Opus `maxplaybackrate` (Hz).
    MaxPlaybackRate(u32),
    /// Opus `maxaveragebitrate` (bit/s).
    MaxAverageBitrate(u32),
    /// VP8/VP9 `profile-id`.
    ProfileId(u8),
    /// H.264 `profile-level-id`.
    ProfileLevelId(ProfileLevelId),
    /// H.264 `packetization-mode` (0, 1 or 2).
    PacketizationMode(u8),
    /// H.264 `level-asymmetry-allowed` (0/1).
    LevelAsymmetryAllowed(bool),
    /// VP8/VP9 `max-fs` (macroblocks).
    MaxFs(u32),
    /// VP8/VP9 `max-fr` (frames per second).
    MaxFr(u32),
    /// RTX `apt`: the associated (primary) payload type.
    Apt(u8),
    /// RTX `rtx-time` (ms).
    RtxTime(u32),
    /// Any other `key=value`, verbatim.
    Other {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A parameter that is not `key=value` (e.g. `0-15` for telephone-event, `111/111` for RED).
    Value(String),
}

impl FmtpParam {
    /// Builds the parameter for `key=value`, typed when the key is known and the value fits.
    pub fn from_pair(key: &str, value: &str) -> FmtpParam {
        fn flag(v: &str) -> Option<bool> {
            match v {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            }
        }
        let typed = match key {
            "minptime" => parse_u32(value).map(FmtpParam::MinPtime),
            "useinbandfec" => flag(value).map(FmtpParam::UseInbandFec),
            "usedtx" => flag(value).map(FmtpParam::UseDtx),
            "stereo" => flag(value).map(FmtpParam::Stereo),
            "sprop-stereo" => flag(value).map(FmtpParam::SpropStereo),
            "cbr" => flag(value).map(FmtpParam::Cbr),
            "maxplaybackrate" => parse_u32(value).map(FmtpParam::MaxPlaybackRate),
            "maxaveragebitrate" => parse_u32(value).map(FmtpParam::MaxAverageBitrate),
            "profile-id" => parse_u8(value).map(FmtpParam::ProfileId),
            "profile-level-id" => ProfileLevelId::parse(value).map(FmtpParam::ProfileLevelId),
            "packetization-mode" => parse_u8(value)
                .filter(|m| *m <= 2)
                .map(FmtpParam::PacketizationMode),
            "level-asymmetry-allowed" => flag(value).map(FmtpParam::LevelAsymmetryAllowed),
            "max-fs" => parse_u32(value).map(FmtpParam::MaxFs),
            "max-fr" => parse_u32(value).map(FmtpParam::MaxFr),
            "apt" => parse_u8(value).filter(|p| *p < 128).map(FmtpParam::Apt),
            "rtx-time" => parse_u32(value).map(FmtpParam::RtxTime),
            _ => None,
        };
        typed.unwrap_or_else(|| FmtpParam::Other {
            key: key.to_string(),
            value: value.to_string(),
        })
    }

    /// The key of a `key=value` parameter.
    pub fn key(&self) -> Option<&str> {
        Some(match self {
            FmtpParam::MinPtime(_) => "minptime",
            FmtpParam::UseInbandFec(_) => "useinbandfec",
            FmtpParam::UseDtx(_) => "usedtx",
            FmtpParam::Stereo(_) => "stereo",
            FmtpParam::SpropStereo(_) => "sprop-stereo",
            FmtpParam::Cbr(_) => "cbr",
            FmtpParam::MaxPlaybackRate(_) => "maxplaybackrate",
            FmtpParam::MaxAverageBitrate(_) => "maxaveragebitrate",
            FmtpParam::ProfileId(_) => "profile-id",
            FmtpParam::ProfileLevelId(_) => "profile-level-id",
            FmtpParam::PacketizationMode(_) => "packetization-mode",
            FmtpParam::LevelAsymmetryAllowed(_) => "level-asymmetry-allowed",
            FmtpParam::MaxFs(_) => "max-fs",
            FmtpParam::MaxFr(_) => "max-fr",
            FmtpParam::Apt(_) => "apt",
            FmtpParam::RtxTime(_) => "rtx-time",
            FmtpParam::Other { key, .. } => key,
            FmtpParam::Value(_) => return None,
        })
    }
}

impl Display for FmtpParam {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(32);
        crate::write::push_fmtp_param(&mut out, self);
        f.write_str(&out)
    }
}

/// `a=rtcp-fb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// The payload type, `None` for `*` (all formats).
    pub payload_type: Option<u8>,
    /// The feedback type: `nack`, `ccm`, `goog-remb`, `transport-cc`, `trr-int`, `ack`, ...
    pub fb_type: Cow<'static, str>,
    /// The rest (`pli`, `fir`, `app foo`, ...), verbatim.
    pub param: Option<Cow<'static, str>>,
}

/// `a=extmap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extmap {
    /// Extension id (1-255).
    pub id: u8,
    /// Optional direction.
    pub direction: Option<Direction>,
    /// The extension URI.
    pub uri: Cow<'static, str>,
    /// Extension attributes after the URI, verbatim.
    pub attributes: Option<String>,
}

/// `a=ssrc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssrc {
    /// The SSRC.
    pub ssrc: u32,
    /// The source attribute name (`cname`, `msid`, ...).
    pub attribute: Cow<'static, str>,
    /// Its value.
    pub value: Option<String>,
}

/// `a=ssrc-group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    /// `FID` (RTX), `SIM` (simulcast), `FEC`, `FEC-FR`, ...
    pub semantics: String,
    /// The SSRCs in order (for FID: primary then retransmission).
    pub ssrcs: Vec<u32>,
}

/// Direction of an `a=rid` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RidDirection {
    /// `send`
    Send,
    /// `recv`
    Recv,
}

impl RidDirection {
    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            RidDirection::Send => "send",
            RidDirection::Recv => "recv",
        }
    }

    /// The other direction (what the answerer writes).
    pub fn reverse(self) -> Self {
        match self {
            RidDirection::Send => RidDirection::Recv,
            RidDirection::Recv => RidDirection::Send,
        }
    }
}

/// `a=rid` (RFC 8851).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rid {
    /// The rid id.
    pub id: String,
    /// `send` or `recv`.
    pub direction: RidDirection,
    /// `pt=` list (empty when absent).
    pub payload_types: Vec<u8>,
    /// Other restrictions (`max-width=1280`, `depend=a`), in order.
    pub restrictions: Vec<(String, Option<String>)>,
}

/// One rid in an `a=simulcast` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulcastRid {
    /// The rid id.
    pub id: String,
    /// Written with a `~` prefix: the stream is paused.
    pub paused: bool,
}

/// `a=simulcast` (RFC 8853): each direction is a list of streams, each stream a list of
/// alternative rids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulcast {
    /// `send` streams (empty when absent).
    pub send: Vec<Vec<SimulcastRid>>,
    /// `recv` streams (empty when absent).
    pub recv: Vec<Vec<SimulcastRid>>,
}

/// Media direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `sendrecv`
    SendRecv,
    /// `sendonly`
    SendOnly,
    /// `recvonly`
    RecvOnly,
    /// `inactive`
    Inactive,
}

impl Direction {
    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// Builds a direction from whether one sends and whether one receives.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether this side sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction seen from the other side (`sendonly` ↔ `recvonly`).
    pub fn reverse(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// What both allow.
    pub fn intersect(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

/// `a=sctpmap` (legacy data channel syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sctpmap {
    /// SCTP port.
    pub port: u16,
    /// Protocol, `webrtc-datachannel`.
    pub protocol: String,
    /// Number of streams.
    pub streams: Option<u32>,
}

/// `a=imageattr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAttr {
    /// Payload type, `None` for `*`.
    pub payload_type: Option<u8>,
    /// `send ...`/`recv ...` sets, verbatim.
    pub value: String,
}

/// Why an attribute value was rejected: the attribute name and what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttrError {
    pub(crate) attribute: &'static str,
    pub(crate) expected: &'static str,
}

fn err<T>(attribute: &'static str, expected: &'static str) -> Result<T, AttrError> {
    Err(AttrError {
        attribute,
        expected,
    })
}

/// Parses 1 to `max_len` ASCII digits (no sign) into a `u64`; `max_len` is at most 19, so
/// the value cannot overflow.
#[inline]
fn parse_digits(s: &str, max_len: usize) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > max_len {
        return None;
    }
    let mut n = 0u64;
    for &b in bytes {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

pub(crate) fn parse_u8(s: &str) -> Option<u8> {
    parse_digits(s, 3).and_then(|n| u8::try_from(n).ok())
}

pub(crate) fn parse_u16(s: &str) -> Option<u16> {
    parse_digits(s, 5).and_then(|n| u16::try_from(n).ok())
}

pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    parse_digits(s, 10).and_then(|n| u32::try_from(n).ok())
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.len() <= 19 {
        return parse_digits(s, 19);
    }
    if bytes.len() > 20 {
        return None;
    }
    // 20 digits: may overflow.
    let high = parse_digits(&s[..19], 19)?;
    let d = bytes[19].wrapping_sub(b'0');
    if d > 9 {
        return None;
    }
    high.checked_mul(10)?.checked_add(u64::from(d))
}

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'{'
                    | b'|'
                    | b'}'
                    | b'~'
            );
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();

/// RFC 8866 `token` characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| TOKEN[b as usize])
}

/// Splits at the first occurrence of an ASCII byte (faster than `str::split_once` on short
/// strings).
pub(crate) fn split_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == byte)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Iterates over the words of `s` separated by one or more spaces or tabs.
pub(crate) fn words(s: &str) -> Words<'_> {
    Words { rest: s }
}

/// Iterator returned by [`words`].
pub(crate) struct Words<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.rest.as_bytes();
        let start = bytes.iter().position(|&b| b != b' ' && b != b'\t')?;
        let len = bytes[start..]
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .unwrap_or(bytes.len() - start);
        let word = &self.rest[start..start + len];
        self.rest = &self.rest[start + len..];
        Some(word)
    }
}

/// RFC 8839 `ice-char` strings of 1..=max characters.
fn is_ice_chars(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// ICE credentials. RFC 8839 restricts them to ice-chars; deployed stacks (and Chrome's own
/// unit tests) use `_` and other visible characters, so any visible ASCII is accepted.
fn is_credential(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_rid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn format_ref(s: &str) -> Option<Option<u8>> {
    if s == "*" {
        Some(None)
    } else {
        parse_u8(s).filter(|p| *p < 128).map(Some)
    }
}

fn split_once_space(s: &str) -> (&str, Option<&str>) {
    let bytes = s.as_bytes();
    match bytes.iter().position(|&b| b == b' ') {
        Some(i) => {
            let mut j = i + 1;
            while bytes.get(j) == Some(&b' ') {
                j += 1;
            }
            (&s[..i], Some(&s[j..]))
        }
        None => (s, None),
    }
}

/// `str::trim_end`, without the Unicode work when the text ends in a visible ASCII character.
#[inline]
pub(crate) fn trim_end(s: &str) -> &str {
    match s.as_bytes().last() {
        Some(b'!'..=b'~') | None => s,
        _ => s.trim_end(),
    }
}

/// `str::trim`, without the Unicode work when both ends are visible ASCII characters.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(b'!'..=b'~'), Some(b'!'..=b'~')) | (None, _) => s,
        _ => s.trim(),
    }
}

/// `str::split` on one ASCII byte, without the generic pattern machinery.
pub(crate) fn split_on(s: &str, byte: u8) -> SplitOn<'_> {
    SplitOn {
        rest: Some(s),
        byte,
    }
}

/// Iterator returned by [`split_on`].
pub(crate) struct SplitOn<'a> {
    rest: Option<&'a str>,
    byte: u8,
}

impl<'a> Iterator for SplitOn<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.as_bytes().iter().position(|&b| b == self.byte) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

fn no_value(
    name: &'static str,
    value: Option<&str>,
    attr: Attribute,
) -> Result<Attribute, AttrError> {
    match value {
        None => Ok(attr),
        Some(_) => err(name, "no value"),
    }
}

/// Parses the text after `a=`. Unknown attributes are kept verbatim.
/// The attribute names this crate types, told apart by length first.
#[derive(Clone, Copy)]
enum Name {
    Group,
    BundleOnly,
    Mid,
    Msid,
    MsidSemantic,
    IceUfrag,
    IcePwd,
    IceOptions,
    IceLite,
    IceMismatch,
    Candidate,
    EndOfCandidates,
    Fingerprint,
    Setup,
    Rtcp,
    RtcpMux,
    RtcpMuxOnly,
    RtcpRsize,
    Rtpmap,
    Fmtp,
    RtcpFb,
    Extmap,
    ExtmapAllowMixed,
    Ssrc,
    SsrcGroup,
    Rid,
    Simulcast,
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
    SctpPort,
    MaxMessageSize,
    Sctpmap,
    ImageAttr,
    Unknown,
}

impl Name {
    fn classify(name: &[u8]) -> Name {
        match name.len() {
            3 => match name {
                b"mid" => Name::Mid,
                b"rid" => Name::Rid,
                _ => Name::Unknown,
            },
            4 => match name {
                b"msid" => Name::Msid,
                b"rtcp" => Name::Rtcp,
                b"fmtp" => Name::Fmtp,
                b"ssrc" => Name::Ssrc,
                _ => Name::Unknown,
            },
            5 => match name {
                b"group" => Name::Group,
                b"setup" => Name::Setup,
                _ => Name::Unknown,
            },
            6 => match name {
                b"rtpmap" => Name::Rtpmap,
                b"extmap" => Name::Extmap,
                _ => Name::Unknown,
            },
            7 => match name {
                b"ice-pwd" => Name::IcePwd,
                b"rtcp-fb" => Name::RtcpFb,
                b"sctpmap" => Name::Sctpmap,
                _ => Name::Unknown,
            },
            8 => match name {
                b"ice-lite" => Name::IceLite,
                b"rtcp-mux" => Name::RtcpMux,
                b"sendrecv" => Name::SendRecv,
                b"sendonly" => Name::SendOnly,
                b"recvonly" => Name::RecvOnly,
                b"inactive" => Name::Inactive,
                _ => Name::Unknown,
            },
            9 => match name {
                b"ice-ufrag" => Name::IceUfrag,
                b"candidate" => Name::Candidate,
                b"simulcast" => Name::Simulcast,
                b"sctp-port" => Name::SctpPort,
                b"imageattr" => Name::ImageAttr,
                _ => Name::Unknown,
            },
            10 => match name {
                b"rtcp-rsize" => Name::RtcpRsize,
                b"ssrc-group" => Name::SsrcGroup,
                _ => Name::Unknown,
            },
            11 => match name {
                b"bundle-only" => Name::BundleOnly,
                b"ice-options" => Name::IceOptions,
                b"fingerprint" => Name::Fingerprint,
                _ => Name::Unknown,
            },
            12 => match name {
                b"ice-mismatch" => Name::IceMismatch,
                _ => Name::Unknown,
            },
            13 => match name {
                b"msid-semantic" => Name::MsidSemantic,
                b"rtcp-mux-only" => Name::RtcpMuxOnly,
                _ => Name::Unknown,
            },
            16 => match name {
                b"max-message-size" => Name::MaxMessageSize,
                _ => Name::Unknown,
            },
            17 => match name {
                b"end-of-candidates" => Name::EndOfCandidates,
                _ => Name::Unknown,
            },
            18 => match name {
                b"extmap-allow-mixed" => Name::ExtmapAllowMixed,
                _ => Name::Unknown,
            },
            _ => Name::Unknown,
        }
    }
}

pub(crate) fn parse_attribute(text: &str) -> Result<Attribute, AttrError> {
    let (name, value) = match split_byte(text, b':') {
        Some((n, v)) => (n, Some(v)),
        None => (text, None),
    };
    if !is_token(name) {
        return err("attribute", "a token attribute name");
    }
    macro_rules! need {
        ($n:literal) => {
            match value {
                Some(v) if !v.is_empty() => v,
                _ => return err($n, "a value after ':'"),
            }
        };
    }
    Ok(match Name::classify(name.as_bytes()) {
        Name::Group => {
            let v = need!("group");
            let mut it = words(v);
            let semantics = it.next().filter(|s| is_token(s));
            let Some(semantics) = semantics else {
                return err("group", "semantics token");
            };
            Attribute::Group(Group {
                semantics: semantics.to_string(),
                mids: it.map(str::to_string).collect(),
            })
        }
        Name::BundleOnly => no_value("bundle-only", value, Attribute::BundleOnly)?,
        Name::Mid => {
            let v = need!("mid");
            if v.as_bytes().contains(&b' ') {
                return err("mid", "an identification tag without spaces");
            }
            Attribute::Mid(v.to_string())
        }
        Name::Msid => {
            let v = need!("msid");
            let mut it = words(v);
            let (Some(stream), track, None) = (it.next(), it.next(), it.next()) else {
                return err("msid", "<stream id> [<track id>]");
            };
            Attribute::Msid(Msid {
                stream_id: stream.to_string(),
                track_id: track.map(str::to_string),
            })
        }
        Name::MsidSemantic => {
            let v = need!("msid-semantic");
            let mut it = words(v);
            let Some(semantic) = it.next() else {
                return err("msid-semantic", "a semantic token");
            };
            Attribute::MsidSemantic(MsidSemantic {
                semantic: semantic.to_string(),
                ids: it.map(str::to_string).collect(),
            })
        }
        Name::IceUfrag => {
            let v = need!("ice-ufrag");
            if !is_credential(v) {
                return err("ice-ufrag", "1-256 visible characters");
            }
            Attribute::IceUfrag(v.to_string())
        }
        Name::IcePwd => {
            let v = need!("ice-pwd");
            if !is_credential(v) {
                return err("ice-pwd", "1-256 visible characters");
            }
            Attribute::IcePwd(v.to_string())
        }
        Name::IceOptions => {
            let v = need!("ice-options");
            let opts: Vec<String> = words(v).map(str::to_string).collect();
            if opts.is_empty() || !opts.iter().all(|o| is_ice_chars_or_token(o)) {
                return err("ice-options", "option tags");
            }
            Attribute::IceOptions(opts)
        }
        Name::IceLite => no_value("ice-lite", value, Attribute::IceLite)?,
        Name::IceMismatch => no_value("ice-mismatch", value, Attribute::IceMismatch)?,
        Name::Candidate => {
            let v = need!("candidate");
            match Candidate::parse(v) {
                Ok(c) => Attribute::Candidate(Box::new(c)),
                Err(expected) => return err("candidate", expected),
            }
        }
        Name::EndOfCandidates => no_value("end-of-candidates", value, Attribute::EndOfCandidates)?,
        Name::Fingerprint => {
            let v = need!("fingerprint");
            let (hash, Some(hex)) = split_once_space(v) else {
                return err("fingerprint", "<hash-func> <fingerprint>");
            };
            if !is_token(hash) {
                return err("fingerprint", "hash function token");
            }
            let Some(bytes) = parse_hex_pairs(trim_end(hex)) else {
                return err("fingerprint", "colon-separated hex byte pairs");
            };
            if let Some(len) = Fingerprint::digest_len(hash) {
                if bytes.len() != len {
                    return err("fingerprint", "as many bytes as the hash function's digest");
                }
            }
            Attribute::Fingerprint(Fingerprint {
                hash_function: intern(hash, HASHES),
                bytes,
            })
        }
        Name::Setup => Attribute::Setup(match need!("setup") {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "actpass" => Setup::ActPass,
            "holdconn" => Setup::HoldConn,
            _ => return err("setup", "active|passive|actpass|holdconn"),
        }),
        Name::Rtcp => {
            let v = need!("rtcp");
            let mut it = words(v);
            let Some(port) = it.next().and_then(parse_u16) else {
                return err("rtcp", "port");
            };
            let address = match (it.next(), it.next(), it.next(), it.next()) {
                (None, ..) => None,
                (Some(n), Some(a), Some(addr), None) => Some(crate::Connection {
                    nettype: n.to_string(),
                    addrtype: a.to_string(),
                    address: addr.to_string(),
                }),
                _ => return err("rtcp", "<port> [<nettype> <addrtype> <address>]"),
            };
            Attribute::Rtcp(Rtcp { port, address })
        }
        Name::RtcpMux => no_value("rtcp-mux", value, Attribute::RtcpMux)?,
        Name::RtcpMuxOnly => no_value("rtcp-mux-only", value, Attribute::RtcpMuxOnly)?,
        Name::RtcpRsize => no_value("rtcp-rsize", value, Attribute::RtcpRsize)?,
        Name::Rtpmap => {
            let v = need!("rtpmap");
            let (pt, Some(enc)) = split_once_space(v) else {
                return err("rtpmap", "<payload type> <encoding>/<clock rate>");
            };
            let Some(payload_type) = parse_u8(pt).filter(|p| *p < 128) else {
                return err("rtpmap", "payload type 0-127");
            };
            let Some((encoding, rest)) = split_byte(trim_end(enc), b'/') else {
                return err("rtpmap", "<encoding>/<clock rate>");
            };
            let (clock, channels) = match split_byte(rest, b'/') {
                Some((clock, channels)) => (clock, Some(channels)),
                None => (rest, None),
            };
            let clock = parse_u32(clock).filter(|c| *c > 0);
            let (true, Some(clock_rate)) = (is_token(encoding), clock) else {
                return err("rtpmap", "<encoding>/<clock rate>");
            };
            let channels = match channels {
                None => None,
                Some(c) => match parse_u16(c) {
                    Some(c) if c > 0 => Some(c),
                    _ => return err("rtpmap", "<encoding>/<clock rate>[/<channels>]"),
                },
            };
            Attribute::Rtpmap(Rtpmap {
                payload_type,
                encoding: intern(encoding, ENCODINGS),
                clock_rate,
                channels,
            })
        }
        Name::Fmtp => {
            let v = need!("fmtp");
            let (pt, Some(rest)) = split_once_space(v) else {
                return err("fmtp", "<payload type> <parameters>");
            };
            let Some(payload_type) = parse_u8(pt).filter(|p| *p < 128) else {
                return err("fmtp", "payload type 0-127");
            };
            let mut params = Vec::new();
            let mut remaining = Some(rest);
            while let Some(chunk) = remaining {
                let p = match split_byte(chunk, b';') {
                    Some((p, next)) => {
                        remaining = Some(next);
                        p
                    }
                    None => {
                        remaining = None;
                        chunk
                    }
                };
                let p = trim(p);
                if p.is_empty() {
                    continue;
                }
                params.push(match split_byte(p, b'=') {
                    Some((k, v)) if !k.is_empty() => FmtpParam::from_pair(trim(k), trim(v)),
                    _ => FmtpParam::Value(p.to_string()),
                });
            }
            if params.is_empty() {
                return err("fmtp", "at least one parameter");
            }
            Attribute::Fmtp(Fmtp {
                payload_type,
                params,
            })
        }
        Name::RtcpFb => {
            let v = need!("rtcp-fb");
            let (pt, Some(rest)) = split_once_space(v) else {
                return err("rtcp-fb", "<payload type|*> <feedback type>");
            };
            let Some(payload_type) = format_ref(pt) else {
                return err("rtcp-fb", "payload type 0-127 or *");
            };
            let rest = trim_end(rest);
            let (fb_type, param) = split_once_space(rest);
            if !is_token(fb_type) {
                return err("rtcp-fb", "feedback type token");
            }
            let param = param.filter(|p| !p.is_empty());
            if fb_type == "trr-int" && param.and_then(parse_u32).is_none() {
                return err("rtcp-fb", "trr-int <milliseconds>");
            }
            Attribute::RtcpFb(RtcpFb {
                payload_type,
                fb_type: intern(fb_type, FEEDBACK_TYPES),
                param: param.map(|p| intern(p, FEEDBACK_PARAMS)),
            })
        }
        Name::Extmap => {
            let v = need!("extmap");
            let (idd, Some(rest)) = split_once_space(v) else {
                return err("extmap", "<id>[/<direction>] <uri>");
            };
            let (id, direction) = match split_byte(idd, b'/') {
                Some((i, d)) => match Direction::parse(d) {
                    Some(d) => (i, Some(d)),
                    None => return err("extmap", "direction after '/'"),
                },
                None => (idd, None),
            };
            let Some(id) = parse_u8(id).filter(|i| *i > 0) else {
                return err("extmap", "id 1-255");
            };
            let (uri, attributes) = split_once_space(trim_end(rest));
            if uri.is_empty() {
                return err("extmap", "extension URI");
            }
            Attribute::Extmap(Extmap {
                id,
                direction,
                uri: intern(uri, EXTENSION_URIS),
                attributes: attributes.filter(|a| !a.is_empty()).map(str::to_string),
            })
        }
        Name::ExtmapAllowMixed => {
            no_value("extmap-allow-mixed", value, Attribute::ExtmapAllowMixed)?
        }
        Name::Ssrc => {
            let v = need!("ssrc");
            let (id, Some(attr)) = split_once_space(v) else {
                return err("ssrc", "<ssrc-id> <attribute>[:<value>]");
            };
            let Some(ssrc) = parse_u32(id) else {
                return err("ssrc", "ssrc-id 0-4294967295");
            };
            let (attribute, value) = match split_byte(attr, b':') {
                Some((a, v)) => (a, Some(v.to_string())),
                None => (trim_end(attr), None),
            };
            if !is_token(attribute) {
                return err("ssrc", "source attribute name");
            }
            Attribute::Ssrc(Ssrc {
                ssrc,
                attribute: intern(attribute, SSRC_ATTRIBUTES),
                value,
            })
        }
        Name::SsrcGroup => {
            let v = need!("ssrc-group");
            let mut it = words(v);
            let Some(semantics) = it.next().filter(|s| is_token(s)) else {
                return err("ssrc-group", "semantics token");
            };
            let mut ssrcs = Vec::new();
            for s in it {
                match parse_u32(s) {
                    Some(s) => ssrcs.push(s),
                    None => return err("ssrc-group", "ssrc-id list"),
                }
            }
            Attribute::SsrcGroup(SsrcGroup {
                semantics: semantics.to_string(),
                ssrcs,
            })
        }
        Name::Rid => Attribute::Rid(parse_rid(need!("rid"))?),
        Name::Simulcast => Attribute::Simulcast(parse_simulcast(need!("simulcast"))?),
        Name::SendRecv | Name::SendOnly | Name::RecvOnly | Name::Inactive => {
            if value.is_some() {
                return err("direction", "no value");
            }
            Attribute::Direction(Direction::parse(name).unwrap_or(Direction::SendRecv))
        }
        Name::SctpPort => match parse_u16(need!("sctp-port")) {
            Some(p) => Attribute::SctpPort(p),
            None => return err("sctp-port", "port 0-65535"),
        },
        Name::MaxMessageSize => match parse_u64(need!("max-message-size")) {
            Some(p) => Attribute::MaxMessageSize(p),
            None => return err("max-message-size", "a byte count"),
        },
        Name::Sctpmap => {
            let v = need!("sctpmap");
            let mut it = words(v);
            let (Some(port), Some(protocol)) = (it.next().and_then(parse_u16), it.next()) else {
                return err("sctpmap", "<port> <protocol> [<streams>]");
            };
            let streams = match it.next() {
                None => None,
                Some(s) => match parse_u32(s) {
                    Some(s) => Some(s),
                    None => return err("sctpmap", "stream count"),
                },
            };
            if it.next().is_some() {
                return err("sctpmap", "<port> <protocol> [<streams>]");
            }
            Attribute::Sctpmap(Sctpmap {
                port,
                protocol: protocol.to_string(),
                streams,
            })
        }
        Name::ImageAttr => {
            let v = need!("imageattr");
            let (pt, rest) = split_once_space(v);
            let Some(payload_type) = format_ref(pt) else {
                return err("imageattr", "payload type or *");
            };
            let rest = trim_end(rest.unwrap_or(""));
            if !(rest.starts_with("send ") || rest.starts_with("recv ")) {
                return err("imageattr", "send|recv attribute sets");
            }
            Attribute::ImageAttr(ImageAttr {
                payload_type,
                value: rest.to_string(),
            })
        }
        Name::Unknown => Attribute::Unknown {
            name: name.to_string(),
            value: value.map(str::to_string),
        },
    })
}

/// Parses `AB:CD:...` (upper or lower case hex).
fn parse_hex_pairs(hex: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if bytes.len() % 3 != 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 3 + 1);
    for chunk in bytes.chunks(3) {
        match chunk {
            // Only the last chunk has two bytes (the length is 3n + 2).
            [h, l] | [h, l, b':'] => out.push((nibble(*h)? << 4) | nibble(*l)?),
            _ => return None,
        }
    }
    Some(out)
}

fn is_ice_chars_or_token(s: &str) -> bool {
    is_token(s) || is_ice_chars(s, 256)
}

fn parse_rid(v: &str) -> Result<Rid, AttrError> {
    let mut it = words(v);
    let Some(id) = it.next().filter(|i| is_rid_id(i)) else {
        return err("rid", "rid-id");
    };
    let direction = match it.next() {
        Some("send") => RidDirection::Send,
        Some("recv") => RidDirection::Recv,
        _ => return err("rid", "send|recv"),
    };
    let mut rid = Rid {
        id: id.to_string(),
        direction,
        payload_types: Vec::new(),
        restrictions: Vec::new(),
    };
    if let Some(params) = it.next() {
        for p in split_on(params, b';') {
            match p.split_once('=') {
                Some(("pt", list)) => {
                    for pt in split_on(list, b',') {
                        match parse_u8(pt).filter(|p| *p < 128) {
                            Some(pt) => rid.payload_types.push(pt),
                            None => return err("rid", "pt=<payload type list>"),
                        }
                    }
                }
                Some((k, v)) if is_token(k) => {
                    rid.restrictions.push((k.to_string(), Some(v.to_string())))
                }
                None if is_token(p) => rid.restrictions.push((p.to_string(), None)),
                _ => return err("rid", "<key>=<value> restrictions separated by ';'"),
            }
        }
    }
    if it.next().is_some() {
        return err("rid", "<id> <send|recv> [<restrictions>]");
    }
    Ok(rid)
}

fn parse_sc_list(list: &str) -> Result<Vec<Vec<SimulcastRid>>, AttrError> {
    let mut streams = Vec::new();
    for alternatives in split_on(list, b';') {
        let mut alts = Vec::new();
        for id in split_on(alternatives, b',') {
            let (paused, id) = match id.strip_prefix('~') {
                Some(rest) => (true, rest),
                None => (false, id),
            };
            if !is_rid_id(id) {
                return err("simulcast", "rid-ids separated by ',' and ';'");
            }
            alts.push(SimulcastRid {
                id: id.to_string(),
                paused,
            });
        }
        streams.push(alts);
    }
    Ok(streams)
}

fn parse_simulcast(v: &str) -> Result<Simulcast, AttrError> {
    let mut sc = Simulcast::default();
    let mut it = words(v);
    let mut seen = 0;
    while let Some(dir) = it.next() {
        let Some(list) = it.next() else {
            return err("simulcast", "a rid list after the direction");
        };
        let target = match dir {
            "send" if sc.send.is_empty() => &mut sc.send,
            "recv" if sc.recv.is_empty() => &mut sc.recv,
            _ => return err("simulcast", "send <list> and/or recv <list>, each once"),
        };
        // Firefox before RFC 8853 wrote `send rid=a;b`; accept and normalise it.
        let list = list.strip_prefix("rid=").unwrap_or(list);
        *target = parse_sc_list(list)?;
        seen += 1;
    }
    if seen == 0 {
        return err("simulcast", "send <list> and/or recv <list>");
    }
    Ok(sc)
}

impl Attribute {
    /// The attribute name as written after `a=`.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Group(_) => "group",
            Attribute::BundleOnly => "bundle-only",
            Attribute::Mid(_) => "mid",
            Attribute::Msid(_) => "msid",
            Attribute::MsidSemantic(_) => "msid-semantic",
            Attribute::IceUfrag(_) => "ice-ufrag",
            Attribute::IcePwd(_) => "ice-pwd",
            Attribute::IceOptions(_) => "ice-options",
            Attribute::IceLite => "ice-lite",
            Attribute::IceMismatch => "ice-mismatch",
            Attribute::Candidate(_) => "candidate",
            Attribute::EndOfCandidates => "end-of-candidates",
            Attribute::Fingerprint(_) => "fingerprint",
            Attribute::Setup(_) => "setup",
            Attribute::Rtcp(_) => "rtcp",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::RtcpMuxOnly => "rtcp-mux-only",
            Attribute::RtcpRsize => "rtcp-rsize",
            Attribute::Rtpmap(_) => "rtpmap",
            Attribute::Fmtp(_) => "fmtp",
            Attribute::RtcpFb(_) => "rtcp-fb",
            Attribute::Extmap(_) => "extmap",
            Attribute::ExtmapAllowMixed => "extmap-allow-mixed",
            Attribute::Ssrc(_) => "ssrc",
            Attribute::SsrcGroup(_) => "ssrc-group",
            Attribute::Rid(_) => "rid",
            Attribute::Simulcast(_) => "simulcast",
            Attribute::Direction(d) => d.as_str(),
            Attribute::SctpPort(_) => "sctp-port",
            Attribute::MaxMessageSize(_) => "max-message-size",
            Attribute::Sctpmap(_) => "sctpmap",
            Attribute::ImageAttr(_) => "imageattr",
            Attribute::Unknown { name, .. } => name,
        }
    }
}

impl Display for Attribute {
    /// Writes the attribute without the `a=` prefix and without a line ending.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(64);
        crate::write::push_attribute(&mut out, self);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_check_by_variant_agrees_with_the_name_lists() {
        let typed = [
            "group:BUNDLE 0",
            "bundle-only",
            "mid:0",
            "msid:a b",
            "msid-semantic: WMS a",
            "ice-ufrag:abcd",
            "ice-pwd:abcdefghijklmnopqrstuvwx",
            "ice-options:trickle",
            "ice-lite",
            "ice-mismatch",
            "candidate:1 1 udp 1 192.0.2.1 5 typ host",
            "end-of-candidates",
            "fingerprint:sha-1 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13",
            "setup:active",
            "rtcp:9",
            "rtcp-mux",
            "rtcp-mux-only",
            "rtcp-rsize",
            "rtpmap:96 VP8/90000",
            "fmtp:96 apt=100",
            "rtcp-fb:96 nack",
            "extmap:1 urn:x",
            "extmap-allow-mixed",
            "ssrc:1 cname:x",
            "ssrc-group:FID 1 2",
            "rid:a send",
            "simulcast:send a",
            "sendrecv",
            "sendonly",
            "recvonly",
            "inactive",
            "sctp-port:5000",
            "max-message-size:100",
            "sctpmap:5000 webrtc-datachannel 1024",
            "imageattr:96 send *",
        ];
        let unknown = [
            "ptime:20",
            "label:1",
            "framerate:30",
            "x-foo",
            "remote-candidates:1",
        ];
        for line in typed.iter().chain(&unknown) {
            let a = parse_attribute(line).expect(line);
            assert_eq!(
                matches!(a, Attribute::Unknown { .. }),
                unknown.contains(line),
                "{line}"
            );
            for level in [Level::Session, Level::Media] {
                assert_eq!(
                    attribute_allowed_at(&a, level),
                    allowed_at(a.name(), level),
                    "{line} at {level}"
                );
            }
        }
    }

    #[test]
    fn number_parsers_agree_with_std_on_digit_strings() {
        let inputs = [
            "0",
            "7",
            "007",
            "255",
            "256",
            "65535",
            "65536",
            "4294967295",
            "4294967296",
            "9999999999",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "000000000000000000001",
        ];
        for s in inputs {
            let digits_only = |max: usize| s.len() <= max;
            assert_eq!(
                parse_u8(s),
                s.parse().ok().filter(|_| digits_only(3)),
                "{s}"
            );
            assert_eq!(
                parse_u16(s),
                s.parse().ok().filter(|_| digits_only(5)),
                "{s}"
            );
            assert_eq!(
                parse_u32(s),
                s.parse().ok().filter(|_| digits_only(10)),
                "{s}"
            );
            assert_eq!(
                parse_u64(s),
                s.parse().ok().filter(|_| digits_only(20)),
                "{s}"
            );
        }
        for bad in ["", "+1", "-1", "1a", " 1", "1 "] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }
}

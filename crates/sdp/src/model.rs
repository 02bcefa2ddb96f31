//! The session description model: one struct per SDP line type (RFC 8866 §5).

use std::borrow::Cow;

use crate::attribute::{Attribute, Direction, Fmtp, Rtpmap};

/// Payload type numbers as text, so that `m=` format lists do not allocate per format.
const PAYLOAD_TYPES: [&str; 128] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32",
    "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48",
    "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64",
    "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80",
    "81", "82", "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96",
    "97", "98", "99", "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "110",
    "111", "112", "113", "114", "115", "116", "117", "118", "119", "120", "121", "122", "123",
    "124", "125", "126", "127",
];

/// The format token as a `'static` string when it is a payload type number 0-127.
pub(crate) fn format_token(s: &str) -> Cow<'static, str> {
    let known = crate::attribute::parse_u8(s)
        .and_then(|pt| PAYLOAD_TYPES.get(pt as usize))
        .filter(|t| **t == s);
    match known {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(s.to_string()),
    }
}

/// A whole session description: the session-level lines followed by the media sections.
///
/// Fields are in the canonical RFC 8866 order; `Display` writes them in that order with CRLF
/// line endings, and [`crate::parse`] reads the text back into an equal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `v=`: the protocol version; always 0.
    pub version: u32,
    /// `o=`: who created the session and its id/version.
    pub origin: Origin,
    /// `s=`: the session name (`-` when there is nothing meaningful to say).
    pub session_name: String,
    /// `i=`: session information.
    pub information: Option<String>,
    /// `u=`: a URI with more information.
    pub uri: Option<String>,
    /// `e=`: email addresses.
    pub emails: Vec<String>,
    /// `p=`: phone numbers.
    pub phones: Vec<String>,
    /// `c=`: the session-level connection data.
    pub connection: Option<Connection>,
    /// `b=`: session-level bandwidth lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` (with their `r=` lines): at least one.
    pub times: Vec<Timing>,
    /// `z=`: time zone adjustments, kept verbatim.
    pub time_zones: Option<String>,
    /// `k=`: the (obsolete) encryption key line, kept verbatim.
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

impl Default for SessionDescription {
    fn default() -> Self {
        SessionDescription {
            version: 0,
            origin: Origin::default(),
            session_name: "-".to_string(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            times: vec![Timing::default()],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }
}

impl SessionDescription {
    /// The first session-level attribute with this name (e.g. `"ice-ufrag"`).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name() == name)
    }

    /// The mids listed in the session's `a=group:BUNDLE` lines, group by group.
    pub fn bundle_groups(&self) -> impl Iterator<Item = &[String]> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Group(g) if g.semantics.eq_ignore_ascii_case("BUNDLE") => {
                Some(g.mids.as_slice())
            }
            _ => None,
        })
    }

    /// The media section whose `a=mid` is `mid`.
    pub fn media_by_mid(&self, mid: &str) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.mid() == Some(mid))
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user name, `-` when not used.
    pub username: String,
    /// Numeric session id.
    pub session_id: u64,
    /// Numeric session version, incremented on each change.
    pub session_version: u64,
    /// Network type, `IN`.
    pub nettype: String,
    /// Address type, `IP4` or `IP6`.
    pub addrtype: String,
    /// Address of the originating host.
    pub address: String,
}

impl Default for Origin {
    fn default() -> Self {
        Origin {
            username: "-".to_string(),
            session_id: 0,
            session_version: 0,
            nettype: "IN".to_string(),
            addrtype: "IP4".to_string(),
            address: "127.0.0.1".to_string(),
        }
    }
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN`.
    pub nettype: String,
    /// Address type, `IP4` or `IP6`.
    pub addrtype: String,
    /// The address, including any `/ttl/count` suffix, verbatim.
    pub address: String,
}

impl Connection {
    /// `IN IP4 0.0.0.0`, what WebRTC endpoints put in every media section.
    pub fn unspecified_ipv4() -> Self {
        Connection {
            nettype: "IN".to_string(),
            addrtype: "IP4".to_string(),
            address: "0.0.0.0".to_string(),
        }
    }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// The bandwidth type (`AS`, `CT`, `TIAS`, or another token).
    pub bwtype: String,
    /// The value (kbit/s for `AS`/`CT`, bit/s for `TIAS`).
    pub bandwidth: u64,
}

/// `t=<start-time> <stop-time>` and its `r=` repeat lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for unbounded.
    pub start: u64,
    /// Stop time (NTP seconds), 0 for unbounded.
    pub stop: u64,
    /// `r=` lines following this `t=`, verbatim.
    pub repeats: Vec<String>,
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `audio`
    Audio,
    /// `video`
    Video,
    /// `application` (data channels)
    Application,
    /// `text`
    Text,
    /// `message`
    Message,
    /// Any other token, kept verbatim.
    Other(String),
}

impl MediaKind {
    /// Parses the media token (case-sensitive as in RFC 8866; unknown ones are kept).
    pub fn from_token(token: &str) -> Self {
        match token {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "application" => MediaKind::Application,
            "text" => MediaKind::Text,
            "message" => MediaKind::Message,
            other => MediaKind::Other(other.to_string()),
        }
    }

    /// The token as written in an `m=` line.
    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Application => "application",
            MediaKind::Text => "text",
            MediaKind::Message => "message",
            MediaKind::Other(s) => s,
        }
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One media section: `m=` and the lines after it up to the next `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type.
    pub kind: MediaKind,
    /// Transport port; 0 marks a rejected (or bundle-only) section.
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// Transport protocol, e.g. `UDP/TLS/RTP/SAVPF` or `UDP/DTLS/SCTP`.
    pub protocol: String,
    /// Media formats: RTP payload types, or e.g. `webrtc-datachannel`.
    pub formats: Vec<Cow<'static, str>>,
    /// `i=`: media title.
    pub title: Option<String>,
    /// `c=` lines of this section.
    pub connections: Vec<Connection>,
    /// `b=` lines of this section.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` line, verbatim.
    pub key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A media section with no formats, connection or attributes.
    pub fn new(kind: MediaKind, port: u16, protocol: &str) -> Self {
        MediaDescription {
            kind,
            port,
            port_count: None,
            protocol: protocol.to_string(),
            formats: Vec::new(),
            title: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// Whether the protocol carries RTP (formats are payload types).
    pub fn is_rtp(&self) -> bool {
        self.protocol
            .split('/')
            .any(|p| p.eq_ignore_ascii_case("RTP"))
    }

    /// Whether the section is an SCTP data channel section.
    pub fn is_sctp(&self) -> bool {
        self.protocol
            .split('/')
            .any(|p| p.eq_ignore_ascii_case("SCTP"))
    }

    /// The formats parsed as RTP payload types (formats that are not numbers are skipped).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// The first attribute with this name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name() == name)
    }

    /// Whether an attribute with this name is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The `a=mid` value.
    pub fn mid(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Mid(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The direction attribute; `sendrecv` when absent (RFC 8866 §6.7).
    pub fn direction(&self) -> Direction {
        self.attributes
            .iter()
            .find_map(|a| match a {
                Attribute::Direction(d) => Some(*d),
                _ => None,
            })
            .unwrap_or(Direction::SendRecv)
    }

    /// The `a=rtpmap` lines.
    pub fn rtpmaps(&self) -> impl Iterator<Item = &Rtpmap> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Rtpmap(r) => Some(r),
            _ => None,
        })
    }

    /// The `a=rtpmap` of a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&Rtpmap> {
        self.rtpmaps().find(|r| r.payload_type == payload_type)
    }

    /// The `a=fmtp` of a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&Fmtp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(f) if f.payload_type == payload_type => Some(f),
            _ => None,
        })
    }
}

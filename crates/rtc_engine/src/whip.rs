//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep): the SDP side of HTTP-signalled sessions.
//!
//! A WHIP publisher or WHEP viewer has no WebSocket: it sends one SDP offer over HTTP and
//! gets one answer back; there is no renegotiation. The [`crate::Engine`] entry points are
//! [`crate::Engine::whip_publish`], [`crate::Engine::whep_subscribe`] and
//! [`crate::Engine::end_session`]; trickled candidates go through
//! [`crate::Engine::add_remote_candidate`]. This module holds what the engine and the HTTP
//! shell need to look inside the SDP:
//!
//! - [`summarize_offer`]: the m-lines of an offer (mid, kind, direction) and its ICE ufrag;
//! - [`assign_tracks`]: which room track fills which recvonly m-line of a WHEP offer;
//! - [`TrickleFragment`]: the `application/trickle-ice-sdpfrag` body of a PATCH (RFC 8840).
//!
//! ```
//! use tympan_rtc_engine::whip::TrickleFragment;
//!
//! let frag = TrickleFragment::parse(
//!     "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
//!      a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\na=end-of-candidates\r\n",
//! )
//! .unwrap();
//! assert_eq!(frag.ice_ufrag.as_deref(), Some("EsAw"));
//! assert_eq!(frag.candidates, ["candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host"]);
//! assert!(frag.end_of_candidates);
//! ```

use std::collections::HashMap;
use std::fmt;

use tympan_sdp::{Direction, MediaKind};

use crate::notice::{ErrorCode, SignalError};
use crate::room::{ParticipantId, TrackId};

/// Largest trickle fragment accepted, in bytes.
pub const MAX_FRAGMENT_BYTES: usize = 16 * 1024;
/// Most candidates in one trickle fragment.
pub const MAX_FRAGMENT_CANDIDATES: usize = 64;

/// What kind of HTTP-signalled session a participant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// A WHIP publisher: in the room like any participant, but publish-only.
    WhipPublisher,
    /// A WHEP viewer: invisible to the room, receives the tracks its answer assigned.
    WhepViewer,
}

/// One m-line of an offer, as WHIP/WHEP look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedSection {
    /// `a=mid` (empty when missing: negotiation will refuse the offer).
    pub mid: String,
    /// Media kind.
    pub kind: MediaKind,
    /// The offerer's direction.
    pub direction: Direction,
    /// Port 0 without `a=bundle-only`: the offerer rejected it itself.
    pub rejected: bool,
}

impl OfferedSection {
    /// An audio or video m-line the offerer sends on (a WHIP track).
    pub fn publishes(&self) -> bool {
        self.is_av() && !self.rejected && self.direction.sends()
    }

    /// An audio or video m-line the offerer wants to receive on (a WHEP slot).
    pub fn wants_media(&self) -> bool {
        self.is_av() && !self.rejected && self.direction.receives()
    }

    fn is_av(&self) -> bool {
        matches!(self.kind, MediaKind::Audio | MediaKind::Video)
    }
}

/// The parts of an offer WHIP and WHEP care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// The offerer's ICE ufrag (session level or first m-line), if any.
    pub ice_ufrag: Option<String>,
    /// The m-lines in order.
    pub sections: Vec<OfferedSection>,
}

/// Parses `sdp` and lists its m-lines. Error `bad_sdp` (with the parser's position) when
/// it does not parse.
pub fn summarize_offer(sdp: &str) -> Result<OfferSummary, SignalError> {
    let parsed = tympan_sdp::parse(sdp)
        .map_err(|e| SignalError::new(ErrorCode::BadSdp, format!("bad SDP offer: {e}")))?;
    let ufrag_in = |attrs: &[tympan_sdp::Attribute]| {
        attrs.iter().find_map(|a| match a {
            tympan_sdp::Attribute::IceUfrag(u) => Some(u.clone()),
            _ => None,
        })
    };
    let ice_ufrag = ufrag_in(&parsed.attributes)
        .or_else(|| parsed.media.iter().find_map(|m| ufrag_in(&m.attributes)));
    let sections = parsed
        .media
        .iter()
        .map(|m| OfferedSection {
            mid: m.mid().unwrap_or_default().to_owned(),
            kind: m.kind.clone(),
            direction: m.direction(),
            rejected: m.port == 0 && !m.has_attribute("bundle-only"),
        })
        .collect();
    Ok(OfferSummary {
        ice_ufrag,
        sections,
    })
}

/// A track a WHEP viewer may be given: `(publisher, track, kind)`.
pub type AvailableTrack = (ParticipantId, TrackId, MediaKind);

/// Fills the offered m-lines that want media, in m-line order, with the `available`
/// tracks of the same kind, in the order given (the engine passes publication order). Each
/// track is used once; m-lines left over get `None` (answered inactive), as do m-lines that
/// do not want media. The result has one entry per section.
pub fn assign_tracks(
    sections: &[OfferedSection],
    available: &[AvailableTrack],
) -> Vec<Option<(ParticipantId, TrackId)>> {
    let mut used = vec![false; available.len()];
    sections
        .iter()
        .map(|s| {
            if !s.wants_media() {
                return None;
            }
            let i = available
                .iter()
                .enumerate()
                .position(|(i, (_, _, k))| *k == s.kind && !used.get(i).copied().unwrap_or(true))?;
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
            available.get(i).map(|(p, t, _)| (*p, *t))
        })
        .collect()
}

/// Why a trickle fragment was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FragmentError {
    /// Larger than [`MAX_FRAGMENT_BYTES`].
    TooLarge(usize),
    /// Not UTF-8 text.
    NotText,
    /// More than [`MAX_FRAGMENT_CANDIDATES`] candidates.
    TooManyCandidates,
    /// A line that is not `a=...`, `m=...` or empty, at this 1-based line number.
    BadLine(usize),
    /// A candidate that does not parse, at this 1-based line number.
    BadCandidate {
        /// Line number (1-based).
        line: usize,
        /// What the candidate parser said.
        reason: &'static str,
    },
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentError::TooLarge(n) => {
                write!(f, "fragment of {n} bytes exceeds {MAX_FRAGMENT_BYTES}")
            }
            FragmentError::NotText => f.write_str("fragment is not UTF-8 text"),
            FragmentError::TooManyCandidates => {
                write!(f, "more than {MAX_FRAGMENT_CANDIDATES} candidates")
            }
            FragmentError::BadLine(l) => {
                write!(f, "line {l}: expected an a= or m= line")
            }
            FragmentError::BadCandidate { line, reason } => {
                write!(f, "line {line}: bad candidate: {reason}")
            }
        }
    }
}

impl std::error::Error for FragmentError {}

/// An `application/trickle-ice-sdpfrag` body (RFC 8840 §9, as WHIP uses it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrickleFragment {
    /// `a=ice-ufrag` (a changed one means an ICE restart).
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd`.
    pub ice_pwd: Option<String>,
    /// The candidates, each as `candidate:...` (the form of `RTCIceCandidate.candidate`).
    pub candidates: Vec<String>,
    /// `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
}

impl TrickleFragment {
    /// Parses a fragment (CRLF or LF line ends). Other attributes (`a=mid`, `a=group`, ...)
    /// and `m=` lines are accepted and ignored: with BUNDLE every candidate belongs to the
    /// one transport.
    pub fn parse(text: &str) -> Result<TrickleFragment, FragmentError> {
        if text.len() > MAX_FRAGMENT_BYTES {
            return Err(FragmentError::TooLarge(text.len()));
        }
        let mut frag = TrickleFragment::default();
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw).trim_end();
            let number = i + 1;
            if line.is_empty() || line.starts_with("m=") {
                continue;
            }
            let Some(attr) = line.strip_prefix("a=") else {
                return Err(FragmentError::BadLine(number));
            };
            if let Some(u) = attr.strip_prefix("ice-ufrag:") {
                frag.ice_ufrag = Some(u.trim().to_owned());
            } else if let Some(p) = attr.strip_prefix("ice-pwd:") {
                frag.ice_pwd = Some(p.trim().to_owned());
            } else if attr.starts_with("candidate:") {
                if frag.candidates.len() >= MAX_FRAGMENT_CANDIDATES {
                    return Err(FragmentError::TooManyCandidates);
                }
                tympan_sdp::parse_candidate(attr).map_err(|reason| {
                    FragmentError::BadCandidate {
                        line: number,
                        reason,
                    }
                })?;
                frag.candidates.push(attr.to_owned());
            } else if attr == "end-of-candidates" {
                frag.end_of_candidates = true;
            }
        }
        Ok(frag)
    }

    /// Parses raw bytes (an HTTP body).
    pub fn parse_bytes(body: &[u8]) -> Result<TrickleFragment, FragmentError> {
        if body.len() > MAX_FRAGMENT_BYTES {
            return Err(FragmentError::TooLarge(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| FragmentError::NotText)?;
        Self::parse(text)
    }

    /// Whether the fragment asks for an ICE restart against the session's `current` ufrag:
    /// it carries a different ufrag.
    pub fn is_ice_restart(&self, current: Option<&str>) -> bool {
        match (&self.ice_ufrag, current) {
            (Some(new), Some(old)) => new != old,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// The entry point of the `whip_sdpfrag` fuzz target: parses `data` as a trickle fragment
/// and returns how many candidates it had (0 on error). Panics are bugs.
#[doc(hidden)]
pub fn fuzz_sdpfrag(data: &[u8]) -> usize {
    match TrickleFragment::parse_bytes(data) {
        Ok(f) => {
            let _ = f.is_ice_restart(Some("x"));
            f.candidates.len()
        }
        Err(e) => {
            let _ = e.to_string();
            0
        }
    }
}

/// The engine's table of HTTP-signalled sessions.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    kinds: HashMap<ParticipantId, SessionKind>,
}

impl Sessions {
    pub(crate) fn insert(&mut self, p: ParticipantId, kind: SessionKind) {
        self.kinds.insert(p, kind);
    }

    pub(crate) fn forget(&mut self, p: ParticipantId) {
        self.kinds.remove(&p);
    }

    pub(crate) fn kind(&self, p: ParticipantId) -> Option<SessionKind> {
        self.kinds.get(&p).copied()
    }

    /// No WebSocket: gets no notices, no server offers, no automatic subscriptions.
    pub(crate) fn is_headless(&self, p: ParticipantId) -> bool {
        self.kinds.contains_key(&p)
    }

    pub(crate) fn is_viewer(&self, p: ParticipantId) -> bool {
        self.kind(p) == Some(SessionKind::WhepViewer)
    }

    pub(crate) fn clear(&mut self) {
        self.kinds.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(mid: &str, kind: MediaKind, direction: Direction) -> OfferedSection {
        OfferedSection {
            mid: mid.into(),
            kind,
            direction,
            rejected: false,
        }
    }

    #[test]
    fn tracks_fill_wanting_m_lines_in_order_surplus_is_none() {
        let a = |n| (ParticipantId(n), TrackId(n * 10), MediaKind::Audio);
        let v = |n| (ParticipantId(n), TrackId(n * 10 + 1), MediaKind::Video);
        let available = [a(1), v(1), a(2)];
        let sections = [
            section("0", MediaKind::Audio, Direction::RecvOnly),
            section("1", MediaKind::Video, Direction::RecvOnly),
            section("2", MediaKind::Video, Direction::RecvOnly),
            section("3", MediaKind::Audio, Direction::SendRecv),
            section("4", MediaKind::Audio, Direction::SendOnly),
            section("5", MediaKind::Application, Direction::SendRecv),
        ];
        let got = assign_tracks(&sections, &available);
        assert_eq!(
            got,
            vec![
                Some((ParticipantId(1), TrackId(10))),
                Some((ParticipantId(1), TrackId(11))),
                None,
                Some((ParticipantId(2), TrackId(20))),
                None,
                None,
            ]
        );
    }

    #[test]
    fn fragments_parse_with_either_line_end_and_report_where_they_fail() {
        let f = TrickleFragment::parse(
            "a=ice-ufrag:u1\na=ice-pwd:p\nm=audio 9 RTP/AVP 0\na=mid:0\n\
             a=candidate:1 1 UDP 2130706431 10.0.0.1 5000 typ host\n",
        )
        .unwrap();
        assert_eq!(f.candidates.len(), 1);
        assert!(!f.end_of_candidates);
        assert!(!f.is_ice_restart(Some("u1")));
        assert!(f.is_ice_restart(Some("u0")));
        assert_eq!(
            TrickleFragment::parse("a=mid:0\r\nhello\r\n"),
            Err(FragmentError::BadLine(2))
        );
        assert!(matches!(
            TrickleFragment::parse("a=candidate:garbage"),
            Err(FragmentError::BadCandidate { line: 1, .. })
        ));
        assert_eq!(
            TrickleFragment::parse_bytes(&[0xff, 0xfe]),
            Err(FragmentError::NotText)
        );
        let many = "a=candidate:1 1 UDP 1 10.0.0.1 5000 typ host\n".repeat(65);
        assert_eq!(
            TrickleFragment::parse(&many),
            Err(FragmentError::TooManyCandidates)
        );
        assert_eq!(fuzz_sdpfrag(b""), 0);
    }

    #[test]
    fn offers_are_summarized_or_refused_as_bad_sdp() {
        let e = summarize_offer("not sdp").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadSdp);
    }
}

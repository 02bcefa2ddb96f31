//! tympan-sdp: the Session Description Protocol for WebRTC, on its own.
//!
//! * [`parse`] reads an SDP (RFC 8866) into a [`SessionDescription`]: every line type, session
//!   and media sections, and the attributes WebRTC uses typed as [`Attribute`] variants
//!   (BUNDLE, mid, msid, ICE, candidates, DTLS fingerprint/setup, rtpmap/fmtp/rtcp-fb, extmap,
//!   ssrc/ssrc-group, rid/simulcast, SCTP). Unknown attributes are kept verbatim. Errors carry
//!   the 1-based line number, the line, and what was expected ([`ParseError`]).
//! * `Display` writes a description back with CRLF line endings in canonical order; parsing
//!   that text gives an equal value.
//! * [`jsep`] does offer/answer (RFC 8829, RFC 3264): answer a remote offer from
//!   [`jsep::LocalCapabilities`], create an offer, and check a remote answer against the
//!   offer, giving a [`jsep::NegotiatedSession`].
//!
//! ```
//! use tympan_sdp::{parse, Attribute, Direction, MediaKind};
//!
//! let offer = "v=0\r\n\
//! o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
//! s=-\r\n\
//! t=0 0\r\n\
//! a=group:BUNDLE 0\r\n\
//! m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
//! c=IN IP4 0.0.0.0\r\n\
//! a=mid:0\r\n\
//! a=sendrecv\r\n\
//! a=rtpmap:111 opus/48000/2\r\n\
//! a=fmtp:111 minptime=10;useinbandfec=1\r\n";
//!
//! let sdp = parse(offer).expect("valid SDP");
//! let audio = &sdp.media[0];
//! assert_eq!(audio.kind, MediaKind::Audio);
//! assert_eq!(audio.mid(), Some("0"));
//! assert_eq!(audio.direction(), Direction::SendRecv);
//! assert_eq!(audio.rtpmap(111).map(|r| r.encoding.as_ref()), Some("opus"));
//! assert!(matches!(sdp.attributes[0], Attribute::Group(_)));
//!
//! // Serialising gives CRLF text that parses back to the same value.
//! let text = sdp.to_string();
//! assert_eq!(parse(&text).unwrap(), sdp);
//!
//! // Errors say where and what.
//! let err = parse("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n")
//!     .unwrap_err();
//! assert_eq!(err.line, 5);
//! ```

mod attribute;
pub mod jsep;
mod model;
mod parse;
mod write;

pub use attribute::{
    Attribute, Candidate, CandidateType, Direction, Extmap, Fingerprint, Fmtp, FmtpParam, Group,
    H264Profile, ImageAttr, Level, Msid, MsidSemantic, ProfileLevelId, Rid, RidDirection, Rtcp,
    RtcpFb, Rtpmap, Sctpmap, Setup, Simulcast, SimulcastRid, Ssrc, SsrcGroup, TcpType, allowed_at,
};
pub use model::{
    Bandwidth, Connection, MediaDescription, MediaKind, Origin, SessionDescription, Timing,
};
pub use parse::{ParseError, ParseErrorKind, parse, parse_candidate};

/// The entry point of the `sdp_parse` fuzz target: parse, and when that succeeds, check that
/// serialising and parsing again gives the same value. Panics only on a round-trip mismatch
/// (a bug), never on bad input.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sdp) = parse(text) {
        let again = parse(&sdp.to_string());
        assert_eq!(again.as_ref(), Ok(&sdp), "round trip changed the session");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn attribute_stays_small() {
        // Attributes are moved into vectors by the hundred per parse: keep the enum compact
        // (large variants are boxed).
        let size = std::mem::size_of::<crate::Attribute>();
        assert!(size <= 88, "{size}");
    }
}

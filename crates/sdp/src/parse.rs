//! The parser: text → [`SessionDescription`], with errors that name the line.

use std::fmt::{self, Display, Formatter};

use crate::attribute::{self, Attribute, Level, parse_u16, parse_u64};
use crate::model::{
    Bandwidth, Connection, MediaDescription, MediaKind, Origin, SessionDescription, Timing,
};

/// A parse failure: where it happened and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number (for a missing line: one past the last line).
    pub line: usize,
    /// The offending line's text (empty for a missing line).
    pub text: String,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

/// What was wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The input holds no lines.
    Empty,
    /// The line is not `<letter>=<value>`.
    Syntax,
    /// A line type letter RFC 8866 does not define.
    UnknownLineType(char),
    /// A line type that is not allowed here (order, repetition, or level).
    UnexpectedLine {
        /// What the grammar allows at this point.
        expected: &'static str,
    },
    /// A mandatory line is absent.
    MissingLine(&'static str),
    /// A field of a `v`/`o`/`s`/`c`/`b`/`t`/`m` line is malformed.
    InvalidField {
        /// The line type (`"o="`, `"m="`, ...).
        line_type: &'static str,
        /// The field that was expected.
        expected: &'static str,
    },
    /// A typed attribute's value is malformed.
    InvalidAttribute {
        /// The attribute name.
        attribute: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// An attribute appears at a level its RFC does not allow.
    WrongLevel {
        /// The attribute name.
        attribute: String,
        /// Where it appeared.
        level: Level,
    },
}

impl Display for ParseErrorKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::Empty => f.write_str("empty session description"),
            ParseErrorKind::Syntax => f.write_str("expected <type>=<value>"),
            ParseErrorKind::UnknownLineType(c) => write!(f, "unknown line type '{c}'"),
            ParseErrorKind::UnexpectedLine { expected } => {
                write!(f, "line not allowed here; expected {expected}")
            }
            ParseErrorKind::MissingLine(l) => write!(f, "missing mandatory {l} line"),
            ParseErrorKind::InvalidField {
                line_type,
                expected,
            } => write!(f, "invalid {line_type} line; expected {expected}"),
            ParseErrorKind::InvalidAttribute {
                attribute,
                expected,
            } => write!(f, "invalid a={attribute}; expected {expected}"),
            ParseErrorKind::WrongLevel { attribute, level } => {
                write!(f, "a={attribute} is not allowed at {level}")
            }
        }
    }
}

impl Display for ParseError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} (`{}`)", self.line, self.kind, self.text)
    }
}

impl std::error::Error for ParseError {}

/// Rank of each session-level line type in RFC 8866 order.
fn session_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'v' => 0,
        b'o' => 1,
        b's' => 2,
        b'i' => 3,
        b'u' => 4,
        b'e' => 5,
        b'p' => 6,
        b'c' => 7,
        b'b' => 8,
        b't' | b'r' => 9,
        b'z' => 10,
        b'k' => 11,
        b'a' => 12,
        b'm' => 13,
        _ => return None,
    })
}

/// Rank of each media-level line type in RFC 8866 order.
fn media_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'i' => 1,
        b'c' => 2,
        b'b' => 3,
        b'k' => 4,
        b'a' => 5,
        b'm' => 6,
        _ => return None,
    })
}

struct Parser<'a> {
    number: usize,
    line: &'a str,
}

impl Parser<'_> {
    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError {
            line: self.number,
            text: self.line.to_string(),
            kind,
        }
    }

    fn field(&self, line_type: &'static str, expected: &'static str) -> ParseError {
        self.error(ParseErrorKind::InvalidField {
            line_type,
            expected,
        })
    }
}

fn parse_connection(p: &Parser<'_>, v: &str) -> Result<Connection, ParseError> {
    let mut it = attribute::split_on(v, b' ');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(n), Some(a), Some(addr), None)
            if attribute::is_token(n) && attribute::is_token(a) && !addr.is_empty() =>
        {
            Ok(Connection {
                nettype: n.to_string(),
                addrtype: a.to_string(),
                address: addr.to_string(),
            })
        }
        _ => Err(p.field("c=", "<nettype> <addrtype> <connection-address>")),
    }
}

fn parse_bandwidth(p: &Parser<'_>, v: &str) -> Result<Bandwidth, ParseError> {
    match attribute::split_byte(v, b':') {
        Some((t, b)) if attribute::is_token(t) => match parse_u64(b) {
            Some(bandwidth) => Ok(Bandwidth {
                bwtype: t.to_string(),
                bandwidth,
            }),
            None => Err(p.field("b=", "<bwtype>:<bandwidth in digits>")),
        },
        _ => Err(p.field("b=", "<bwtype>:<bandwidth>")),
    }
}

fn parse_origin(p: &Parser<'_>, v: &str) -> Result<Origin, ParseError> {
    let mut it = attribute::split_on(v, b' ');
    let username = it.next().filter(|u| !u.is_empty());
    let id = it.next().and_then(parse_u64);
    let version = it.next().and_then(parse_u64);
    let nettype = it.next().filter(|t| attribute::is_token(t));
    let addrtype = it.next().filter(|t| attribute::is_token(t));
    let address = it.next().filter(|a| !a.is_empty());
    match (username, id, version, nettype, addrtype, address, it.next()) {
        (Some(u), Some(i), Some(ver), Some(n), Some(a), Some(addr), None) => Ok(Origin {
            username: u.to_string(),
            session_id: i,
            session_version: ver,
            nettype: n.to_string(),
            addrtype: a.to_string(),
            address: addr.to_string(),
        }),
        (None, ..) => Err(p.field("o=", "<username>")),
        (_, None, ..) => Err(p.field("o=", "<sess-id> digits")),
        (_, _, None, ..) => Err(p.field("o=", "<sess-version> digits")),
        _ => Err(p.field(
            "o=",
            "<username> <sess-id> <sess-version> <nettype> <addrtype> <address>",
        )),
    }
}

fn parse_media_line(p: &Parser<'_>, v: &str) -> Result<MediaDescription, ParseError> {
    let mut it = attribute::split_on(v, b' ');
    let kind = it
        .next()
        .filter(|k| attribute::is_token(k))
        .ok_or_else(|| p.field("m=", "<media> token"))?;
    let ports = it.next().ok_or_else(|| p.field("m=", "<port>"))?;
    let (port, port_count) = match attribute::split_byte(ports, b'/') {
        Some((a, b)) => (parse_u16(a), Some(parse_u16(b))),
        None => (parse_u16(ports), None),
    };
    let port = port.ok_or_else(|| p.field("m=", "<port> 0-65535"))?;
    let port_count = match port_count {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return Err(p.field("m=", "<port>/<number of ports>")),
    };
    let protocol = it
        .next()
        .filter(|proto| {
            !proto.is_empty()
                && proto
                    .split('/')
                    .all(|part| part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        })
        .ok_or_else(|| p.field("m=", "<proto>"))?;
    let mut media = MediaDescription::new(MediaKind::from_token(kind), port, protocol);
    media.port_count = port_count;
    media
        .formats
        .reserve(v.bytes().filter(|&b| b == b' ').count().saturating_sub(2));
    for f in it {
        if !attribute::is_token(f) {
            return Err(p.field("m=", "<fmt> tokens separated by single spaces"));
        }
        media.formats.push(crate::model::format_token(f));
    }
    if media.formats.is_empty() {
        return Err(p.field("m=", "at least one <fmt>"));
    }
    if media.is_rtp()
        && !media
            .formats
            .iter()
            .all(|f| attribute::parse_u8(f).is_some_and(|pt| pt < 128))
    {
        return Err(p.field("m=", "RTP payload types 0-127"));
    }
    Ok(media)
}

/// Checks the format parameters of `telephone-event` payloads (RFC 4733 §2.4.1): a list of
/// event codes 0-255 or ascending ranges `a-b`, separated by commas.
fn valid_events(list: &str) -> bool {
    attribute::split_on(list, b',').all(|item| {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        match (attribute::parse_u8(a), attribute::parse_u8(b)) {
            (Some(a), Some(b)) => a <= b,
            _ => false,
        }
    })
}

/// Checks within one media section that relations between lines hold: `telephone-event`
/// fmtp values are event lists.
fn check_media(
    media: &MediaDescription,
    fmtp_lines: &[(usize, &str, usize)],
) -> Result<(), ParseError> {
    let has_events = media
        .rtpmaps()
        .any(|r| r.encoding.eq_ignore_ascii_case("telephone-event"));
    if !has_events {
        return Ok(());
    }
    for &(number, line, index) in fmtp_lines {
        let Some(Attribute::Fmtp(fmtp)) = media.attributes.get(index) else {
            continue;
        };
        let is_event = media
            .rtpmap(fmtp.payload_type)
            .is_some_and(|r| r.encoding.eq_ignore_ascii_case("telephone-event"));
        if !is_event {
            continue;
        }
        let ok = fmtp.params.len() == 1
            && matches!(&fmtp.params[..], [attribute::FmtpParam::Value(v)] if valid_events(v));
        if !ok {
            return Err(ParseError {
                line: number,
                text: line.to_string(),
                kind: ParseErrorKind::InvalidAttribute {
                    attribute: "fmtp",
                    expected: "telephone-event list of events 0-255 and ascending ranges",
                },
            });
        }
    }
    Ok(())
}

/// Parses a session description.
///
/// Lines may end in CRLF or LF; trailing empty lines are ignored. Line types must appear in
/// RFC 8866 order; `v=`, `o=`, `s=` and `t=` are mandatory. Known attributes are checked
/// against their grammar and level; unknown ones are kept verbatim.
///
/// Deviation from RFC 8866 accepted for interoperability: an empty `s=` line (used by the
/// RFC 4317 examples).
pub fn parse(input: &str) -> Result<SessionDescription, ParseError> {
    let body = input.trim_end_matches(['\r', '\n']);
    if body.is_empty() {
        return Err(ParseError {
            line: 1,
            text: String::new(),
            kind: ParseErrorKind::Empty,
        });
    }
    let mut session = SessionDescription {
        version: 0,
        origin: Origin {
            username: String::new(),
            session_id: 0,
            session_version: 0,
            nettype: String::new(),
            addrtype: String::new(),
            address: String::new(),
        },
        session_name: String::new(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: None,
        bandwidths: Vec::new(),
        times: Vec::new(),
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media: Vec::new(),
    };
    let mut seen_origin = false;
    let mut seen_name = false;
    let mut rank = 0u8;
    let mut in_media = false;
    // fmtp lines of the current media section: (line number, text, attribute index).
    let mut fmtp_lines: Vec<(usize, &str, usize)> = Vec::new();
    let mut last_number = 0;
    // Attributes of the current media section, moved into it (exactly sized) when the section
    // ends, so that the section's vector is allocated once.
    let mut media_attributes: Vec<Attribute> = Vec::new();

    let mut rest = body;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let raw = match find_newline(rest.as_bytes()) {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                line
            }
            None => std::mem::take(&mut rest),
        };
        last_number = number;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let p = Parser { number, line };
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' {
            return Err(p.error(ParseErrorKind::Syntax));
        }
        let t = bytes[0];
        let value = &line[2..];

        if number == 1 {
            if t != b'v' {
                return Err(p.error(ParseErrorKind::UnexpectedLine { expected: "v=0" }));
            }
            if value != "0" {
                return Err(p.field("v=", "version 0"));
            }
            continue;
        }

        if t == b'm' {
            if let Some(last) = session.media.last_mut() {
                // An exactly sized vector; the scratch keeps its capacity for the next one.
                let mut exact = Vec::with_capacity(media_attributes.len());
                exact.append(&mut media_attributes);
                last.attributes = exact;
                check_media(last, &fmtp_lines)?;
            } else {
                if !seen_name {
                    return Err(p.error(ParseErrorKind::UnexpectedLine {
                        expected: "o= and s= lines first",
                    }));
                }
                if session.times.is_empty() {
                    return Err(p.error(ParseErrorKind::UnexpectedLine {
                        expected: "a t= line before the first m= line",
                    }));
                }
            }
            fmtp_lines.clear();
            media_attributes.reserve(128);
            session.media.push(parse_media_line(&p, value)?);
            in_media = true;
            rank = 0;
            continue;
        }

        let this_rank = if in_media {
            media_rank(t)
        } else {
            session_rank(t)
        };
        let Some(this_rank) = this_rank else {
            return Err(if t.is_ascii_lowercase() && session_rank(t).is_none() {
                p.error(ParseErrorKind::UnknownLineType(t as char))
            } else if t.is_ascii_lowercase() {
                p.error(ParseErrorKind::UnexpectedLine {
                    expected: "i=, c=, b=, k=, a= or m= in a media section",
                })
            } else {
                p.error(ParseErrorKind::Syntax)
            });
        };
        if this_rank < rank {
            return Err(p.error(ParseErrorKind::UnexpectedLine {
                expected: "lines in RFC 8866 order (v o s i u e p c b t r z k a m)",
            }));
        }
        rank = this_rank;

        if let Some(media) = session.media.last_mut().filter(|_| in_media) {
            match t {
                b'i' => {
                    if media.title.is_some() {
                        return Err(p.error(ParseErrorKind::UnexpectedLine {
                            expected: "at most one i= per media section",
                        }));
                    }
                    media.title = Some(value.to_string());
                }
                b'c' => media.connections.push(parse_connection(&p, value)?),
                b'b' => media.bandwidths.push(parse_bandwidth(&p, value)?),
                b'k' => {
                    if media.key.is_some() {
                        return Err(p.error(ParseErrorKind::UnexpectedLine {
                            expected: "at most one k= per media section",
                        }));
                    }
                    media.key = Some(value.to_string());
                }
                _ => {
                    parse_attribute_line(&p, value, Level::Media, &mut media_attributes)?;
                    if let Some(Attribute::Fmtp(_)) = media_attributes.last() {
                        if fmtp_lines.capacity() == 0 {
                            fmtp_lines.reserve(32);
                        }
                        fmtp_lines.push((number, line, media_attributes.len() - 1));
                    }
                }
            }
            continue;
        }

        let once = |present: bool, what: &'static str| {
            if present {
                Err(p.error(ParseErrorKind::UnexpectedLine { expected: what }))
            } else {
                Ok(())
            }
        };
        match t {
            b'v' => once(true, "exactly one v= line, first")?,
            b'o' => {
                once(seen_origin, "exactly one o= line")?;
                session.origin = parse_origin(&p, value)?;
                seen_origin = true;
            }
            b's' => {
                once(seen_name, "exactly one s= line")?;
                if !seen_origin {
                    return Err(p.error(ParseErrorKind::UnexpectedLine {
                        expected: "o= before s=",
                    }));
                }
                session.session_name = value.to_string();
                seen_name = true;
            }
            _ if !seen_name => {
                return Err(p.error(ParseErrorKind::UnexpectedLine {
                    expected: "o= and s= lines first",
                }));
            }
            b'i' => {
                once(session.information.is_some(), "at most one i= line")?;
                session.information = Some(value.to_string());
            }
            b'u' => {
                once(session.uri.is_some(), "at most one u= line")?;
                session.uri = Some(value.to_string());
            }
            b'e' => session.emails.push(value.to_string()),
            b'p' => session.phones.push(value.to_string()),
            b'c' => {
                once(session.connection.is_some(), "at most one session c= line")?;
                session.connection = Some(parse_connection(&p, value)?);
            }
            b'b' => session.bandwidths.push(parse_bandwidth(&p, value)?),
            b't' => {
                let mut it = attribute::split_on(value, b' ');
                match (
                    it.next().and_then(parse_u64),
                    it.next().and_then(parse_u64),
                    it.next(),
                ) {
                    (Some(start), Some(stop), None) => session.times.push(Timing {
                        start,
                        stop,
                        repeats: Vec::new(),
                    }),
                    _ => return Err(p.field("t=", "<start-time> <stop-time>")),
                }
            }
            b'r' => match session.times.last_mut() {
                Some(t) if !value.is_empty() => t.repeats.push(value.to_string()),
                Some(_) => return Err(p.field("r=", "<repeat interval> <duration> <offsets>")),
                None => {
                    return Err(p.error(ParseErrorKind::UnexpectedLine {
                        expected: "r= only after a t= line",
                    }));
                }
            },
            b'z' => {
                once(session.time_zones.is_some(), "at most one z= line")?;
                session.time_zones = Some(value.to_string());
            }
            b'k' => {
                once(session.key.is_some(), "at most one k= line")?;
                session.key = Some(value.to_string());
            }
            _ => {
                if session.times.is_empty() {
                    return Err(p.error(ParseErrorKind::UnexpectedLine {
                        expected: "a t= line before session attributes",
                    }));
                }
                parse_attribute_line(&p, value, Level::Session, &mut session.attributes)?;
            }
        }
    }

    let missing = |what: &'static str| ParseError {
        line: last_number + 1,
        text: String::new(),
        kind: ParseErrorKind::MissingLine(what),
    };
    if !seen_origin {
        return Err(missing("o="));
    }
    if !seen_name {
        return Err(missing("s="));
    }
    if session.times.is_empty() {
        return Err(missing("t="));
    }
    if let Some(last) = session.media.last_mut() {
        last.attributes = media_attributes;
        check_media(last, &fmtp_lines)?;
    }
    Ok(session)
}

/// Position of the first `\n`, eight bytes at a time (lines are short, but there are many).
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const LF: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ LF;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| offset + i)
}

/// Parses an `a=` value and appends it to `out` (moved once, straight into the vector).
#[inline(always)]
fn parse_attribute_line(
    p: &Parser<'_>,
    value: &str,
    level: Level,
    out: &mut Vec<Attribute>,
) -> Result<(), ParseError> {
    match attribute::parse_attribute(value) {
        Ok(attr) if attribute::attribute_allowed_at(&attr, level) => {
            out.push(attr);
            Ok(())
        }
        Ok(attr) => Err(wrong_level(p, &attr, level)),
        Err(e) => Err(invalid_attribute(p, e)),
    }
}

#[cold]
fn wrong_level(p: &Parser<'_>, attr: &Attribute, level: Level) -> ParseError {
    p.error(ParseErrorKind::WrongLevel {
        attribute: attr.name().to_string(),
        level,
    })
}

#[cold]
fn invalid_attribute(p: &Parser<'_>, e: attribute::AttrError) -> ParseError {
    p.error(ParseErrorKind::InvalidAttribute {
        attribute: e.attribute,
        expected: e.expected,
    })
}

/// Parses one `a=candidate:` value (as carried by trickle ICE), e.g.
/// `"1 1 udp 2130706431 192.0.2.1 5000 typ host"`. The `candidate:` prefix is accepted too.
pub fn parse_candidate(value: &str) -> Result<attribute::Candidate, &'static str> {
    let value = value.strip_prefix("a=").unwrap_or(value);
    let value = value.strip_prefix("candidate:").unwrap_or(value);
    attribute::Candidate::parse(value)
}

#[cfg(test)]
mod tests {
    use super::find_newline;

    #[test]
    fn find_newline_matches_a_plain_search() {
        let text = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n\n\x8a\x0a\xff\x0b\n";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let slice = &text[start..end];
                assert_eq!(
                    find_newline(slice),
                    slice.iter().position(|&b| b == b'\n'),
                    "{start}..{end}"
                );
            }
        }
    }
}

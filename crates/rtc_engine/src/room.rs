//! Rooms, participants and tracks: identifiers, metadata and the pure membership/validation
//! logic the [`crate::Engine`] builds on.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use tympan_sdp::MediaKind;

/// A participant, unique within the server. Displays as `p<n>` (the wire form).
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug, Ord, PartialOrd)]
pub struct ParticipantId(pub u64);

/// A published track, unique within the server. Displays as `t<n>` (the wire form).
#[derive(Copy, Clone, Eq, PartialEq, Hash, Debug, Ord, PartialOrd)]
pub struct TrackId(pub u64);

/// Why an id string did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdParseError {
    /// The expected prefix (`'p'` or `'t'`).
    pub prefix: char,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad id (expected {}<number>): {}",
            self.prefix, self.reason
        )
    }
}

impl std::error::Error for IdParseError {}

fn parse_id(s: &str, prefix: char) -> Result<u64, IdParseError> {
    let err = |reason| IdParseError { prefix, reason };
    let digits = s
        .strip_prefix(prefix)
        .ok_or(err("wrong or missing prefix"))?;
    if digits.is_empty() {
        return Err(err("no digits"));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("not a decimal number"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(err("leading zero"));
    }
    digits.parse().map_err(|_| err("number too large"))
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl FromStr for ParticipantId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_id(s, 'p').map(ParticipantId)
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl FromStr for TrackId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_id(s, 't').map(TrackId)
    }
}

/// What a track carries, as the publisher announced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackSource {
    /// A microphone.
    Microphone,
    /// A camera.
    Camera,
    /// A screen share.
    Screen,
    /// Anything else, or not announced.
    Other,
}

impl TrackSource {
    /// The wire string: `"microphone"`, `"camera"`, `"screen"`, `"other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::Screen => "screen",
            TrackSource::Other => "other",
        }
    }
}

impl fmt::Display for TrackSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrackSource {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "microphone" => TrackSource::Microphone,
            "camera" => TrackSource::Camera,
            "screen" => TrackSource::Screen,
            "other" => TrackSource::Other,
            _ => {
                return Err(IdParseError {
                    prefix: 's',
                    reason: "not one of microphone, camera, screen, other",
                });
            }
        })
    }
}

/// A published track as the others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Server-wide id.
    pub id: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
    /// What it carries.
    pub source: TrackSource,
    /// The publisher's mute flag (user-interface state; media may still flow).
    pub muted: bool,
}

/// A participant as the others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// Server-wide id.
    pub id: ParticipantId,
    /// Display name (validated, trimmed).
    pub name: String,
    /// Published tracks, in publication order.
    pub tracks: Vec<TrackInfo>,
}

/// What one sending m-line of a client offer carries (the `tracks` list of an `offer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackAnnouncement {
    /// The m-line's mid.
    pub mid: String,
    /// Its media kind.
    pub kind: MediaKind,
    /// What it carries.
    pub source: TrackSource,
    /// Initial mute flag.
    pub muted: bool,
}

/// The reply to a successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The new participant's id.
    pub participant: ParticipantId,
    /// The room name.
    pub room: String,
    /// The others already in the room (not the joiner), with their tracks.
    pub participants: Vec<ParticipantInfo>,
    /// The room's last chat messages (at most [`crate::EngineConfig::chat_history`]), oldest
    /// first.
    pub chat_history: Vec<ChatEntry>,
    /// The identity given in [`crate::JoinOptions`] (e.g. from a token), if any.
    pub identity: Option<String>,
    /// Whether the participant may publish (see [`crate::JoinOptions`]).
    pub can_publish: bool,
    /// Whether the participant receives the others' tracks.
    pub can_subscribe: bool,
    /// The secret for [`crate::Engine::resume`] after a lost signalling connection (a new
    /// one with every join and resume).
    pub resume_token: String,
}

/// One chat message as the room remembers it (see [`Joined::chat_history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// The sender.
    pub from: ParticipantId,
    /// The sender's display name when it was sent.
    pub name: String,
    /// The text.
    pub text: String,
    /// The shell's wall-clock time when it was sent, ms since the Unix epoch.
    pub timestamp_ms: u64,
}

/// One sending m-line of a server offer: which participant's track it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedTrack {
    /// The m-line's mid in the recipient's peer connection.
    pub mid: String,
    /// The publisher.
    pub participant: ParticipantId,
    /// The track.
    pub track: TrackId,
    /// `Some(n)`: the m-line is last-N audio slot `n` (see [`crate::last_n`]); `participant`
    /// and `track` are then placeholders (0) and the shell writes them as null.
    pub slot: Option<u8>,
}

/// A track a participant publishes, with the mid that carries it in that participant's own
/// peer connection (see [`crate::Engine::published_tracks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTrack {
    /// The m-line's mid in the publisher's peer connection.
    pub mid: String,
    /// The track.
    pub track: TrackInfo,
}

/// Longest room or display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest chat text, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;

/// Why a room name, display name or chat text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameProblem {
    Empty,
    TooLong,
    BadChar(char),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("is empty"),
            NameProblem::TooLong => f.write_str("is too long"),
            NameProblem::BadChar(c) => write!(f, "contains the forbidden character {c:?}"),
        }
    }
}

/// A room name: 1–64 characters from `A–Z a–z 0–9 - _ .`.
pub(crate) fn validate_room_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameProblem::BadChar(c));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameProblem::TooLong);
    }
    Ok(())
}

/// A display name: trimmed, then 1–64 characters, no control characters. Returns the trimmed
/// name.
pub(crate) fn validate_display_name(name: &str) -> Result<&str, NameProblem> {
    let name = name.trim();
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameProblem::BadChar(c));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameProblem::TooLong);
    }
    Ok(name)
}

/// A chat text: 1–2000 characters (control characters other than newline and tab refused).
pub(crate) fn validate_chat(text: &str) -> Result<(), NameProblem> {
    if text.trim().is_empty() {
        return Err(NameProblem::Empty);
    }
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(NameProblem::TooLong);
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(NameProblem::BadChar(c));
    }
    Ok(())
}

/// One room: its members in join order.
#[derive(Debug, Default)]
pub(crate) struct Room {
    /// Members, ordered by id (ids grow with join order).
    pub(crate) members: BTreeMap<ParticipantId, ()>,
    /// The last chat messages, oldest first.
    pub(crate) chat_history: VecDeque<ChatEntry>,
    /// Each member's open room-data channels.
    pub(crate) data_channels: BTreeMap<ParticipantId, crate::engine::room_data::DataChannels>,
}

impl Room {
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn insert(&mut self, p: ParticipantId) {
        self.members.insert(p, ());
    }

    pub(crate) fn remove(&mut self, p: ParticipantId) -> bool {
        self.data_channels.remove(&p);
        self.members.remove(&p).is_some()
    }

    /// Remembers a chat message, keeping at most `limit` (the oldest go first).
    pub(crate) fn remember_chat(&mut self, entry: ChatEntry, limit: usize) {
        if limit == 0 {
            return;
        }
        while self.chat_history.len() >= limit {
            self.chat_history.pop_front();
        }
        self.chat_history.push_back(entry);
    }

    /// Members other than `p`, in join order.
    pub(crate) fn others(&self, p: ParticipantId) -> impl Iterator<Item = ParticipantId> + '_ {
        self.members.keys().copied().filter(move |&q| q != p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_wire_form() {
        for n in [0u64, 1, 7, 42, u64::MAX] {
            let p = ParticipantId(n);
            assert_eq!(p.to_string().parse::<ParticipantId>(), Ok(p));
            let t = TrackId(n);
            assert_eq!(t.to_string().parse::<TrackId>(), Ok(t));
        }
        assert_eq!(ParticipantId(3).to_string(), "p3");
        assert_eq!(TrackId(7).to_string(), "t7");
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        for bad in [
            "",
            "p",
            "t3",
            "P3",
            "p-1",
            "p+1",
            "p 1",
            "p01",
            "p1x",
            "p18446744073709551616",
        ] {
            let e = bad.parse::<ParticipantId>().unwrap_err();
            assert_eq!(e.prefix, 'p', "{bad}");
        }
        assert!("p3".parse::<TrackId>().is_err());
    }

    #[test]
    fn room_names_follow_the_documented_alphabet() {
        assert!(validate_room_name("spanish-b1").is_ok());
        assert!(validate_room_name("a.b_C-9").is_ok());
        assert_eq!(validate_room_name(""), Err(NameProblem::Empty));
        assert_eq!(validate_room_name("a b"), Err(NameProblem::BadChar(' ')));
        assert_eq!(validate_room_name("ñ"), Err(NameProblem::BadChar('ñ')));
        assert!(validate_room_name(&"x".repeat(64)).is_ok());
        assert_eq!(
            validate_room_name(&"x".repeat(65)),
            Err(NameProblem::TooLong)
        );
    }

    #[test]
    fn display_names_are_trimmed_and_counted_in_characters() {
        assert_eq!(validate_display_name("  Ana "), Ok("Ana"));
        assert_eq!(validate_display_name("   "), Err(NameProblem::Empty));
        assert_eq!(
            validate_display_name("a\u{7}b"),
            Err(NameProblem::BadChar('\u{7}'))
        );
        // 64 two-byte characters are fine, 65 are not.
        assert!(validate_display_name(&"é".repeat(64)).is_ok());
        assert_eq!(
            validate_display_name(&"é".repeat(65)),
            Err(NameProblem::TooLong)
        );
    }

    #[test]
    fn chat_text_limits() {
        assert!(validate_chat("¡Hola!\nqué tal").is_ok());
        assert_eq!(validate_chat(""), Err(NameProblem::Empty));
        assert!(validate_chat(&"ü".repeat(2000)).is_ok());
        assert_eq!(validate_chat(&"ü".repeat(2001)), Err(NameProblem::TooLong));
        assert_eq!(validate_chat("a\u{0}"), Err(NameProblem::BadChar('\u{0}')));
    }

    #[test]
    fn room_membership() {
        let mut r = Room::default();
        assert!(r.is_empty());
        r.insert(ParticipantId(2));
        r.insert(ParticipantId(1));
        r.insert(ParticipantId(3));
        assert_eq!(r.len(), 3);
        let others: Vec<_> = r.others(ParticipantId(2)).collect();
        assert_eq!(others, vec![ParticipantId(1), ParticipantId(3)]);
        assert!(r.remove(ParticipantId(2)));
        assert!(!r.remove(ParticipantId(2)));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn chat_history_keeps_the_newest_up_to_the_limit() {
        let entry = |n: u64| ChatEntry {
            from: ParticipantId(1),
            name: "Ana".into(),
            text: format!("m{n}"),
            timestamp_ms: n,
        };
        let mut r = Room::default();
        for n in 0..5 {
            r.remember_chat(entry(n), 3);
        }
        let texts: Vec<&str> = r.chat_history.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["m2", "m3", "m4"]);
        let mut off = Room::default();
        off.remember_chat(entry(1), 0);
        assert!(off.chat_history.is_empty(), "a limit of 0 keeps nothing");
    }
}

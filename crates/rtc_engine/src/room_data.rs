//! Room data: small JSON messages between the participants of a room, relayed by the server
//! over each participant's data channels (not the signalling WebSocket).
//!
//! A client opens up to two data channels to the server on its peer connection:
//! [`RELIABLE_LABEL`] (ordered, reliable) and [`LOSSY_LABEL`] (unordered, `maxRetransmits: 0`).
//! A text message on one of them is an envelope
//! `{"to": ["p4", ...], "topic": "...", "data": <any JSON>}` (`to` and `topic` optional; no
//! `to` = everyone else in the room). Each recipient gets
//! `{"from": "p3", "topic": "...", "data": ...}` on its own channel of the same
//! [`DataKind`]; `from` is always the server's, whatever the client wrote. The sender never
//! receives its own message; recipients without that kind of channel open are skipped.
//! A refused message is answered on the sender's channel with
//! `{"error": "too_large" | "bad_message" | "unknown_participant", "message": "..."}`.
//!
//! The pure part ([`parse_envelope`], [`delivery_json`]) is public so that other shells can
//! reuse it; the [`crate::Engine`] wires it to the peers' data-channel events.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Engine;
use crate::peer::ChannelId;
use crate::room::ParticipantId;

/// Label of the reliable, ordered room-data channel.
pub const RELIABLE_LABEL: &str = "tympan-data";
/// Label of the lossy room-data channel (unordered, `maxRetransmits: 0`).
pub const LOSSY_LABEL: &str = "tympan-data-lossy";
/// Longest `topic`, in characters.
pub const MAX_TOPIC_CHARS: usize = 64;
/// Default of [`crate::EngineConfig::max_data_message`]: 16 KiB.
pub const DEFAULT_MAX_DATA_MESSAGE: usize = 16 * 1024;

/// Which of the two room-data channels a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// [`RELIABLE_LABEL`]: ordered and reliable.
    Reliable,
    /// [`LOSSY_LABEL`]: unordered, no retransmissions.
    Lossy,
}

impl DataKind {
    /// The channel label of this kind.
    pub fn label(self) -> &'static str {
        match self {
            DataKind::Reliable => RELIABLE_LABEL,
            DataKind::Lossy => LOSSY_LABEL,
        }
    }

    /// The kind a channel label stands for (`None`: not a room-data channel).
    pub fn from_label(label: &str) -> Option<DataKind> {
        match label {
            RELIABLE_LABEL => Some(DataKind::Reliable),
            LOSSY_LABEL => Some(DataKind::Lossy),
            _ => None,
        }
    }
}

/// Why a room-data message was refused (the `error` field of the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataErrorCode {
    /// Larger than [`crate::EngineConfig::max_data_message`].
    TooLarge,
    /// Binary, not UTF-8, not JSON, not an envelope object, or a field is wrong.
    BadMessage,
    /// A `to` entry is not a participant of the sender's room.
    UnknownParticipant,
}

impl DataErrorCode {
    /// The wire string: `"too_large"`, `"bad_message"`, `"unknown_participant"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataErrorCode::TooLarge => "too_large",
            DataErrorCode::BadMessage => "bad_message",
            DataErrorCode::UnknownParticipant => "unknown_participant",
        }
    }
}

impl fmt::Display for DataErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused room-data message: a code for programs, a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// What kind of problem.
    pub code: DataErrorCode,
    /// What exactly was wrong (field, offset, limit).
    pub message: String,
}

impl DataError {
    fn new(code: DataErrorCode, message: impl Into<String>) -> Self {
        DataError {
            code,
            message: message.into(),
        }
    }

    /// The reply sent back on the sender's channel:
    /// `{"error": "<code>", "message": "<message>"}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            error: &'a str,
            message: &'a str,
        }
        serde_json::to_string(&Wire {
            error: self.code.as_str(),
            message: &self.message,
        })
        .unwrap_or_else(|_| format!(r#"{{"error":"{}","message":""}}"#, self.code.as_str()))
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for DataError {}

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// Everyone else in the room (`to` absent or `null`).
    Everyone,
    /// Only these participants (deduplicated, in the order given).
    Only(Vec<ParticipantId>),
}

/// A parsed client envelope; `data` borrows the raw JSON text of the message.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The recipients.
    pub to: Recipients,
    /// The optional topic (at most [`MAX_TOPIC_CHARS`] characters).
    pub topic: Option<String>,
    /// The payload, exactly as the client wrote it.
    pub data: &'a RawValue,
}

/// The client's envelope as JSON. Unknown fields (a forged `from`, say) are ignored.
#[derive(Deserialize)]
struct WireEnvelope<'a> {
    #[serde(default)]
    to: Option<Vec<String>>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// Parses one data-channel message (`binary` as the channel reported it) as a room-data
/// envelope of at most `max_len` bytes. Participant ids in `to` are checked for form only
/// (membership is the engine's business).
///
/// ```
/// use tympan_rtc_engine::{DataErrorCode, ParticipantId, Recipients, delivery_json, parse_envelope};
///
/// let msg = br#"{"to": ["p4"], "from": "p9", "topic": "hand", "data": {"raised": true}}"#;
/// let env = parse_envelope(msg, false, 16 * 1024).unwrap();
/// assert_eq!(env.to, Recipients::Only(vec![ParticipantId(4)]));
/// // What p4 receives when p3 sent it: the client's `from` is gone.
/// assert_eq!(
///     delivery_json(ParticipantId(3), env.topic.as_deref(), env.data),
///     r#"{"from":"p3","topic":"hand","data":{"raised": true}}"#
/// );
/// let err = parse_envelope(b"{\"data\": 1", false, 16 * 1024).unwrap_err();
/// assert_eq!(err.code, DataErrorCode::BadMessage);
/// ```
pub fn parse_envelope(
    message: &[u8],
    binary: bool,
    max_len: usize,
) -> Result<Envelope<'_>, DataError> {
    if message.len() > max_len {
        return Err(DataError::new(
            DataErrorCode::TooLarge,
            format!(
                "message of {} bytes exceeds the limit of {max_len} bytes",
                message.len()
            ),
        ));
    }
    if binary {
        return Err(DataError::new(
            DataErrorCode::BadMessage,
            "binary message: room data is a JSON text message",
        ));
    }
    let text = std::str::from_utf8(message).map_err(|e| {
        DataError::new(
            DataErrorCode::BadMessage,
            format!("not UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    let wire: WireEnvelope<'_> = serde_json::from_str(text).map_err(|e| {
        DataError::new(
            DataErrorCode::BadMessage,
            format!(
                "not a room-data envelope ({{\"to\"?, \"topic\"?, \"data\"}}) at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let to = match wire.to {
        None => Recipients::Everyone,
        Some(list) if list.is_empty() => {
            return Err(DataError::new(
                DataErrorCode::BadMessage,
                "field `to` is an empty list: leave it out to send to everyone",
            ));
        }
        Some(list) => {
            let mut ids: Vec<ParticipantId> = Vec::with_capacity(list.len());
            for (i, s) in list.iter().enumerate() {
                let id: ParticipantId = s.parse().map_err(|e| {
                    DataError::new(
                        DataErrorCode::UnknownParticipant,
                        format!("`to[{i}]` ({s:?}) is not a participant id: {e}"),
                    )
                })?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Recipients::Only(ids)
        }
    };
    if let Some(topic) = &wire.topic
        && topic.chars().count() > MAX_TOPIC_CHARS
    {
        return Err(DataError::new(
            DataErrorCode::BadMessage,
            format!("field `topic` is longer than {MAX_TOPIC_CHARS} characters"),
        ));
    }
    Ok(Envelope {
        to,
        topic: wire.topic,
        data: wire.data,
    })
}

/// The message each recipient gets: `{"from": "<from>", "topic": ..., "data": ...}`
/// (`topic` left out when the sender gave none; `data` exactly as the sender wrote it).
pub fn delivery_json(from: ParticipantId, topic: Option<&str>, data: &RawValue) -> String {
    #[derive(Serialize)]
    struct Wire<'a> {
        from: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<&'a str>,
        data: &'a RawValue,
    }
    serde_json::to_string(&Wire {
        from: from.to_string(),
        topic,
        data,
    })
    // Serializing strings and an already-valid raw value cannot fail.
    .unwrap_or_default()
}

/// The room-data channels one participant has open.
#[derive(Debug, Default, Clone)]
pub(crate) struct DataChannels {
    open: Vec<(ChannelId, DataKind)>,
}

impl DataChannels {
    fn open(&mut self, channel: ChannelId, kind: DataKind) {
        self.open.retain(|(c, _)| *c != channel);
        self.open.push((channel, kind));
    }

    fn close(&mut self, channel: ChannelId) {
        self.open.retain(|(c, _)| *c != channel);
    }

    fn kind_of(&self, channel: ChannelId) -> Option<DataKind> {
        self.open
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, k)| *k)
    }

    /// The newest open channel of `kind`.
    fn channel_for(&self, kind: DataKind) -> Option<ChannelId> {
        self.open
            .iter()
            .rev()
            .find(|(_, k)| *k == kind)
            .map(|(c, _)| *c)
    }
}

impl Engine {
    /// A data channel of `pid` opened: remembered when its label is a room-data label.
    pub(super) fn room_data_opened(&mut self, pid: ParticipantId, channel: ChannelId, label: &str) {
        let Some(kind) = DataKind::from_label(label) else {
            return;
        };
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.data_channels.entry(pid).or_default().open(channel, kind);
            tracing::debug!(participant = %pid, label, "room-data channel open");
        }
    }

    /// A data channel of `pid` closed.
    pub(super) fn room_data_closed(&mut self, pid: ParticipantId, channel: ChannelId) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        if let Some(c) = self
            .rooms
            .get_mut(&p.room)
            .and_then(|r| r.data_channels.get_mut(&pid))
        {
            c.close(channel);
        }
    }

    /// A message on one of `pid`'s data channels: relayed to the room when it is a valid
    /// envelope on a room-data channel, answered with an error otherwise. Messages on other
    /// channels are ignored.
    pub(super) fn room_data_message(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        channel: ChannelId,
        message: &[u8],
        binary: bool,
    ) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let Some(r) = self.rooms.get(&p.room) else {
            return;
        };
        let Some(kind) = r.data_channels.get(&pid).and_then(|c| c.kind_of(channel)) else {
            return;
        };
        let plan = parse_envelope(message, binary, self.config.max_data_message).and_then(|env| {
            let targets: Vec<ParticipantId> = match &env.to {
                Recipients::Everyone => r.others(pid).collect(),
                Recipients::Only(ids) => {
                    if let Some(bad) = ids.iter().find(|q| !r.members.contains_key(q)) {
                        return Err(DataError::new(
                            DataErrorCode::UnknownParticipant,
                            format!("{bad} is not in room {}", p.room),
                        ));
                    }
                    ids.iter().copied().filter(|q| *q != pid).collect()
                }
            };
            let sends: Vec<(ParticipantId, ChannelId)> = targets
                .into_iter()
                .filter_map(|q| {
                    r.data_channels
                        .get(&q)
                        .and_then(|c| c.channel_for(kind))
                        .map(|c| (q, c))
                })
                .collect();
            Ok((delivery_json(pid, env.topic.as_deref(), env.data), sends))
        });
        match plan {
            Ok((text, sends)) => {
                for (q, c) in sends {
                    let Some(peer) = self.participants.get_mut(&q).and_then(|x| x.peer.as_mut())
                    else {
                        continue;
                    };
                    if let Err(e) = peer.send_data(now, c, text.as_bytes(), false) {
                        tracing::debug!(from = %pid, to = %q, error = %e, "room data not sent");
                    }
                }
            }
            Err(e) => {
                tracing::debug!(participant = %pid, error = %e, "room data refused");
                if let Some(peer) = self
                    .participants
                    .get_mut(&pid)
                    .and_then(|x| x.peer.as_mut())
                    && let Err(e) = peer.send_data(now, channel, e.to_json().as_bytes(), false)
                {
                    tracing::debug!(participant = %pid, error = %e, "room-data error not sent");
                }
            }
        }
    }
}

/// Fuzz entry point (`fuzz/fuzz_targets/room_data.rs`): the first byte's low bit is the
/// binary flag, the rest is the message. Parses it as an envelope with the default size
/// limit and checks the invariants: an accepted envelope's delivery is JSON with the server's
/// `from` and the same `data`; a refusal's reply is JSON with a known code. Returns whether the
/// envelope was accepted. Panics when an invariant breaks.
#[doc(hidden)]
pub fn fuzz_room_data(input: &[u8]) -> bool {
    let Some((&flags, message)) = input.split_first() else {
        return false;
    };
    let from = ParticipantId(1);
    match parse_envelope(message, flags & 1 == 1, DEFAULT_MAX_DATA_MESSAGE) {
        Ok(env) => {
            #[derive(Deserialize)]
            struct Delivered<'a> {
                from: String,
                #[serde(default)]
                topic: Option<String>,
                #[serde(borrow)]
                data: &'a RawValue,
            }
            let out = delivery_json(from, env.topic.as_deref(), env.data);
            let d: Delivered<'_> = serde_json::from_str(&out).expect("delivery is JSON");
            assert_eq!(d.from, "p1", "from is the server's");
            assert_eq!(d.data.get(), env.data.get(), "data relayed unchanged");
            assert_eq!(d.topic, env.topic);
            if let Some(t) = &env.topic {
                assert!(t.chars().count() <= MAX_TOPIC_CHARS);
            }
            if let Recipients::Only(ids) = &env.to {
                assert!(!ids.is_empty());
            }
            true
        }
        Err(e) => {
            let v: serde_json::Value = serde_json::from_str(&e.to_json()).expect("error is JSON");
            assert!(
                ["too_large", "bad_message", "unknown_participant"]
                    .contains(&v["error"].as_str().unwrap_or("")),
                "{v}"
            );
            assert!(!e.message.is_empty());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Envelope<'_>, DataError> {
        parse_envelope(s.as_bytes(), false, DEFAULT_MAX_DATA_MESSAGE)
    }

    #[test]
    fn labels_map_to_kinds() {
        for kind in [DataKind::Reliable, DataKind::Lossy] {
            assert_eq!(DataKind::from_label(kind.label()), Some(kind));
        }
        assert_eq!(DataKind::from_label("chat"), None);
        assert_eq!(DataKind::from_label(""), None);
    }

    #[test]
    fn envelopes_parse_and_deliveries_carry_the_servers_from() {
        let env = parse(
            r#"{"from":"p99","to":["p4","p2","p4"],"topic":"hand","data":{"b":1,"a":[true,null]}}"#,
        )
        .unwrap();
        assert_eq!(
            env.to,
            Recipients::Only(vec![ParticipantId(4), ParticipantId(2)])
        );
        assert_eq!(env.topic.as_deref(), Some("hand"));
        assert_eq!(
            env.data.get(),
            r#"{"b":1,"a":[true,null]}"#,
            "kept verbatim"
        );
        let out = delivery_json(ParticipantId(3), env.topic.as_deref(), env.data);
        assert_eq!(
            out,
            r#"{"from":"p3","topic":"hand","data":{"b":1,"a":[true,null]}}"#
        );
        let env = parse(r#"{"data":null,"to":null}"#).unwrap();
        assert_eq!(env.to, Recipients::Everyone);
        assert_eq!(
            delivery_json(ParticipantId(1), None, env.data),
            r#"{"from":"p1","data":null}"#
        );
    }

    #[test]
    fn refusals_say_what_was_wrong() {
        let code = |s: &str| parse(s).unwrap_err().code;
        assert_eq!(code("{nope"), DataErrorCode::BadMessage);
        assert_eq!(code("[1]"), DataErrorCode::BadMessage);
        assert_eq!(
            code(r#"{"to":["p1"]}"#),
            DataErrorCode::BadMessage,
            "no data"
        );
        assert_eq!(code(r#"{"to":[],"data":1}"#), DataErrorCode::BadMessage);
        assert_eq!(code(r#"{"to":"p1","data":1}"#), DataErrorCode::BadMessage);
        assert_eq!(code(r#"{"topic":7,"data":1}"#), DataErrorCode::BadMessage);
        assert_eq!(
            code(r#"{"to":["bob"],"data":1}"#),
            DataErrorCode::UnknownParticipant
        );
        let long = format!(r#"{{"topic":"{}","data":1}}"#, "é".repeat(65));
        assert_eq!(code(&long), DataErrorCode::BadMessage);
        let ok = format!(r#"{{"topic":"{}","data":1}}"#, "é".repeat(64));
        assert!(parse(&ok).is_ok());
        let e = parse_envelope(b"{\"data\":1}", true, 100).unwrap_err();
        assert_eq!(e.code, DataErrorCode::BadMessage);
        let e = parse_envelope(&[b'"', 0xff, b'"'], false, 100).unwrap_err();
        assert!(e.message.contains("byte 1"), "{e}");
        let e = parse_envelope(&[b' '; 101], false, 100).unwrap_err();
        assert_eq!(e.code, DataErrorCode::TooLarge);
        assert!(
            e.message.contains("101") && e.message.contains("100"),
            "{e}"
        );
        let e = parse(r#"{"data":1,"to":["p1",]}"#).unwrap_err();
        assert!(e.message.contains("column"), "{e}");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"], "bad_message");
        assert_eq!(v["message"], e.message.as_str());
    }

    #[test]
    fn deep_nesting_is_an_error_or_relayed_never_a_crash() {
        // Raw values and ignored fields are skipped without recursion: relayed as they are.
        let deep = format!(r#"{{"data":{}1{}}}"#, "[".repeat(8000), "]".repeat(8000));
        assert!(fuzz_room_data(&[&[0u8][..], deep.as_bytes()].concat()));
        let deep_unknown = format!(
            r#"{{"x":{}1{},"data":2}}"#,
            "[".repeat(8000),
            "]".repeat(8000)
        );
        assert_eq!(parse(&deep_unknown).unwrap().data.get(), "2");
        // Too deep for the limit: refused by size before parsing.
        let deeper = format!(r#"{{"data":{}1{}}}"#, "[".repeat(9000), "]".repeat(9000));
        assert_eq!(parse(&deeper).unwrap_err().code, DataErrorCode::TooLarge);
    }
}

//! The JSON signalling protocol of `docs/signalling.md`, version 1: parsing client messages
//! into typed requests (with typed errors) and serializing server messages.
//!
//! Parsing is two-step: the frame must be a JSON object (else [`ProtocolError::BadJson`]),
//! then its `id` and `type` are read and the body is deserialized for that type (else
//! [`ProtocolError::BadMessage`], carrying the `id` when it could be read so the error reply
//! can echo it). Unknown fields are ignored, for forward compatibility.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this server speaks (`welcome.version`, `join.version`).
pub const PROTOCOL_VERSION: u64 = 1;

/// The largest text frame accepted, in bytes; larger frames get `too_large`.
pub const MAX_FRAME_BYTES: usize = 65_536;

/// Media kind of a track, as written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `"audio"`
    Audio,
    /// `"video"`
    Video,
}

/// What a track carries, as written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `"microphone"`
    Microphone,
    /// `"camera"`
    Camera,
    /// `"screen"`
    Screen,
    /// `"other"` (the default when absent)
    #[default]
    Other,
}

/// One entry of an `offer`'s `tracks`: what a sending m-line carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TrackAnnouncementJson {
    /// The m-line's `a=mid`.
    pub mid: String,
    /// `"audio"` or `"video"`.
    pub kind: Kind,
    /// Defaults to `"other"`.
    #[serde(default)]
    pub source: Source,
    /// Defaults to `false`.
    #[serde(default)]
    pub muted: bool,
}

/// A client request, by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Enter a room.
    Join {
        /// Must be [`PROTOCOL_VERSION`].
        version: u64,
        /// Room name.
        room: String,
        /// Display name.
        name: String,
        /// Access token (JWT) of a token-gated server.
        #[serde(default)]
        token: Option<String>,
        /// Resume token of an earlier `joined`: take that participant back.
        #[serde(default)]
        resume: Option<String>,
    },
    /// The client's SDP offer.
    Offer {
        /// SDP text.
        sdp: String,
        /// What each sending m-line carries.
        #[serde(default)]
        tracks: Vec<TrackAnnouncementJson>,
    },
    /// The client's answer to a server offer.
    Answer {
        /// The number of the server offer it answers.
        negotiation: u64,
        /// SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate; `null`/`""` = end of candidates.
    Candidate {
        /// `candidate:...` text.
        #[serde(default)]
        candidate: Option<String>,
        /// The m-line it belongs to (informational: the server bundles everything).
        #[serde(default)]
        sdp_mid: Option<String>,
    },
    /// Set the mute flag of one of the client's tracks.
    Mute {
        /// Track id (`"t7"`).
        track: String,
        /// New state.
        muted: bool,
    },
    /// A chat message to the room.
    Chat {
        /// The text.
        text: String,
    },
    /// Leave the room; the server then closes the socket.
    Leave,
    /// Liveness check; allowed before `join`.
    Ping,
}

impl Request {
    /// The `type` string of this request, for logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            Request::Join { .. } => "join",
            Request::Offer { .. } => "offer",
            Request::Answer { .. } => "answer",
            Request::Candidate { .. } => "candidate",
            Request::Mute { .. } => "mute",
            Request::Chat { .. } => "chat",
            Request::Leave => "leave",
            Request::Ping => "ping",
        }
    }
}

/// A parsed client message: the optional request id and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// The client's request id, echoed in the reply.
    pub id: Option<u64>,
    /// The request.
    pub request: Request,
}

/// Why a client frame was rejected before it reached the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// Not a JSON object (`bad_json`); the reply carries no id.
    BadJson(String),
    /// A JSON object, but not a valid message (`bad_message`).
    BadMessage {
        /// The request id, when it could be read.
        id: Option<u64>,
        /// What was wrong, naming the field.
        message: String,
    },
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::BadJson(m) => write!(f, "bad_json: {m}"),
            ProtocolError::BadMessage { message, .. } => write!(f, "bad_message: {message}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Parses one client text frame.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ProtocolError::BadJson(format!(
            "not JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = &value else {
        return Err(ProtocolError::BadJson(
            "the frame is JSON but not an object".into(),
        ));
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(id) => Some(id),
            None => {
                return Err(ProtocolError::BadMessage {
                    id: None,
                    message: "field `id` must be a non-negative integer".into(),
                });
            }
        },
    };
    match map.get("type") {
        Some(Value::String(_)) => {}
        Some(_) => {
            return Err(ProtocolError::BadMessage {
                id,
                message: "field `type` must be a string".into(),
            });
        }
        None => {
            return Err(ProtocolError::BadMessage {
                id,
                message: "missing field `type`".into(),
            });
        }
    }
    let request =
        serde_json::from_value::<Request>(value).map_err(|e| ProtocolError::BadMessage {
            id,
            message: e.to_string(),
        })?;
    Ok(ClientMessage { id, request })
}

/// A track as sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackJson {
    /// `"t7"`.
    pub id: String,
    /// Media kind.
    pub kind: Kind,
    /// What it carries.
    pub source: Source,
    /// Mute flag.
    pub muted: bool,
}

/// A participant as sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantJson {
    /// `"p3"`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Published tracks.
    pub tracks: Vec<TrackJson>,
}

/// One entry of the `tracks` of an `answer` reply: one of the client's own tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedTrackJson {
    /// The client's m-line.
    pub mid: String,
    /// The track id the server gave it.
    pub track_id: String,
}

/// One entry of a server offer's `tracks`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OfferedTrackJson {
    /// The server's m-line.
    pub mid: String,
    /// Last-N audio slot number (absent for ordinary tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u8>,
    /// Whose track it carries (null for a slot: see `audio_slots`).
    pub participant_id: Option<String>,
    /// Which track (null for a slot).
    pub track_id: Option<String>,
}

/// A level on the protocol's 0.0 … 1.0 scale, kept in thousandths so that messages stay
/// `Eq`; serialized as a JSON number (e.g. `0.62`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(pub u16);

impl Level {
    /// From a 0.0 … 1.0 level (clamped, rounded to 0.001).
    pub fn from_f32(level: f32) -> Self {
        Level((level.clamp(0.0, 1.0) * 1000.0).round() as u16)
    }
}

impl Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 1000.0)
    }
}

/// One entry of `active_speakers`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SpeakerJson {
    /// Who.
    pub participant_id: String,
    /// Smoothed level, 0.0 (−127 dBov) … 1.0 (0 dBov).
    pub level: Level,
}

/// One entry of `audio_slots`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AudioSlotJson {
    /// Slot number (as in the offer's `tracks`).
    pub slot: u8,
    /// Whose audio it carries now (null: nobody).
    pub participant_id: Option<String>,
}

/// One entry of `joined.chat_history`: a chat message sent before you joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatEntryJson {
    /// Sender id.
    pub from: String,
    /// Sender display name.
    pub name: String,
    /// Text.
    pub text: String,
    /// Server wall-clock when it was sent, ms since the Unix epoch.
    pub ts: u64,
}

/// A server message (reply or event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every socket.
    Welcome {
        /// [`PROTOCOL_VERSION`].
        version: u64,
        /// `"tympan/<version>"`.
        server: String,
    },
    /// Reply to `join`.
    Joined {
        /// Request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// Your participant id.
        participant_id: String,
        /// Room name.
        room: String,
        /// The others already in the room.
        participants: Vec<ParticipantJson>,
        /// The room's last chat messages, oldest first.
        chat_history: Vec<ChatEntryJson>,
        /// Secret for `join {resume}` after a dropped connection.
        resume_token: String,
        /// True when this reply resumed an earlier participant.
        resumed: bool,
        /// The token's identity (`sub`), `null` in open mode.
        identity: Option<String>,
        /// May publish.
        can_publish: bool,
        /// Receives the others' tracks.
        can_subscribe: bool,
    },
    /// Reply to a client `offer`, or (with `negotiation` and no id) ... see [`ServerMessage::Offer`].
    Answer {
        /// Request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// SDP text.
        sdp: String,
        /// The client's own published tracks: which server track id each of its sending
        /// m-lines became (for `mute`).
        tracks: Vec<PublishedTrackJson>,
    },
    /// Generic success reply.
    Ok {
        /// Request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Error reply.
    Error {
        /// Request id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// Stable error code (see docs/signalling.md).
        code: String,
        /// Human-readable detail.
        message: String,
    },
    /// Someone entered the room.
    ParticipantJoined {
        /// Who.
        participant: ParticipantJson,
    },
    /// Someone left the room.
    ParticipantLeft {
        /// Who.
        participant_id: String,
        /// `left`, `disconnected` or `timeout`.
        reason: String,
    },
    /// Someone's tracks or mute state changed.
    ParticipantUpdated {
        /// The new state.
        participant: ParticipantJson,
    },
    /// Someone published a track.
    TrackPublished {
        /// Whose.
        participant_id: String,
        /// The track.
        track: TrackJson,
    },
    /// Someone unpublished a track.
    TrackUnpublished {
        /// Whose.
        participant_id: String,
        /// Which.
        track_id: String,
    },
    /// A server offer (renegotiation).
    Offer {
        /// Its number, repeated in the client's `answer`.
        negotiation: u64,
        /// SDP text.
        sdp: String,
        /// What each sending m-line carries.
        tracks: Vec<OfferedTrackJson>,
    },
    /// A chat message.
    Chat {
        /// Sender id.
        from: String,
        /// Sender display name.
        name: String,
        /// Text.
        text: String,
        /// Server wall-clock, ms since the Unix epoch.
        ts: u64,
    },
    /// A participant started or stopped speaking.
    Speaking {
        /// Who.
        participant_id: String,
        /// Speaking now.
        speaking: bool,
    },
    /// The room's speaking participants, loudest first.
    ActiveSpeakers {
        /// Speakers with their level.
        speakers: Vec<SpeakerJson>,
    },
    /// Last-N rooms: which participant each of your audio slots carries.
    AudioSlots {
        /// Every slot.
        slots: Vec<AudioSlotJson>,
    },
    /// The server is about to close the socket.
    Bye {
        /// `shutdown`, `timeout` or `left`.
        reason: String,
    },
}

impl ServerMessage {
    /// An `error` reply.
    pub fn error(id: Option<u64>, code: &str, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            id,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// Serializes to the JSON text frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","code":"internal","message":"serialize: {e}"}}"#)
        })
    }
}

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: f64, burst: f64, now: std::time::Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: std::time::Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn parses_every_documented_request() {
        let cases = [
            (
                r#"{"type":"join","id":1,"version":1,"room":"demo","name":"Ana"}"#,
                "join",
            ),
            (
                r#"{"type":"offer","id":2,"sdp":"v=0","tracks":[{"mid":"0","kind":"audio","source":"microphone","muted":false}]}"#,
                "offer",
            ),
            (
                r#"{"type":"answer","id":3,"negotiation":4,"sdp":"v=0"}"#,
                "answer",
            ),
            (
                r#"{"type":"candidate","id":4,"candidate":"candidate:1 1 udp 1 192.0.2.4 61665 typ host","sdp_mid":"0"}"#,
                "candidate",
            ),
            (
                r#"{"type":"candidate","id":4,"candidate":null}"#,
                "candidate",
            ),
            (
                r#"{"type":"mute","id":5,"track":"t9","muted":true}"#,
                "mute",
            ),
            (r#"{"type":"chat","id":6,"text":"¡Hola!"}"#, "chat"),
            (r#"{"type":"leave","id":7}"#, "leave"),
            (r#"{"type":"ping","id":8}"#, "ping"),
        ];
        for (i, (text, ty)) in cases.iter().enumerate() {
            let m = parse_client_message(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.request.type_name(), *ty);
            assert!(m.id.is_some(), "case {i}");
        }
        let m = parse_client_message(
            r#"{"type":"offer","sdp":"x","tracks":[{"mid":"1","kind":"video"}]}"#,
        )
        .unwrap();
        assert_eq!(
            m.request,
            Request::Offer {
                sdp: "x".into(),
                tracks: vec![TrackAnnouncementJson {
                    mid: "1".into(),
                    kind: Kind::Video,
                    source: Source::Other,
                    muted: false
                }]
            }
        );
        assert_eq!(m.id, None);
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(
            parse_client_message("{nope"),
            Err(ProtocolError::BadJson(_))
        ));
        assert!(matches!(
            parse_client_message("[1,2]"),
            Err(ProtocolError::BadJson(_))
        ));
        let Err(ProtocolError::BadMessage { id, message }) =
            parse_client_message(r#"{"type":"fly","id":3}"#)
        else {
            panic!("unknown type must be bad_message")
        };
        assert_eq!(id, Some(3));
        assert!(message.contains("fly"), "{message}");
        let Err(ProtocolError::BadMessage { id, message }) =
            parse_client_message(r#"{"type":"join","id":9,"version":1,"room":"x"}"#)
        else {
            panic!("missing name must be bad_message")
        };
        assert_eq!(id, Some(9));
        assert!(message.contains("name"), "{message}");
        let Err(ProtocolError::BadMessage { id, .. }) =
            parse_client_message(r#"{"type":"ping","id":-1}"#)
        else {
            panic!("negative id")
        };
        assert_eq!(id, None);
        assert!(matches!(
            parse_client_message(r#"{"id":1}"#),
            Err(ProtocolError::BadMessage { id: Some(1), .. })
        ));
        assert!(matches!(
            parse_client_message(r#"{"type":"mute","id":1,"track":"t1","muted":"yes"}"#),
            Err(ProtocolError::BadMessage { id: Some(1), .. })
        ));
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let v: Value = serde_json::from_str(
            &ServerMessage::Joined {
                id: Some(1),
                participant_id: "p2".into(),
                room: "demo".into(),
                participants: vec![ParticipantJson {
                    id: "p1".into(),
                    name: "Ben".into(),
                    tracks: vec![TrackJson {
                        id: "t1".into(),
                        kind: Kind::Audio,
                        source: Source::Microphone,
                        muted: false,
                    }],
                }],
                chat_history: vec![ChatEntryJson {
                    from: "p1".into(),
                    name: "Ben".into(),
                    text: "hi".into(),
                    ts: 1_764_000_000_000,
                }],
                resume_token: "r".into(),
                resumed: false,
                identity: None,
                can_publish: true,
                can_subscribe: true,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"joined","id":1,"participant_id":"p2","room":"demo",
                "participants":[{"id":"p1","name":"Ben","tracks":[{"id":"t1","kind":"audio","source":"microphone","muted":false}]}],
                "chat_history":[{"from":"p1","name":"Ben","text":"hi","ts":1_764_000_000_000u64}],
                "resume_token":"r","resumed":false,"identity":null,"can_publish":true,"can_subscribe":true})
        );
        let v: Value = serde_json::from_str(
            &ServerMessage::ActiveSpeakers {
                speakers: vec![SpeakerJson {
                    participant_id: "p3".into(),
                    level: Level::from_f32(0.62),
                }],
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"active_speakers","speakers":[{"participant_id":"p3","level":0.62}]})
        );
        let v: Value = serde_json::from_str(
            &ServerMessage::AudioSlots {
                slots: vec![
                    AudioSlotJson {
                        slot: 0,
                        participant_id: Some("p3".into()),
                    },
                    AudioSlotJson {
                        slot: 1,
                        participant_id: None,
                    },
                ],
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"audio_slots","slots":[{"slot":0,"participant_id":"p3"},{"slot":1,"participant_id":null}]})
        );
        let v: Value = serde_json::from_str(
            &ServerMessage::Speaking {
                participant_id: "p3".into(),
                speaking: true,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"speaking","participant_id":"p3","speaking":true})
        );
        let v: Value = serde_json::from_str(
            &ServerMessage::Offer {
                negotiation: 2,
                sdp: "v=0".into(),
                tracks: vec![
                    OfferedTrackJson {
                        mid: "3".into(),
                        slot: None,
                        participant_id: Some("p1".into()),
                        track_id: Some("t1".into()),
                    },
                    OfferedTrackJson {
                        mid: "7".into(),
                        slot: Some(0),
                        participant_id: None,
                        track_id: None,
                    },
                ],
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"offer","negotiation":2,"sdp":"v=0","tracks":[
                {"mid":"3","participant_id":"p1","track_id":"t1"},
                {"mid":"7","slot":0,"participant_id":null,"track_id":null}]})
        );
        let v: Value = serde_json::from_str(&ServerMessage::Ok { id: None }.to_json()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"ok"}));
        let v: Value = serde_json::from_str(
            &ServerMessage::error(Some(7), "not_joined", "send join first").to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"error","id":7,"code":"not_joined","message":"send join first"})
        );
    }

    #[test]
    fn truncated_and_corrupted_messages_are_errors_not_panics() {
        let valid = r#"{"type":"offer","id":2,"sdp":"v=0\r\n","tracks":[{"mid":"0","kind":"audio","source":"microphone","muted":false}]}"#;
        assert!(parse_client_message(valid).is_ok());
        let mut errors = 0;
        for cut in 0..valid.len() {
            if parse_client_message(&valid[..cut]).is_err() {
                errors += 1;
            }
        }
        assert_eq!(errors, valid.len(), "every strict prefix is invalid");
        // Flip each byte to a few troublesome characters.
        for i in 0..valid.len() {
            for c in [b'"', b'{', b'}', b'\\', b'0', b'x', 0x7f] {
                let mut bytes = valid.as_bytes().to_vec();
                bytes[i] = c;
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    let _ = parse_client_message(text);
                }
            }
        }
        // Deep nesting is refused by serde_json's recursion limit, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse_client_message(&deep),
            Err(ProtocolError::BadJson(_))
        ));
    }

    #[test]
    fn token_bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(50.0, 100.0, t0);
        let burst = (0..200).filter(|_| b.try_take(t0)).count();
        assert_eq!(burst, 100);
        // One second later: 50 more.
        let t1 = t0 + Duration::from_secs(1);
        let more = (0..200).filter(|_| b.try_take(t1)).count();
        assert_eq!(more, 50);
    }
}

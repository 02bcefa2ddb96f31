//! What the engine tells participants ([`Notice`]) and how signalling requests fail
//! ([`SignalError`]).

use std::fmt;

use crate::room::{OfferedTrack, ParticipantId, ParticipantInfo, TrackId, TrackInfo};

/// Why a participant left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaveReason {
    /// The participant asked to leave (`leave`).
    Left,
    /// The participant's signalling connection went away.
    Disconnected,
    /// The server lost the participant's media path (ICE consent expired, DTLS failed).
    Timeout,
}

impl LeaveReason {
    /// The wire string of `docs/signalling.md`: `"left"`, `"disconnected"`, `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Left => "left",
            LeaveReason::Disconnected => "disconnected",
            LeaveReason::Timeout => "timeout",
        }
    }
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error codes of the signalling protocol that the engine can produce (the shell adds its own:
/// `bad_json`, `bad_message`, `rate_limited`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Empty or too long room or display name, or forbidden characters.
    BadName,
    /// The room has reached the size limit.
    RoomFull,
    /// The participant is not (or no longer) in a room.
    NotJoined,
    /// The SDP does not parse.
    BadSdp,
    /// The SDP parses but cannot be negotiated.
    NegotiationFailed,
    /// An offer arrived while the server's own offer is outstanding.
    Glare,
    /// An answer that does not match the outstanding server offer.
    StaleAnswer,
    /// A track id this participant did not publish.
    UnknownTrack,
    /// A chat text or a name is too long.
    TooLarge,
    /// A field has a value the engine refuses (e.g. an empty chat text).
    BadMessage,
    /// A server bug.
    Internal,
    /// Missing, malformed, badly signed or expired access token (the shell's check).
    Unauthorized,
    /// The access token does not allow this room or this action.
    Forbidden,
    /// Unknown or expired resume token: the client joins afresh.
    ResumeFailed,
}

impl ErrorCode {
    /// The stable wire code of `docs/signalling.md` (e.g. `"room_full"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadName => "bad_name",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::BadSdp => "bad_sdp",
            ErrorCode::NegotiationFailed => "negotiation_failed",
            ErrorCode::Glare => "glare",
            ErrorCode::StaleAnswer => "stale_answer",
            ErrorCode::UnknownTrack => "unknown_track",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ResumeFailed => "resume_failed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signalling request the engine refused: a code for programs, a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    /// The wire error code.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl SignalError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SignalError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for SignalError {}

/// What the engine asks the shell to tell one participant (over its WebSocket). Each variant
/// maps onto one server event of `docs/signalling.md`.
///
/// Ordering guarantees (per recipient, in [`crate::Engine::poll_notice`] order):
/// `ParticipantJoined` comes before any `TrackPublished`/`ParticipantUpdated` of that
/// participant; `TrackPublished` comes before the `Offer` that carries the track;
/// `TrackUnpublished` of all of a leaving participant's tracks come before its
/// `ParticipantLeft`; an `Offer` is never sent while a previous one is unanswered.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Someone joined the recipient's room (`participant_joined`).
    ParticipantJoined(ParticipantInfo),
    /// Someone left the recipient's room (`participant_left`).
    ParticipantLeft {
        /// Who left.
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// A participant's tracks or mute state changed (`participant_updated`).
    ParticipantUpdated(ParticipantInfo),
    /// A participant published a track (`track_published`).
    TrackPublished {
        /// The publisher.
        participant: ParticipantId,
        /// The new track.
        track: TrackInfo,
    },
    /// A participant stopped publishing a track (`track_unpublished`).
    TrackUnpublished {
        /// The publisher.
        participant: ParticipantId,
        /// The removed track.
        track: TrackId,
    },
    /// A server offer to renegotiate the recipient's peer connection (`offer`); answer it
    /// with [`crate::Engine::handle_answer`] and the same `negotiation`.
    Offer {
        /// The negotiation number to repeat in the answer.
        negotiation: u64,
        /// The SDP offer.
        sdp: String,
        /// Which participant and track every sending m-line carries.
        tracks: Vec<OfferedTrack>,
    },
    /// A chat message in the room (`chat`).
    Chat {
        /// The sender.
        from: ParticipantId,
        /// The sender's display name.
        name: String,
        /// The text.
        text: String,
        /// The shell's wall-clock time given to [`crate::Engine::chat`] (ms since the Unix
        /// epoch).
        timestamp_ms: u64,
    },
    /// A participant started or stopped speaking (`speaking`): voice-activity edges after the
    /// hangover, at most one per participant per 100 ms (see [`crate::speaking`]).
    Speaking {
        /// Who.
        participant: ParticipantId,
        /// Speaking now.
        speaking: bool,
    },
    /// The room's speaking participants with their level (0.0 = −127 dBov … 1.0 = 0 dBov),
    /// loudest first (`active_speakers`); sent when the list or its order changed, at most
    /// every 200 ms per room.
    ActiveSpeakers(Vec<(ParticipantId, f32)>),
    /// Last-N rooms: which participant each of the recipient's audio slots carries now
    /// (`audio_slots`); sent whenever the mapping changes.
    AudioSlots(Vec<(u8, Option<ParticipantId>)>),
    /// The engine removed this participant (media path lost, or shutdown): the shell sends
    /// `bye` and closes the socket.
    Removed {
        /// Why (`Timeout` for a lost media path; the shell says `shutdown` after
        /// [`crate::Engine::close`]).
        reason: LeaveReason,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_match_the_signalling_document() {
        let doc = include_str!("../../../docs/signalling.md");
        for code in [
            ErrorCode::BadName,
            ErrorCode::RoomFull,
            ErrorCode::NotJoined,
            ErrorCode::BadSdp,
            ErrorCode::NegotiationFailed,
            ErrorCode::Glare,
            ErrorCode::StaleAnswer,
            ErrorCode::UnknownTrack,
            ErrorCode::TooLarge,
            ErrorCode::BadMessage,
            ErrorCode::Internal,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::ResumeFailed,
        ] {
            let cell = format!("| `{}` |", code.as_str());
            assert!(
                doc.contains(&cell),
                "{cell} missing from docs/signalling.md"
            );
        }
        for reason in [
            LeaveReason::Left,
            LeaveReason::Disconnected,
            LeaveReason::Timeout,
        ] {
            assert!(doc.contains(&format!("\"{}\"", reason.as_str())));
        }
    }

    #[test]
    fn signal_error_displays_code_and_message() {
        let e = SignalError::new(ErrorCode::RoomFull, "room x has 2 participants");
        assert_eq!(e.to_string(), "room_full: room x has 2 participants");
    }
}

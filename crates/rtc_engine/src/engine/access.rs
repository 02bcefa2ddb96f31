//! Access and reconnect: what a participant may do ([`JoinOptions`]), and keeping a
//! participant whose signalling connection went away for a grace period so that it can come
//! back with its resume token ([`Engine::detach`], [`Engine::resume`]).
//!
//! Resume tokens are 128 bits from a ChaCha-based generator ([`rand::rngs::StdRng`]) keyed
//! with [`EngineConfig::secret_seed`], which the shell fills from the operating system's
//! random source. The engine's own [`crate::seed_rng::SeedRng`] (SplitMix64) is not used for
//! them: its outputs (SSRCs, ICE credentials, visible to participants) would let anyone
//! predict the next tokens. A token is compared in constant time and replaced by a new one
//! at every resume.

use std::time::Instant;

use rand::{RngCore, SeedableRng};

use super::{Engine, EngineConfig};
use crate::notice::{ErrorCode, LeaveReason, Notice, SignalError};
use crate::room::{Joined, ParticipantId};

/// What a participant may do, decided by the shell (for example from a signed token) when it
/// joins. `Default`: everything allowed, no identity (what [`Engine::join`] uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOptions {
    /// The authenticated identity (a token's `sub`), if any; reported back in [`Joined`].
    pub identity: Option<String>,
    /// May publish tracks. When false, the m-lines the client sends on are answered
    /// `inactive`: nothing it sends becomes a track.
    pub can_publish: bool,
    /// May receive the others' tracks. When false, the participant is never subscribed to
    /// anything (no server offers, nothing forwarded to it).
    pub can_subscribe: bool,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            identity: None,
            can_publish: true,
            can_subscribe: true,
        }
    }
}

/// The access state of one participant.
#[derive(Debug, Clone)]
pub(super) struct ParticipantAccess {
    pub(super) options: JoinOptions,
    /// The secret that lets a new signalling connection take this participant over.
    pub(super) resume_token: String,
    /// Set while the participant has no signalling connection: removed at this time.
    pub(super) detached_until: Option<Instant>,
    /// The last server offer sent (re-sent on resume while it is unanswered).
    pub(super) last_offer: Option<Notice>,
}

impl ParticipantAccess {
    pub(super) fn new(options: JoinOptions, resume_token: String) -> Self {
        ParticipantAccess {
            options,
            resume_token,
            detached_until: None,
            last_offer: None,
        }
    }
}

/// The engine's generator of resume tokens.
pub(super) struct TokenRng(rand::rngs::StdRng);

impl std::fmt::Debug for TokenRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRng")
    }
}

impl TokenRng {
    pub(super) fn new(config: &EngineConfig) -> Self {
        TokenRng(rand::rngs::StdRng::from_seed(config.secret_seed))
    }

    /// A new resume token: 128 random bits as 32 lowercase hex digits.
    pub(super) fn token(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.0.fill_bytes(&mut bytes);
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Equality of two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Engine {
    /// Joins with explicit [`JoinOptions`] (identity and grants); [`Engine::join`] is this
    /// with the defaults. The reply carries the options and the participant's resume token.
    pub fn join_with(
        &mut self,
        now: Instant,
        room: &str,
        name: &str,
        options: JoinOptions,
    ) -> Result<Joined, SignalError> {
        self.join_inner(now, room, name, options)
    }

    /// The participant's signalling connection went away without `leave`: it stays in its
    /// room with its tracks, subscriptions and media (its peer connection never depended on
    /// the signalling) for [`EngineConfig::resume_grace`], and the others are told nothing.
    /// Notices for it are dropped meanwhile (the resume reply carries the current state).
    /// [`Engine::resume`] within the grace period takes it back; after it the participant is
    /// removed and the others get `participant_left` with [`LeaveReason::Disconnected`].
    /// No-op for an unknown participant.
    pub fn detach(&mut self, now: Instant, participant: ParticipantId) {
        let grace = self.config.resume_grace;
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        p.access.detached_until = Some(now + grace);
        self.notices.retain(|(to, _)| *to != participant);
        tracing::debug!(%participant, grace_ms = grace.as_millis() as u64, "detached");
    }

    /// Whether the participant is detached (waiting for [`Engine::resume`]).
    pub fn is_detached(&self, participant: ParticipantId) -> bool {
        self.participants
            .get(&participant)
            .is_some_and(|p| p.access.detached_until.is_some())
    }

    /// A new signalling connection takes over the participant holding `resume_token`
    /// (detached, or still attached through a connection the shell has not seen die yet):
    /// same participant id, room, tracks and media. Returns the join reply with the current
    /// participants and a new resume token (the old one stops working); a server offer still
    /// waiting for its answer is sent again as a [`Notice::Offer`] (same negotiation number
    /// and SDP), and changes made meanwhile are offered. Error `resume_failed` for an unknown
    /// or expired token.
    pub fn resume(&mut self, now: Instant, resume_token: &str) -> Result<Joined, SignalError> {
        if self.closed {
            return Err(SignalError::new(
                ErrorCode::Internal,
                "server shutting down",
            ));
        }
        let found = self
            .participants
            .iter()
            .find(|(_, p)| {
                constant_time_eq(p.access.resume_token.as_bytes(), resume_token.as_bytes())
            })
            .map(|(id, _)| *id);
        let Some(pid) = found else {
            return Err(SignalError::new(
                ErrorCode::ResumeFailed,
                "unknown or expired resume token: join afresh",
            ));
        };
        let token = self.token_rng.token();
        let Some(p) = self.participants.get_mut(&pid) else {
            return Err(SignalError::new(
                ErrorCode::Internal,
                "participant vanished",
            ));
        };
        p.access.detached_until = None;
        p.access.resume_token = token.clone();
        let resend = if p.outstanding.is_some() {
            p.access.last_offer.clone()
        } else {
            None
        };
        let options = p.access.options.clone();
        let room = p.room.clone();
        let participants = self
            .rooms
            .get(&room)
            .map(|r| r.others(pid).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|q| self.participants.get(&q).map(|x| x.info(q)))
            .collect();
        self.notices.retain(|(to, _)| *to != pid);
        match resend {
            Some(offer) => self.notify(pid, offer),
            None => self.maybe_offer(now, pid),
        }
        tracing::debug!(participant = %pid, %room, "resumed");
        let room_name = room.clone();
        Ok(Joined {
            participant: pid,
            room,
            participants,
            // The whole history: chat sent while detached was not delivered, the client shows
            // what it has not seen yet.
            chat_history: self
                .rooms
                .get(&room_name)
                .map(|r| r.chat_history.iter().cloned().collect())
                .unwrap_or_default(),
            identity: options.identity,
            can_publish: options.can_publish,
            can_subscribe: options.can_subscribe,
            resume_token: token,
        })
    }

    /// Removes the detached participants whose grace period ended by `now`.
    pub(super) fn expire_detached(&mut self, now: Instant) {
        let expired: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.access.detached_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for pid in expired {
            tracing::info!(participant = %pid, "resume grace period over: removed");
            self.remove_participant(now, pid, LeaveReason::Disconnected);
        }
    }

    /// The earliest end of a grace period.
    pub(super) fn next_detach_deadline(&self) -> Option<Instant> {
        self.participants
            .values()
            .filter_map(|p| p.access.detached_until)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn tokens_are_128_bit_hex_and_differ() {
        let mut config =
            EngineConfig::new(tympan_dtls::DtlsCertificate::generate().expect("certificate"));
        config.secret_seed = [9; 32];
        let mut rng = TokenRng::new(&config);
        let a = rng.token();
        let b = rng.token();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        // Another key gives other tokens.
        config.secret_seed = [10; 32];
        assert_ne!(TokenRng::new(&config).token(), a);
    }
}

//! Last-N audio: in a big room each subscriber receives N audio **slots** instead of one
//! audio m-line per publisher, and each slot carries one of the N loudest current speakers
//! (never the subscriber itself).
//!
//! - A slot is one send m-line of the subscriber's peer with one [`Forwarder`] (one
//!   `ForwardRewriter`): when the slot switches from one speaker to another, the rewriter
//!   starts a new source whose sequence numbers continue right after the last one sent and
//!   whose timestamps continue by the wall-clock time since, so the subscriber sees one
//!   continuous stream (no gaps, no repeats).
//! - Which speakers: the tracks that are speaking (see [`crate::speaking`]), ranked by their
//!   smoothed level. A speaker keeps its slot while it stays in the top N; a slot's current
//!   speaker gets a bonus of [`STICKY_BONUS`] in the ranking, so two speakers of about the same
//!   loudness at the N-th place do not take turns. A newcomer takes a slot whose speaker
//!   left the top N; the others do not move (no shuffling). A slot whose speaker stopped
//!   speaking (after the hangover) and has no successor is emptied.
//! - When: a room switches to last-N the first time it has more than
//!   `EngineConfig::last_n_threshold` participants (0: from the first join), and stays in
//!   last-N until it is empty — no hysteresis on the way down, because every switch costs a
//!   renegotiation of every participant, and N slots serve a small room as well (with at
//!   most N others, every talking participant is heard). On the switch, every participant's
//!   per-publisher audio m-lines are removed and N slots added in one server offer.

use crate::forward::Forwarder;
use crate::room::{ParticipantId, TrackId};

/// Ranking bonus of a slot's current speaker (0.08 of the 0 … 1 level scale ≈ 10 dB).
pub const STICKY_BONUS: f32 = 0.08;

/// One audio slot of a subscriber.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The m-line's mid in the subscriber's peer.
    pub(crate) mid: String,
    /// The continuous outgoing stream of this slot.
    pub(crate) forwarder: Forwarder,
    /// Negotiated (the subscriber answered the offer that added it) with an audio codec.
    pub(crate) ready: bool,
    /// The publisher track the slot carries now.
    pub(crate) source: Option<(ParticipantId, TrackId)>,
}

/// A speaking audio track, as ranked for the slots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) participant: ParticipantId,
    pub(crate) track: TrackId,
    pub(crate) level: f32,
}

/// Chooses the sources of one subscriber's slots: `current[i]` is what slot `i` carries now,
/// `candidates` the speaking tracks of the room (any order), `me` the subscriber. Writes the
/// new assignment into `out` (same length as `current`).
pub(crate) fn assign(
    current: &[Option<(ParticipantId, TrackId)>],
    candidates: &[Candidate],
    me: ParticipantId,
    out: &mut [Option<(ParticipantId, TrackId)>],
) {
    let n = current.len().min(out.len());
    let held = |c: &Candidate| current.contains(&Some((c.participant, c.track)));
    let mut ranked: Vec<(f32, Candidate)> = candidates
        .iter()
        .filter(|c| c.participant != me)
        .map(|c| {
            let bonus = if held(c) { STICKY_BONUS } else { 0.0 };
            (c.level + bonus, *c)
        })
        .collect();
    // Loudest first; ties by participant then track id, so the result is deterministic.
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.participant.cmp(&b.1.participant))
            .then(a.1.track.cmp(&b.1.track))
    });
    ranked.truncate(n);
    let chosen = |s: &Option<(ParticipantId, TrackId)>| {
        s.is_some_and(|(p, t)| {
            ranked
                .iter()
                .any(|(_, c)| c.participant == p && c.track == t)
        })
    };
    for i in 0..n {
        out[i] = if chosen(&current[i]) {
            current[i]
        } else {
            None
        };
    }
    let mut newcomers = ranked
        .iter()
        .map(|(_, c)| Some((c.participant, c.track)))
        .filter(|s| !current[..n].contains(s));
    for slot in out[..n].iter_mut() {
        if slot.is_none() {
            *slot = newcomers.next().flatten();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: u64, level: f32) -> Candidate {
        Candidate {
            participant: ParticipantId(p),
            track: TrackId(100 + p),
            level,
        }
    }
    fn s(p: u64) -> Option<(ParticipantId, TrackId)> {
        Some((ParticipantId(p), TrackId(100 + p)))
    }
    fn run(
        current: &[Option<(ParticipantId, TrackId)>],
        cands: &[Candidate],
        me: u64,
    ) -> Vec<Option<(ParticipantId, TrackId)>> {
        let mut out = vec![None; current.len()];
        assign(current, cands, ParticipantId(me), &mut out);
        out
    }

    #[test]
    fn the_loudest_others_fill_empty_slots_in_order() {
        let cands = [c(1, 0.7), c(2, 0.9), c(3, 0.8), c(4, 0.75)];
        assert_eq!(run(&[None, None, None], &cands, 9), vec![s(2), s(3), s(4)]);
        // Never the subscriber itself.
        assert_eq!(run(&[None, None, None], &cands, 2), vec![s(3), s(4), s(1)]);
        // Fewer speakers than slots: the rest stay empty.
        assert_eq!(
            run(&[None, None, None], &cands[..1], 9),
            vec![s(1), None, None]
        );
        assert_eq!(run(&[None, None], &[], 9), vec![None, None]);
    }

    #[test]
    fn speakers_keep_their_slots_and_a_newcomer_takes_the_freed_one() {
        let current = [s(1), s(2), s(3)];
        // Order changes among the three: nothing moves.
        let cands = [c(1, 0.6), c(2, 0.95), c(3, 0.8)];
        assert_eq!(run(&current, &cands, 9), current.to_vec());
        // 2 stopped (no longer a candidate), 5 starts: 5 takes slot 1, the others stay.
        let cands = [c(1, 0.6), c(3, 0.8), c(5, 0.9)];
        assert_eq!(run(&current, &cands, 9), vec![s(1), s(5), s(3)]);
        // 2 is still speaking but much quieter than the newcomer: replaced.
        let cands = [c(1, 0.9), c(2, 0.3), c(3, 0.8), c(5, 0.9)];
        assert_eq!(run(&current, &cands, 9), vec![s(1), s(5), s(3)]);
        // A slot whose speaker stopped, with nobody to replace it, is emptied.
        let cands = [c(1, 0.9), c(3, 0.8)];
        assert_eq!(run(&current, &cands, 9), vec![s(1), None, s(3)]);
    }

    #[test]
    fn a_slightly_louder_newcomer_does_not_displace_an_incumbent() {
        let current = [s(1), s(2)];
        let cands = [c(1, 0.8), c(2, 0.7), c(3, 0.75)];
        assert_eq!(run(&current, &cands, 9), current.to_vec());
        let cands = [c(1, 0.8), c(2, 0.7), c(3, 0.7 + STICKY_BONUS + 0.01)];
        assert_eq!(run(&current, &cands, 9), vec![s(1), s(3)]);
    }
}

//! Server-side speaking detection from the RFC 6464 client-to-mixer audio level.
//!
//! Every audio packet a publisher sends carries (when the `ssrc-audio-level` header extension
//! is negotiated, which browsers offer) the level of its audio in −dBov (0 = full scale,
//! 127 = digital silence) and a voice-activity (V) bit. Per published audio track a
//! [`VoiceActivity`] turns those samples into
//!
//! - a smoothed **level** in 0.0 … 1.0, linear in dB (`(127 − dBov) / 127`: 0.0 is −127 dBov,
//!   1.0 is 0 dBov), following a rise almost at once ([`ATTACK`]) and falling slowly
//!   ([`RELEASE`]), like a peak meter;
//! - a **speaking** flag with hysteresis (on at [`SPEAKING_ON`], off only below
//!   [`SPEAKING_OFF`]) and a hangover ([`HANGOVER`]): short pauses between words do not
//!   switch it off.
//!
//! The engine feeds samples from the forward path ([`VoiceActivity::on_level`], no allocation)
//! and re-evaluates every track on a periodic tick ([`TICK`], [`VoiceActivity::tick`]), so that
//! a track that goes quiet, stops sending ([`STALE`]) or is muted decays to not speaking.
//!
//! How this compares (read from their documentation and sources, not copied):
//! - **Janus** (VideoRoom/AudioBridge) averages the level over `audio_active_packets` packets
//!   (default 100, i.e. 2 s of 20 ms frames) and calls the participant talking when the
//!   average is louder than `audio_level_average` (default −25 dBov): robust but slow (~2 s).
//! - **LiveKit** counts, per observation window, the share of packets louder than
//!   `active_level` (default −35 dBov) and needs `min_percentile` (40 %) of them per 400 ms
//!   `update_interval`, smoothed (EMA) over `smooth_intervals` = 2. Also ~0.5–1 s to react.
//! - **libwebrtc** sets the V bit from its own VAD and computes the level as the RMS of the
//!   10 ms frames of a packet; Chromium's fake microphone beeps 20 ms every 500 ms, which
//!   Janus- or LiveKit-style averaging never calls speech.
//!
//! We need to switch last-N audio slots within 300 ms of a new talker and to light the
//! speaking indicator for short sounds, so the level reacts within one packet and the
//! hangover keeps the state stable. The V bit is recorded but does not decide: browsers set
//! it from a speech model that calls music or beeps "no voice", and Janus, LiveKit and
//! mediasoup also decide on the level alone.

use std::time::{Duration, Instant};

use crate::room::ParticipantId;

/// How often the engine re-evaluates voice activity, speaker lists and last-N slots (only
/// while some room has an audio track).
pub const TICK: Duration = Duration::from_millis(50);
/// Time constant of a rising level: one 20 ms packet brings the smoothed level 98 % of the way
/// (a single loud packet counts: Chromium's fake microphone beeps for just 20 ms).
pub const ATTACK: Duration = Duration::from_millis(5);
/// Time constant of a falling level (a speaker who stops fades out over ~0.5 s).
pub const RELEASE: Duration = Duration::from_millis(250);
/// Smoothed level at which a track starts speaking: 0.65 ≈ −44 dBov (normal speech into a
/// browser microphone is −20 … −40 dBov; a quiet room −60 … −90).
pub const SPEAKING_ON: f32 = 0.65;
/// Smoothed level below which a speaking track may stop: 0.55 ≈ −57 dBov (10 dB of hysteresis).
pub const SPEAKING_OFF: f32 = 0.55;
/// How long the level must stay below [`SPEAKING_OFF`] before the track stops speaking.
pub const HANGOVER: Duration = Duration::from_millis(500);
/// A track that sent no packet for this long is treated as silent (DTX, muted, gone).
pub const STALE: Duration = Duration::from_millis(200);
/// `speaking` events: at most one per participant per this interval.
pub const SPEAKING_NOTICE_INTERVAL: Duration = Duration::from_millis(100);
/// `active_speakers` events: at most one per room per this interval.
pub const ACTIVE_SPEAKERS_INTERVAL: Duration = Duration::from_millis(200);

/// The level scale of the protocol: −dBov (0 … 127) to 0.0 … 1.0, linear in dB.
pub fn level_of_dbov(minus_dbov: u8) -> f32 {
    f32::from(127 - minus_dbov.min(127)) / 127.0
}

/// Voice activity of one audio track (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct VoiceActivity {
    level: f32,
    /// When `level` was last brought up to date.
    updated: Option<Instant>,
    /// When the last packet arrived.
    last_packet: Option<Instant>,
    /// The V bit of the last packet.
    voice: bool,
    speaking: bool,
    /// While speaking: since when the level has been below [`SPEAKING_OFF`].
    quiet_since: Option<Instant>,
}

impl Default for VoiceActivity {
    fn default() -> Self {
        Self::new()
    }
}

impl VoiceActivity {
    /// A silent, not speaking track.
    pub const fn new() -> Self {
        VoiceActivity {
            level: 0.0,
            updated: None,
            last_packet: None,
            voice: false,
            speaking: false,
            quiet_since: None,
        }
    }

    /// The smoothed level, 0.0 … 1.0.
    pub fn level(&self) -> f32 {
        self.level
    }

    /// Whether the track is speaking (after hysteresis and hangover).
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// The V bit of the last packet (informational).
    pub fn voice_bit(&self) -> bool {
        self.voice
    }

    /// Moves the smoothed level towards `target` for the time since the last update.
    fn approach(&mut self, now: Instant, target: f32) {
        let dt = self
            .updated
            .map_or(Duration::ZERO, |u| now.saturating_duration_since(u));
        self.updated = Some(now.max(self.updated.unwrap_or(now)));
        let tau = if target > self.level { ATTACK } else { RELEASE };
        let alpha = if self.last_packet.is_none() && target > self.level {
            1.0 // first sample
        } else {
            1.0 - (-(dt.as_secs_f32()) / tau.as_secs_f32()).exp()
        };
        self.level += (target - self.level) * alpha.clamp(0.0, 1.0);
        self.level = self.level.clamp(0.0, 1.0);
    }

    /// One packet's audio level (−dBov, 0 … 127) and V bit, arriving at `now`.
    pub fn on_level(&mut self, now: Instant, minus_dbov: u8, voice: bool) {
        if self.updated.is_none() {
            self.updated = Some(now);
        }
        self.approach(now, level_of_dbov(minus_dbov));
        self.last_packet = Some(now);
        self.voice = voice;
        self.evaluate(now);
    }

    /// The periodic re-evaluation: a muted track, or one without packets for [`STALE`], decays
    /// towards silence. Returns whether the speaking flag changed.
    pub fn tick(&mut self, now: Instant, muted: bool) -> bool {
        let before = self.speaking;
        let stale = self
            .last_packet
            .is_none_or(|t| now.saturating_duration_since(t) >= STALE);
        if muted || stale {
            if self.updated.is_none() {
                self.updated = Some(now);
            }
            self.approach(now, 0.0);
        }
        if muted {
            // Muted means not speaking now, whatever the level.
            self.speaking = false;
            self.quiet_since = None;
        } else {
            self.evaluate(now);
        }
        before != self.speaking
    }

    fn evaluate(&mut self, now: Instant) {
        if !self.speaking {
            if self.level >= SPEAKING_ON {
                self.speaking = true;
                self.quiet_since = None;
            }
            return;
        }
        if self.level >= SPEAKING_OFF {
            self.quiet_since = None;
            return;
        }
        let since = *self.quiet_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= HANGOVER {
            self.speaking = false;
            self.quiet_since = None;
        }
    }
}

/// Per participant: what the room was last told about it (for `speaking` edges).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpeakingNotified {
    /// The last `speaking` value sent.
    pub(crate) speaking: bool,
    /// When it was sent.
    pub(crate) at: Option<Instant>,
}

impl SpeakingNotified {
    /// Whether a `speaking` event for `now_speaking` is due at `now` (an edge, rate limited).
    pub(crate) fn due(&self, now: Instant, now_speaking: bool) -> bool {
        now_speaking != self.speaking
            && self
                .at
                .is_none_or(|t| now.saturating_duration_since(t) >= SPEAKING_NOTICE_INTERVAL)
    }
}

/// Per room: last-N mode and the last `active_speakers` list sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoomSpeech {
    /// The room forwards audio through last-N slots.
    pub(crate) last_n: bool,
    /// Participants of the last `active_speakers` event, loudest first.
    pub(crate) active: Vec<ParticipantId>,
    /// When it was sent.
    pub(crate) active_at: Option<Instant>,
}

impl RoomSpeech {
    /// Whether `speakers` (loudest first) must be announced at `now`: the list or its order
    /// changed and the last announcement is at least [`ACTIVE_SPEAKERS_INTERVAL`] old.
    pub(crate) fn active_due(&self, now: Instant, speakers: &[(ParticipantId, f32)]) -> bool {
        let same = self.active.len() == speakers.len()
            && self.active.iter().zip(speakers).all(|(a, (b, _))| a == b);
        !same
            && self
                .active_at
                .is_none_or(|t| now.saturating_duration_since(t) >= ACTIVE_SPEAKERS_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    /// Feeds `frames` packets of `level` every 20 ms from `*t`, ticking every 50 ms.
    fn feed(v: &mut VoiceActivity, t: &mut Instant, frames: u32, level: u8) -> Vec<(u32, bool)> {
        let mut states = Vec::new();
        let mut next_tick = *t;
        for i in 0..frames {
            v.on_level(*t, level, level < 60);
            while next_tick <= *t {
                v.tick(next_tick, false);
                next_tick += TICK;
            }
            states.push((i, v.speaking()));
            *t += FRAME;
        }
        states
    }

    #[test]
    fn level_scale_is_linear_in_db() {
        assert_eq!(level_of_dbov(127), 0.0);
        assert_eq!(level_of_dbov(0), 1.0);
        assert!((level_of_dbov(30) - 97.0 / 127.0).abs() < 1e-6);
        // Values above 127 cannot come from 7 bits, but are clamped anyway.
        assert_eq!(level_of_dbov(200), 0.0);
    }

    #[test]
    fn speech_starts_within_one_packet_and_silence_keeps_it_off() {
        let t0 = Instant::now();
        let mut t = t0;
        let mut v = VoiceActivity::new();
        // Two seconds of a quiet room (−70 dBov): never speaking.
        assert!(feed(&mut v, &mut t, 100, 70).iter().all(|(_, s)| !s));
        assert!(v.level() < SPEAKING_OFF);
        // −25 dBov speech: speaking from the first or second packet.
        let states = feed(&mut v, &mut t, 10, 25);
        let first = states.iter().find(|(_, s)| *s).map(|(i, _)| *i);
        assert!(first.is_some_and(|i| i <= 1), "{states:?}");
        assert!((v.level() - level_of_dbov(25)).abs() < 0.01);
    }

    #[test]
    fn short_pauses_are_bridged_and_silence_ends_speech_after_the_hangover() {
        let t0 = Instant::now();
        let mut t = t0;
        let mut v = VoiceActivity::new();
        feed(&mut v, &mut t, 25, 20);
        assert!(v.speaking());
        // A 200 ms pause between words (digital silence): still speaking.
        let pause = feed(&mut v, &mut t, 10, 127);
        assert!(pause.iter().all(|(_, s)| *s), "{pause:?}");
        feed(&mut v, &mut t, 25, 20);
        // Silence: off after the level fell below SPEAKING_OFF plus the hangover, not before.
        let silence_start = t;
        let states = feed(&mut v, &mut t, 100, 127);
        let off = states
            .iter()
            .find(|(_, s)| !s)
            .map(|(i, _)| *i)
            .expect("stops speaking");
        let off_after = FRAME * off;
        // Level 0.84 falls below 0.55 after 250 ms * ln(0.84/0.55) ≈ 106 ms, then 500 ms.
        assert!(off_after >= HANGOVER, "{off_after:?}");
        assert!(
            off_after <= HANGOVER + Duration::from_millis(250),
            "{off_after:?}"
        );
        assert!(states[off as usize..].iter().all(|(_, s)| !s));
        assert!(t > silence_start);
    }

    #[test]
    fn a_beep_every_500_ms_keeps_speaking_like_chromiums_fake_microphone() {
        let t0 = Instant::now();
        let mut v = VoiceActivity::new();
        let mut on_edges = 0;
        let mut speaking_ticks = 0;
        let mut was = false;
        for i in 0..200u32 {
            let t = t0 + FRAME * i;
            let level = if i % 25 == 0 { 20 } else { 127 };
            v.on_level(t, level, false);
            v.tick(t, false);
            if v.speaking() && !was {
                on_edges += 1;
            }
            was = v.speaking();
            speaking_ticks += u32::from(v.speaking());
        }
        assert_eq!(on_edges, 1, "the hangover bridges the 480 ms between beeps");
        assert!(speaking_ticks >= 195);
    }

    #[test]
    fn a_track_that_stops_sending_or_is_muted_decays_to_not_speaking() {
        let t0 = Instant::now();
        let mut t = t0;
        let mut v = VoiceActivity::new();
        feed(&mut v, &mut t, 10, 10);
        assert!(v.speaking());
        // No more packets: ticks alone bring it down.
        let mut changed_at = None;
        for k in 1..=40u32 {
            let now = t + TICK * k;
            if v.tick(now, false) {
                changed_at = Some(TICK * k);
                break;
            }
        }
        let changed = changed_at.expect("stops speaking without packets");
        assert!(
            changed <= STALE + HANGOVER + Duration::from_millis(300),
            "{changed:?}"
        );
        assert!(!v.speaking());

        // Muted: off at the next tick even while loud packets still arrive.
        let mut v = VoiceActivity::new();
        let mut t = t0;
        feed(&mut v, &mut t, 10, 10);
        assert!(v.speaking());
        assert!(v.tick(t, true));
        assert!(!v.speaking());
        for k in 1..40u32 {
            v.tick(t + TICK * k, true);
        }
        assert!(v.level() < 0.01, "{}", v.level());
    }

    #[test]
    fn notices_are_rate_limited_edges() {
        let t0 = Instant::now();
        let mut n = SpeakingNotified::default();
        assert!(!n.due(t0, false));
        assert!(n.due(t0, true));
        n = SpeakingNotified {
            speaking: true,
            at: Some(t0),
        };
        assert!(!n.due(t0 + Duration::from_millis(50), false));
        assert!(n.due(t0 + SPEAKING_NOTICE_INTERVAL, false));

        let p = |n| ParticipantId(n);
        let mut r = RoomSpeech::default();
        assert!(!r.active_due(t0, &[]));
        assert!(r.active_due(t0, &[(p(1), 0.5)]));
        r.active = vec![p(1), p(2)];
        r.active_at = Some(t0);
        let later = t0 + ACTIVE_SPEAKERS_INTERVAL;
        // Same order, other levels: nothing to say.
        assert!(!r.active_due(later, &[(p(1), 0.9), (p(2), 0.1)]));
        // New order: only once the interval has passed.
        assert!(!r.active_due(t0 + Duration::from_millis(100), &[(p(2), 0.9), (p(1), 0.1)]));
        assert!(r.active_due(later, &[(p(2), 0.9), (p(1), 0.1)]));
    }
}

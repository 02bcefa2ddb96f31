//! Observability: the per-participant traffic and quality of [`Engine::room_details`]
//! ([`RoomDetails`]) and the sums behind the peer-level fields of
//! [`EngineCounters`](crate::EngineCounters).
//!
//! Counting on the forward path is plain integer additions in the peers and the engine; the
//! rates (bit/s, inbound fraction lost) are computed here from those counters on the engine's
//! own timer, every [`STATS_INTERVAL`] of the caller's (possibly simulated) time.
//!
//! [`Engine::room_details`]: crate::Engine::room_details

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::engine::EngineCounters;
use crate::peer::{Peer, PeerStats, Transport};
use crate::room::{ParticipantId, TrackInfo};

/// The window over which bitrates and the inbound fraction lost are computed: the engine
/// samples its peers' byte and packet counters this often.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Traffic and reception quality of one direction of a participant's media.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DirectionStats {
    /// RTP packets (inbound: received from the participant; outbound: sent to it, forwarded
    /// media only, retransmissions not included).
    pub packets: u64,
    /// Plaintext RTP bytes (header and payload) of those packets.
    pub bytes: u64,
    /// Bit rate of those bytes over the last [`STATS_INTERVAL`] window (0 before the first
    /// full window).
    pub bitrate_bps: u64,
    /// Cumulative packets lost (RFC 3550; may be negative with duplicates), summed over
    /// streams. Inbound: measured by the server; outbound: from the participant's RTCP
    /// receiver reports.
    pub packets_lost: i64,
    /// Fraction lost, 0.0 ..= 1.0. Inbound: over the last window, all streams together;
    /// outbound: the worst stream's value in the participant's latest receiver report.
    pub fraction_lost: f64,
    /// Interarrival jitter in milliseconds, the worst stream (RFC 3550 A.8). Inbound:
    /// measured by the server; outbound: from the participant's receiver reports.
    pub jitter_ms: f64,
    /// Streams these loss/jitter figures cover (inbound: streams received; outbound: streams
    /// the participant has reported on). 0 means loss and jitter are not known yet.
    pub streams: u32,
}

/// Traffic and quality of one participant's peer connection.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerDetails {
    /// Round-trip time from RTCP (the participant's receiver reports on our sender
    /// reports), in milliseconds; `None` until one arrived.
    pub rtt_ms: Option<f64>,
    /// Media the participant publishes, as the server receives it.
    pub inbound: DirectionStats,
    /// Media the server forwards to the participant, as the participant reports it.
    pub outbound: DirectionStats,
}

/// One participant of [`RoomDetails`].
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantDetails {
    /// Its id.
    pub id: ParticipantId,
    /// Display name.
    pub name: String,
    /// DTLS-SRTP is up: media can flow.
    pub connected: bool,
    /// UDP or TCP: the transport of its media path (`None` before ICE found one).
    pub transport: Option<Transport>,
    /// The tracks it publishes.
    pub tracks: Vec<TrackInfo>,
    /// Traffic and quality of its peer connection (zeros before its first offer).
    pub stats: PeerDetails,
}

/// Sums over the participants of one room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomTotals {
    /// Participants.
    pub participants: usize,
    /// Published tracks.
    pub tracks: usize,
    /// RTP packets received from the room's publishers.
    pub packets_in: u64,
    /// RTP packets forwarded to the room's participants.
    pub packets_out: u64,
    /// Plaintext RTP bytes received.
    pub bytes_in: u64,
    /// Plaintext RTP bytes forwarded.
    pub bytes_out: u64,
    /// Inbound bit rate over the last window.
    pub bitrate_in_bps: u64,
    /// Outbound bit rate over the last window.
    pub bitrate_out_bps: u64,
}

/// A room in detail, for `/api/rooms/<room>`: [`crate::Engine::room_details`].
#[derive(Debug, Clone, PartialEq)]
pub struct RoomDetails {
    /// Room name.
    pub name: String,
    /// Participants in join order.
    pub participants: Vec<ParticipantDetails>,
    /// Sums over the participants.
    pub totals: RoomTotals,
}

impl RoomDetails {
    fn new(name: &str, participants: Vec<ParticipantDetails>) -> Self {
        let mut t = RoomTotals {
            participants: participants.len(),
            ..RoomTotals::default()
        };
        for p in &participants {
            t.tracks += p.tracks.len();
            t.packets_in += p.stats.inbound.packets;
            t.packets_out += p.stats.outbound.packets;
            t.bytes_in += p.stats.inbound.bytes;
            t.bytes_out += p.stats.outbound.bytes;
            t.bitrate_in_bps += p.stats.inbound.bitrate_bps;
            t.bitrate_out_bps += p.stats.outbound.bitrate_bps;
        }
        RoomDetails {
            name: name.to_owned(),
            participants,
            totals: t,
        }
    }
}

/// What one participant's counters were at the start of the current window, and the rates
/// of the last complete window.
#[derive(Debug, Clone, Copy)]
struct RateWindow {
    at: Instant,
    bytes_in: u64,
    bytes_out: u64,
    expected_in: u64,
    received_in: u64,
    bitrate_in: u64,
    bitrate_out: u64,
    fraction_lost_in: f64,
    /// The tick that last saw this participant (stale windows are dropped).
    generation: u64,
}

/// Peer counters summed (the peer-level fields of [`EngineCounters`]).
#[derive(Debug, Clone, Copy, Default)]
struct PeerSums {
    rtcp_in: u64,
    rtcp_out: u64,
    nacks_in: u64,
    nacks_out: u64,
    retransmits_out: u64,
    rtx_in: u64,
    plis_in: u64,
    firs_in: u64,
    data_in: u64,
    data_out: u64,
}

impl PeerSums {
    fn add(&mut self, s: &PeerStats) {
        self.rtcp_in += s.rtcp_in;
        self.rtcp_out += s.rtcp_out;
        self.nacks_in += s.nacks_in;
        self.nacks_out += s.nacks_out;
        self.retransmits_out += s.retransmits_out;
        self.rtx_in += s.rtx_in;
        self.plis_in += s.plis_in;
        self.firs_in += s.firs_in;
        self.data_in += s.data_messages_in;
        self.data_out += s.data_messages_out;
    }
}

/// The engine's statistics state: counters of peers that are gone, the sampling timer and
/// the per-participant rate windows.
#[derive(Debug)]
pub(crate) struct EngineStats {
    retired: PeerSums,
    next_tick: Instant,
    generation: u64,
    windows: BTreeMap<ParticipantId, RateWindow>,
}

/// Bits per second of `bytes` over `dt`.
fn bps(bytes: u64, dt: Duration) -> u64 {
    let micros = dt.as_micros();
    if micros == 0 {
        return 0;
    }
    (u128::from(bytes) * 8 * 1_000_000 / micros).min(u128::from(u64::MAX)) as u64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl EngineStats {
    pub(crate) fn new(now: Instant) -> Self {
        EngineStats {
            retired: PeerSums::default(),
            next_tick: now + STATS_INTERVAL,
            generation: 0,
            windows: BTreeMap::new(),
        }
    }

    /// Keeps the counters of a peer that is going away (participant removed).
    pub(crate) fn retire(&mut self, peer: &Peer) {
        self.retired.add(&peer.stats());
    }

    /// The peer-level fields of `c`: retired peers plus `live` ones.
    pub(crate) fn fill_counters<'a>(
        &self,
        c: &mut EngineCounters,
        live: impl Iterator<Item = &'a Peer>,
    ) {
        let mut sums = self.retired;
        for peer in live {
            sums.add(&peer.stats());
        }
        c.rtcp_in = sums.rtcp_in;
        c.rtcp_out = sums.rtcp_out;
        c.nacks_received = sums.nacks_in;
        c.nacks_sent = sums.nacks_out;
        c.rtx_sent = sums.retransmits_out;
        c.rtx_received = sums.rtx_in;
        c.plis_received = sums.plis_in;
        c.firs_received = sums.firs_in;
        c.data_messages_in = sums.data_in;
        c.data_messages_out = sums.data_out;
    }

    /// The sampling deadline, when there is anybody to sample.
    pub(crate) fn poll_timeout(&self, anybody: bool) -> Option<Instant> {
        anybody.then_some(self.next_tick)
    }

    /// Samples every participant's counters when the window is over.
    pub(crate) fn handle_timeout<'a>(
        &mut self,
        now: Instant,
        participants: impl Iterator<Item = (ParticipantId, Option<&'a Peer>)>,
    ) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + STATS_INTERVAL;
        self.generation += 1;
        let generation = self.generation;
        for (id, peer) in participants {
            let Some(peer) = peer else { continue };
            let s = peer.stats();
            let q = peer.quality().inbound;
            match self.windows.get_mut(&id) {
                Some(w) => {
                    let dt = now.saturating_duration_since(w.at);
                    w.bitrate_in = bps(s.bytes_in.saturating_sub(w.bytes_in), dt);
                    w.bitrate_out = bps(s.bytes_out.saturating_sub(w.bytes_out), dt);
                    let expected = q.packets_expected.saturating_sub(w.expected_in);
                    let received = q.packets_received.saturating_sub(w.received_in);
                    w.fraction_lost_in = if expected > received {
                        (expected - received) as f64 / expected as f64
                    } else {
                        0.0
                    };
                    w.at = now;
                    w.bytes_in = s.bytes_in;
                    w.bytes_out = s.bytes_out;
                    w.expected_in = q.packets_expected;
                    w.received_in = q.packets_received;
                    w.generation = generation;
                }
                None => {
                    self.windows.insert(
                        id,
                        RateWindow {
                            at: now,
                            bytes_in: s.bytes_in,
                            bytes_out: s.bytes_out,
                            expected_in: q.packets_expected,
                            received_in: q.packets_received,
                            bitrate_in: 0,
                            bitrate_out: 0,
                            fraction_lost_in: 0.0,
                            generation,
                        },
                    );
                }
            }
        }
        self.windows.retain(|_, w| w.generation == generation);
    }

    /// One participant's details (`peer` is `None` before its first offer).
    pub(crate) fn participant(
        &self,
        id: ParticipantId,
        name: &str,
        connected: bool,
        tracks: Vec<TrackInfo>,
        peer: Option<&Peer>,
    ) -> ParticipantDetails {
        let mut stats = PeerDetails::default();
        let mut transport = None;
        if let Some(peer) = peer {
            let s = peer.stats();
            let q = peer.quality();
            let w = self.windows.get(&id);
            transport = peer.selected_transport();
            stats.rtt_ms = s.rtt.map(ms);
            stats.inbound = DirectionStats {
                packets: s.packets_in,
                bytes: s.bytes_in,
                bitrate_bps: w.map_or(0, |w| w.bitrate_in),
                packets_lost: q.inbound.packets_lost,
                fraction_lost: w.map_or(0.0, |w| w.fraction_lost_in),
                jitter_ms: ms(q.inbound.jitter),
                streams: q.inbound.streams,
            };
            stats.outbound = DirectionStats {
                packets: s.packets_out,
                bytes: s.bytes_out,
                bitrate_bps: w.map_or(0, |w| w.bitrate_out),
                packets_lost: q.outbound.packets_lost,
                fraction_lost: f64::from(q.outbound.fraction_lost_q8) / 256.0,
                jitter_ms: ms(q.outbound.jitter),
                streams: q.outbound.streams,
            };
        }
        ParticipantDetails {
            id,
            name: name.to_owned(),
            connected,
            transport,
            tracks,
            stats,
        }
    }

    /// Assembles [`RoomDetails`] with its totals.
    pub(crate) fn room(&self, name: &str, participants: Vec<ParticipantDetails>) -> RoomDetails {
        RoomDetails::new(name, participants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_rate_of_a_window() {
        assert_eq!(bps(1000, Duration::from_secs(1)), 8000);
        assert_eq!(bps(1000, Duration::from_millis(500)), 16_000);
        assert_eq!(bps(1000, Duration::ZERO), 0);
        assert_eq!(bps(u64::MAX, Duration::from_micros(1)), u64::MAX);
    }

    #[test]
    fn room_totals_sum_the_participants() {
        let p = |id, packets, bytes, rate| ParticipantDetails {
            id: ParticipantId(id),
            name: format!("p{id}"),
            connected: true,
            transport: Some(Transport::Udp),
            tracks: Vec::new(),
            stats: PeerDetails {
                rtt_ms: None,
                inbound: DirectionStats {
                    packets,
                    bytes,
                    bitrate_bps: rate,
                    ..DirectionStats::default()
                },
                outbound: DirectionStats {
                    packets: packets * 2,
                    bytes: bytes * 2,
                    bitrate_bps: rate * 2,
                    ..DirectionStats::default()
                },
            },
        };
        let r = RoomDetails::new("r", vec![p(1, 10, 1000, 8000), p(2, 5, 300, 100)]);
        assert_eq!(
            r.totals,
            RoomTotals {
                participants: 2,
                tracks: 0,
                packets_in: 15,
                packets_out: 30,
                bytes_in: 1300,
                bytes_out: 2600,
                bitrate_in_bps: 8100,
                bitrate_out_bps: 16_200,
            }
        );
    }
}

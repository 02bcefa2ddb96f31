//! In-memory harness: two endpoints over a simulated lossy link with simulated time.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One direction of a link: drops a packet with probability `loss`, delays it by `delay`.
pub struct Link {
    pub loss: f64,
    pub delay: Duration,
    rng: StdRng,
    in_flight: VecDeque<(Instant, Bytes)>,
    pub sent: u64,
    pub dropped: u64,
    /// Every packet that went onto the wire (for inspection), if `record` is set.
    pub record: bool,
    pub wire: Vec<Bytes>,
}

impl Link {
    pub fn new(loss: f64, delay: Duration, seed: u64) -> Self {
        Link {
            loss,
            delay,
            rng: StdRng::seed_from_u64(seed),
            in_flight: VecDeque::new(),
            sent: 0,
            dropped: 0,
            record: false,
            wire: Vec::new(),
        }
    }

    pub fn push(&mut self, now: Instant, packet: Bytes) {
        self.sent += 1;
        if self.record {
            self.wire.push(packet.clone());
        }
        if self.loss > 0.0 && self.rng.random_bool(self.loss) {
            self.dropped += 1;
            return;
        }
        self.in_flight.push_back((now + self.delay, packet));
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<Bytes> {
        if self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            self.in_flight.pop_front().map(|(_, p)| p)
        } else {
            None
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.in_flight.front().map(|(at, _)| *at)
    }
}

/// Anything that can sit at one end of the simulated link.
pub trait Peer {
    fn receive(&mut self, now: Instant, packet: &[u8]);
    fn transmit(&mut self) -> Option<Bytes>;
    fn timeout(&self) -> Option<Instant>;
    fn on_timeout(&mut self, now: Instant);
}

impl Peer for tympan_sctp::SctpAssociation {
    fn receive(&mut self, now: Instant, packet: &[u8]) {
        self.handle_dtls_data(now, packet);
    }
    fn transmit(&mut self) -> Option<Bytes> {
        self.poll_transmit()
    }
    fn timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn on_timeout(&mut self, now: Instant) {
        self.handle_timeout(now);
    }
}

/// Two peers, two links, one simulated clock.
pub struct Sim<A, B> {
    pub a: A,
    pub b: B,
    pub now: Instant,
    pub start: Instant,
    pub ab: Link,
    pub ba: Link,
    pub max_packet: usize,
}

impl<A: Peer, B: Peer> Sim<A, B> {
    pub fn new(a: A, b: B, start: Instant, loss: f64, rtt: Duration, seed: u64) -> Self {
        Sim {
            a,
            b,
            now: start,
            start,
            ab: Link::new(loss, rtt / 2, seed),
            ba: Link::new(loss, rtt / 2, seed.wrapping_mul(31).wrapping_add(7)),
            max_packet: 0,
        }
    }

    /// Exchanges packets due at the current time until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(p) = self.a.transmit() {
                self.max_packet = self.max_packet.max(p.len());
                self.ab.push(self.now, p);
                moved = true;
            }
            while let Some(p) = self.b.transmit() {
                self.max_packet = self.max_packet.max(p.len());
                self.ba.push(self.now, p);
                moved = true;
            }
            while let Some(p) = self.ab.pop_due(self.now) {
                self.b.receive(self.now, &p);
                moved = true;
            }
            while let Some(p) = self.ba.pop_due(self.now) {
                self.a.receive(self.now, &p);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("simulation does not settle");
    }

    /// Settles, then advances the clock to the next event (packet arrival or timer), at most
    /// `max_step` ahead. Returns false if nothing is scheduled at all.
    pub fn step(&mut self, max_step: Duration) -> bool {
        self.settle();
        let next = [
            self.ab.next_due(),
            self.ba.next_due(),
            self.a.timeout(),
            self.b.timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        // A timer already due that did not move would stall the clock: nudge forward.
        let next = if next <= self.now {
            self.now + Duration::from_millis(1)
        } else {
            next.min(self.now + max_step)
        };
        self.now = next;
        self.a.on_timeout(self.now);
        self.b.on_timeout(self.now);
        true
    }

    /// Runs until `done` holds (checked after each step) or `limit` of simulated time passes.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.now + limit;
        while self.now < deadline {
            if done(self) {
                return true;
            }
            if !self.step(Duration::from_millis(100)) {
                // Nothing scheduled: give the caller a chance, then advance a bit.
                self.now += Duration::from_millis(10);
            }
        }
        done(self)
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

/// SCTP DATA chunks of a packet: (flags, stream id, PPID, payload length). Parses the common
/// header and chunk list per RFC 9260 section 3; written here to inspect what goes on the wire.
pub fn data_chunks(packet: &[u8]) -> Vec<(u8, u16, u32, usize)> {
    let mut out = Vec::new();
    let mut at = 12;
    while at + 4 <= packet.len() {
        let kind = packet[at];
        let flags = packet[at + 1];
        let len = usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]]));
        if len < 4 || at + len > packet.len() {
            break;
        }
        if kind == 0 && len >= 16 {
            let sid = u16::from_be_bytes([packet[at + 8], packet[at + 9]]);
            let ppid = u32::from_be_bytes([
                packet[at + 12],
                packet[at + 13],
                packet[at + 14],
                packet[at + 15],
            ]);
            out.push((flags, sid, ppid, len - 16));
        }
        at += (len + 3) & !3;
    }
    out
}

/// Chunk types present in a packet.
pub fn chunk_types(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 12;
    while at + 4 <= packet.len() {
        let len = usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]]));
        out.push(packet[at]);
        if len < 4 {
            break;
        }
        at += (len + 3) & !3;
    }
    out
}

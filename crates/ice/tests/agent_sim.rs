//! Two of our agents over a simulated network with simulated time: direct, full-cone NAT,
//! symmetric NAT (relay needed), packet loss, role conflict, ICE restart, consent loss, lite
//! and TCP.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tympan_ice::agent::{
    Candidate, CandidateKind, Credentials, IceAgent, IceConfig, IceEvent, IceState, Nomination,
    TcpType, Transport,
};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NatKind {
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Address-and-port-dependent mapping and filtering.
    Symmetric,
}

struct Nat {
    kind: NatKind,
    public_ip: IpAddr,
    next_port: u16,
    /// (internal, destination or None for full cone) -> public
    map: HashMap<(SocketAddr, Option<SocketAddr>), SocketAddr>,
    /// public -> internal
    reverse: HashMap<SocketAddr, SocketAddr>,
    /// (public, remote) pairs that have been sent to.
    sent_to: HashSet<(SocketAddr, SocketAddr)>,
}

impl Nat {
    fn new(kind: NatKind, ip: &str) -> Self {
        Nat {
            kind,
            public_ip: ip.parse().unwrap(),
            next_port: 40000,
            map: HashMap::new(),
            reverse: HashMap::new(),
            sent_to: HashSet::new(),
        }
    }

    fn outbound(&mut self, internal: SocketAddr, dest: SocketAddr) -> SocketAddr {
        let key = match self.kind {
            NatKind::FullCone => (internal, None),
            NatKind::Symmetric => (internal, Some(dest)),
        };
        let p = match self.map.get(&key) {
            Some(p) => *p,
            None => {
                let p = SocketAddr::new(self.public_ip, self.next_port);
                self.next_port += 1;
                self.map.insert(key, p);
                self.reverse.insert(p, internal);
                p
            }
        };
        self.sent_to.insert((p, dest));
        p
    }

    fn inbound(&self, public: SocketAddr, from: SocketAddr) -> Option<SocketAddr> {
        let internal = *self.reverse.get(&public)?;
        match self.kind {
            NatKind::FullCone => Some(internal),
            NatKind::Symmetric => self.sent_to.contains(&(public, from)).then_some(internal),
        }
    }
}

struct Peer {
    agent: IceAgent,
    nat: Option<Nat>,
    hosts: Vec<SocketAddr>,
    relay: Option<SocketAddr>,
    events: Vec<(Duration, IceEvent)>,
    silent: bool,
}

struct Packet {
    at: Instant,
    transport: Transport,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

struct Sim {
    start: Instant,
    now: Instant,
    peers: Vec<Peer>,
    flight: Vec<Packet>,
    loss: f64,
    rng: u64,
    latency: Duration,
    dropped: usize,
}

impl Sim {
    fn new(a: Peer, b: Peer, loss: f64, seed: u64) -> Self {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            peers: vec![a, b],
            flight: Vec::new(),
            loss,
            rng: seed | 1,
            latency: Duration::from_millis(15),
            dropped: 0,
        }
    }

    fn rand(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 1_000_000) as f64 / 1_000_000.0
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Sends a packet transmitted by peer `i` into the network.
    fn route_out(
        &mut self,
        i: usize,
        transport: Transport,
        src: SocketAddr,
        dst: SocketAddr,
        data: Vec<u8>,
    ) {
        if self.peers[i].silent {
            return;
        }
        if self.loss > 0.0 && self.rand() < self.loss {
            self.dropped += 1;
            return;
        }
        let from = if self.peers[i].relay == Some(src) {
            src
        } else if let Some(nat) = &mut self.peers[i].nat {
            nat.outbound(src, dst)
        } else {
            src
        };
        self.flight.push(Packet {
            at: self.now + self.latency,
            transport,
            from,
            to: dst,
            data,
        });
    }

    /// Where a packet addressed to `to` from `from` lands: (peer, local address).
    fn route_in(&self, from: SocketAddr, to: SocketAddr) -> Option<(usize, SocketAddr)> {
        for (j, p) in self.peers.iter().enumerate() {
            if p.relay == Some(to) {
                return Some((j, to));
            }
            match &p.nat {
                Some(nat) => {
                    if to.ip() == nat.public_ip {
                        return nat.inbound(to, from).map(|internal| (j, internal));
                    }
                }
                None => {
                    if p.hosts.contains(&to) {
                        return Some((j, to));
                    }
                }
            }
        }
        None
    }

    fn drain_events(&mut self) {
        let el = self.elapsed();
        for p in &mut self.peers {
            while let Some(e) = p.agent.poll_event() {
                p.events.push((el, e));
            }
        }
    }

    fn step(&mut self) -> bool {
        // Drain output.
        for i in 0..self.peers.len() {
            while let Some(t) = self.peers[i].agent.poll_transmit() {
                self.route_out(i, t.transport, t.source, t.destination, t.contents);
            }
            let el = self.elapsed();
            while let Some(e) = self.peers[i].agent.poll_event() {
                self.peers[i].events.push((el, e));
            }
        }
        // Next time.
        let mut next: Option<Instant> = self.flight.iter().map(|p| p.at).min();
        for p in &self.peers {
            if let Some(t) = p.agent.poll_timeout() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let Some(next) = next else { return false };
        self.now = next.max(self.now);
        // Deliver.
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.flight.len() {
            if self.flight[i].at <= self.now {
                due.push(self.flight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        for p in due {
            if let Some((j, local)) = self.route_in(p.from, p.to) {
                if !self.peers[j].silent {
                    self.peers[j].agent.handle_packet_on(
                        self.now,
                        p.transport,
                        p.from,
                        local,
                        &p.data,
                    );
                }
            } else {
                self.dropped += 1;
            }
        }
        for p in &mut self.peers {
            if p.agent.poll_timeout().is_some_and(|t| t <= self.now) {
                p.agent.handle_timeout(self.now);
            }
        }
        true
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        while self.elapsed() < limit {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        done(self)
    }

    fn connected(&self) -> bool {
        self.peers.iter().all(|p| {
            matches!(p.agent.state(), IceState::Connected | IceState::Completed)
                && p.agent.selected_pair().is_some()
        })
    }

    fn first_time(&self, i: usize, e: &IceEvent) -> Option<Duration> {
        self.peers[i]
            .events
            .iter()
            .find(|(_, x)| x == e)
            .map(|(t, _)| *t)
    }
}

fn cfg(controlling: bool, seed: u64) -> IceConfig {
    IceConfig {
        controlling,
        seed,
        ..IceConfig::default()
    }
}

fn peer(cfg: IceConfig, hosts: &[&str], nat: Option<Nat>) -> Peer {
    let mut agent = IceAgent::new(cfg);
    let hosts: Vec<SocketAddr> = hosts.iter().map(|h| sa(h)).collect();
    for h in &hosts {
        agent.add_local_candidate(Candidate::host(*h));
    }
    Peer {
        agent,
        nat,
        hosts,
        relay: None,
        events: Vec::new(),
        silent: false,
    }
}

/// Exchanges credentials and candidates (what signalling would do), then starts both.
fn signal(sim: &mut Sim) {
    let creds: Vec<Credentials> = sim
        .peers
        .iter()
        .map(|p| p.agent.local_credentials().clone())
        .collect();
    let cands: Vec<Vec<Candidate>> = sim
        .peers
        .iter()
        .map(|p| p.agent.local_candidates().to_vec())
        .collect();
    for i in 0..2 {
        let other = 1 - i;
        sim.peers[i]
            .agent
            .set_remote_credentials(creds[other].clone());
        for c in &cands[other] {
            // Over SDP the peer learns only type, transport, address, priority, tcptype.
            let mut r = Candidate::remote(c.kind, c.transport, c.addr, c.priority);
            r.tcp_type = c.tcp_type;
            sim.peers[i].agent.add_remote_candidate(r);
        }
        sim.peers[i].agent.end_of_remote_candidates();
    }
    let now = sim.now;
    for p in &mut sim.peers {
        p.agent.handle_timeout(now);
    }
}

/// Adds a server-reflexive candidate as a STUN server at `stun` would report it.
fn add_srflx(p: &mut Peer, stun: &str) {
    let host = p.hosts[0];
    let mapped = p.nat.as_mut().unwrap().outbound(host, sa(stun));
    p.agent
        .add_local_candidate(Candidate::server_reflexive(mapped, host));
}

fn assert_mirrored(sim: &Sim) {
    // Each side's selected pair must be a real path: A sends to an address that lands at B.
    for i in 0..2 {
        let (_, remote, _) = sim.peers[i].agent.selected_pair().unwrap();
        let lands = sim.route_in(SocketAddr::from(([9, 9, 9, 9], 9)), remote);
        // For NATed peers only established mappings accept; checking the mapping exists suffices.
        let owner_ok = lands.is_some_and(|(j, _)| j == 1 - i)
            || sim.peers[1 - i]
                .nat
                .as_ref()
                .is_some_and(|n| n.reverse.contains_key(&remote))
            || sim.peers[1 - i].relay == Some(remote);
        assert!(
            owner_ok,
            "peer {i} selected remote {remote} which is not peer {}",
            1 - i
        );
    }
}

#[test]
fn direct_connection_completes() {
    let a = peer(cfg(true, 1), &["192.0.2.1:1000"], None);
    let b = peer(cfg(false, 2), &["198.51.100.2:2000"], None);
    let mut sim = Sim::new(a, b, 0.0, 7);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.connected()));
    assert_eq!(
        sim.peers[0].agent.selected_pair(),
        Some((
            sa("192.0.2.1:1000"),
            sa("198.51.100.2:2000"),
            Transport::Udp
        ))
    );
    assert_eq!(
        sim.peers[1].agent.selected_pair(),
        Some((
            sa("198.51.100.2:2000"),
            sa("192.0.2.1:1000"),
            Transport::Udp
        ))
    );
    // Direct path with one pair: connect within a few RTTs, then Completed.
    assert!(
        sim.elapsed() < Duration::from_millis(800),
        "{:?}",
        sim.elapsed()
    );
    assert!(sim.run_until(Duration::from_secs(6), |s| {
        s.peers
            .iter()
            .all(|p| p.agent.state() == IceState::Completed)
    }));
    // Still alive after a minute of consent checks.
    sim.run_until(Duration::from_secs(60), |_| false);
    assert_eq!(sim.peers[0].agent.state(), IceState::Completed);
    assert_eq!(sim.peers[1].agent.state(), IceState::Completed);
    let ev = &sim.peers[0].events;
    assert!(
        ev.iter()
            .any(|(_, e)| matches!(e, IceEvent::SelectedPair { .. }))
    );
    assert!(
        ev.iter()
            .any(|(_, e)| *e == IceEvent::StateChanged(IceState::Checking))
    );
}

#[test]
fn aggressive_nomination_connects() {
    let mut c = cfg(true, 3);
    c.nomination = Nomination::Aggressive;
    let a = peer(c, &["192.0.2.1:1000", "192.0.2.1:1001"], None);
    let b = peer(cfg(false, 4), &["198.51.100.2:2000"], None);
    let mut sim = Sim::new(a, b, 0.0, 9);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.connected()));
    assert_mirrored(&sim);
}

#[test]
fn full_cone_nat_both_sides() {
    let mut a = peer(
        cfg(true, 5),
        &["10.0.0.1:5000"],
        Some(Nat::new(NatKind::FullCone, "203.0.113.1")),
    );
    let mut b = peer(
        cfg(false, 6),
        &["10.0.1.1:6000"],
        Some(Nat::new(NatKind::FullCone, "203.0.113.2")),
    );
    add_srflx(&mut a, "192.0.2.100:3478");
    add_srflx(&mut b, "192.0.2.100:3478");
    let mut sim = Sim::new(a, b, 0.0, 11);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(10), |s| s.connected()));
    let (la, ra, _) = sim.peers[0].agent.selected_pair().unwrap();
    assert_eq!(la, sa("10.0.0.1:5000"));
    assert_eq!(ra.ip(), "203.0.113.2".parse::<IpAddr>().unwrap());
    assert_mirrored(&sim);
}

fn symmetric_setup(with_relay: bool, seed: u64) -> Sim {
    let mut a = peer(
        cfg(true, seed),
        &["10.0.0.1:5000"],
        Some(Nat::new(NatKind::Symmetric, "203.0.113.1")),
    );
    let mut b = peer(
        cfg(false, seed + 1),
        &["10.0.1.1:6000"],
        Some(Nat::new(NatKind::Symmetric, "203.0.113.2")),
    );
    add_srflx(&mut a, "192.0.2.100:3478");
    add_srflx(&mut b, "192.0.2.100:3478");
    if with_relay {
        let relay = sa("192.0.2.200:49152");
        a.relay = Some(relay);
        a.agent.add_local_candidate(Candidate::relayed(relay));
    }
    let mut sim = Sim::new(a, b, 0.0, seed);
    signal(&mut sim);
    sim
}

#[test]
fn symmetric_nat_fails_without_relay() {
    let mut sim = symmetric_setup(false, 20);
    let failed = sim.run_until(Duration::from_secs(40), |s| {
        s.peers.iter().all(|p| p.agent.state() == IceState::Failed)
    });
    assert!(
        failed,
        "states {:?} {:?}",
        sim.peers[0].agent.state(),
        sim.peers[1].agent.state()
    );
}

#[test]
fn symmetric_nat_connects_through_relay() {
    let mut sim = symmetric_setup(true, 30);
    assert!(sim.run_until(Duration::from_secs(15), |s| s.connected()));
    let relay = sa("192.0.2.200:49152");
    let (la, _, _) = sim.peers[0].agent.selected_pair().unwrap();
    let (_, rb, _) = sim.peers[1].agent.selected_pair().unwrap();
    assert_eq!(la, relay, "A must send from its relayed address");
    assert_eq!(rb, relay, "B must send to A's relayed address");
    // B learned A's relay via signalling; A learned B's NAT mapping as peer reflexive.
    assert!(
        sim.peers[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, IceEvent::PeerReflexiveRemote(_)))
    );
}

fn lossy(loss: f64, seed: u64) {
    let a = peer(cfg(true, seed), &["192.0.2.1:1000", "192.0.2.1:1001"], None);
    let b = peer(cfg(false, seed + 1), &["198.51.100.2:2000"], None);
    let mut sim = Sim::new(a, b, loss, seed);
    signal(&mut sim);
    assert!(
        sim.run_until(Duration::from_secs(20), |s| s.connected()),
        "loss {loss} seed {seed}"
    );
    assert_mirrored(&sim);
    sim.run_until(Duration::from_secs(60), |_| false);
    assert!(sim.dropped > 0);
    for p in &sim.peers {
        assert!(p.agent.selected_pair().is_some());
        assert_ne!(p.agent.state(), IceState::Failed, "loss {loss} seed {seed}");
    }
}

#[test]
fn ten_percent_loss() {
    for seed in [101, 202, 303, 404, 505] {
        lossy(0.10, seed);
    }
}

#[test]
fn thirty_percent_loss() {
    for seed in [111, 222, 333, 444, 555] {
        lossy(0.30, seed);
    }
}

#[test]
fn role_conflict_both_controlling_resolves() {
    for (ca, cb) in [(true, true), (false, false)] {
        let a = peer(cfg(ca, 40), &["192.0.2.1:1000"], None);
        let b = peer(cfg(cb, 41), &["198.51.100.2:2000"], None);
        let mut sim = Sim::new(a, b, 0.0, 13);
        signal(&mut sim);
        assert!(
            sim.run_until(Duration::from_secs(10), |s| s.connected()),
            "{ca} {cb}"
        );
        let roles = (
            sim.peers[0].agent.is_controlling(),
            sim.peers[1].agent.is_controlling(),
        );
        assert!(roles.0 != roles.1, "roles not resolved: {roles:?}");
        let switched = sim
            .peers
            .iter()
            .filter(|p| {
                p.events
                    .iter()
                    .any(|(_, e)| matches!(e, IceEvent::RoleChanged { .. }))
            })
            .count();
        assert_eq!(switched, 1);
        assert_mirrored(&sim);
    }
}

#[test]
fn ice_restart_keeps_pair_until_new_one_works() {
    let a = peer(cfg(true, 50), &["192.0.2.1:1000"], None);
    let b = peer(cfg(false, 51), &["198.51.100.2:2000"], None);
    let mut sim = Sim::new(a, b, 0.0, 17);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.connected()));
    sim.run_until(sim.elapsed() + Duration::from_secs(2), |_| false);
    let old_a = sim.peers[0].agent.selected_pair();
    let old_ufrag = sim.peers[0].agent.local_credentials().ufrag.clone();
    let selected_events_before = sim.peers[0]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, IceEvent::SelectedPair { .. }))
        .count();

    sim.peers[0]
        .agent
        .restart(Credentials::new("newAufrag", "newApasswordnewApassword"));
    sim.peers[1]
        .agent
        .restart(Credentials::new("newBufrag", "newBpasswordnewBpassword"));
    // While signalling is in flight the old pair is still usable.
    assert_eq!(sim.peers[0].agent.selected_pair(), old_a);
    assert!(matches!(
        sim.peers[0].agent.state(),
        IceState::Connected | IceState::Completed
    ));
    sim.run_until(sim.elapsed() + Duration::from_millis(300), |_| false);
    assert_eq!(sim.peers[0].agent.selected_pair(), old_a);

    signal(&mut sim);
    let t0 = sim.elapsed();
    // Both sides announce the pair selected by the new checklist (checks with the new
    // credentials succeeded), here on the same addresses as before.
    let selections = |s: &Sim, i: usize| {
        s.peers[i]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, IceEvent::SelectedPair { .. }))
            .count()
    };
    assert!(sim.run_until(t0 + Duration::from_secs(5), |s| {
        s.connected() && selections(s, 0) > selected_events_before && selections(s, 1) > 1
    }));
    assert_eq!(sim.peers[0].agent.selected_pair(), old_a);
    assert_ne!(sim.peers[0].agent.local_credentials().ufrag, old_ufrag);
    // The new checklist ran with the new credentials and produced a working selected pair.
    assert!(sim.connected());
    sim.run_until(sim.elapsed() + Duration::from_secs(40), |_| false);
    assert!(sim.connected(), "{:?}", sim.peers[0].agent.state());
}

#[test]
fn consent_lost_fails_after_30_simulated_seconds() {
    let a = peer(cfg(true, 60), &["192.0.2.1:1000"], None);
    let b = peer(cfg(false, 61), &["198.51.100.2:2000"], None);
    let mut sim = Sim::new(a, b, 0.0, 19);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.connected()));
    sim.run_until(Duration::from_secs(12), |_| false);
    // B goes silent: nothing in, nothing out.
    sim.peers[1].silent = true;
    let silent_at = sim.elapsed();
    assert!(
        sim.run_until(Duration::from_secs(120), |s| s.peers[0].agent.state()
            == IceState::Failed)
    );
    sim.drain_events();
    let failed_at = sim
        .first_time(0, &IceEvent::StateChanged(IceState::Failed))
        .unwrap();
    let disconnected_at = sim
        .first_time(0, &IceEvent::StateChanged(IceState::Disconnected))
        .unwrap();
    assert!(disconnected_at > silent_at && disconnected_at < failed_at);
    let silence = failed_at - silent_at;
    // The last consent response came at most one consent interval (≤ 6 s) before the silence.
    assert!(
        silence >= Duration::from_secs(24) && silence <= Duration::from_secs(31),
        "{silence:?}"
    );
    assert_eq!(sim.peers[0].agent.selected_pair(), None);
    // Failed is final: no further transmits.
    sim.step();
    assert!(sim.peers[0].agent.poll_transmit().is_none());
}

#[test]
fn lite_agent_against_full_agent() {
    let a = peer(cfg(true, 70), &["192.0.2.1:1000"], None);
    let b = peer(
        IceConfig {
            lite: true,
            seed: 71,
            ..IceConfig::default()
        },
        &["198.51.100.2:2000"],
        None,
    );
    let mut sim = Sim::new(a, b, 0.0, 23);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.connected()));
    assert!(!sim.peers[1].agent.is_controlling());
    assert_mirrored(&sim);
}

#[test]
fn tcp_active_to_passive() {
    let mut a = peer(cfg(true, 80), &[], None);
    let mut b = peer(cfg(false, 81), &[], None);
    a.hosts.push(sa("192.0.2.1:9"));
    b.hosts.push(sa("198.51.100.2:443"));
    a.agent
        .add_local_candidate(Candidate::host_tcp(sa("192.0.2.1:9"), TcpType::Active));
    b.agent.add_local_candidate(Candidate::host_tcp(
        sa("198.51.100.2:443"),
        TcpType::Passive,
    ));
    let mut sim = Sim::new(a, b, 0.0, 29);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.connected()));
    assert_eq!(
        sim.peers[0].agent.selected_pair().unwrap().2,
        Transport::Tcp
    );
    assert_eq!(
        sim.peers[1].agent.local_candidates()[0].kind,
        CandidateKind::Host
    );
}

#[test]
fn disconnected_recovers_when_peer_returns_and_close_is_final() {
    let a = peer(cfg(true, 90), &["192.0.2.1:1000"], None);
    let b = peer(cfg(false, 91), &["198.51.100.2:2000"], None);
    let mut sim = Sim::new(a, b, 0.0, 31);
    signal(&mut sim);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.connected()));
    sim.peers[1].silent = true;
    let t = sim.elapsed();
    assert!(
        sim.run_until(t + Duration::from_secs(25), |s| s.peers[0].agent.state()
            == IceState::Disconnected)
    );
    sim.peers[1].silent = false;
    let t = sim.elapsed();
    assert!(sim.run_until(t + Duration::from_secs(10), |s| matches!(
        s.peers[0].agent.state(),
        IceState::Connected | IceState::Completed
    )));
    sim.peers[0].agent.close();
    assert_eq!(sim.peers[0].agent.state(), IceState::Closed);
    assert_eq!(sim.peers[0].agent.poll_timeout(), None);
    sim.step();
    assert!(sim.peers[0].agent.poll_transmit().is_none());
    sim.drain_events();
    assert!(
        sim.peers[0]
            .events
            .iter()
            .any(|(_, e)| *e == IceEvent::StateChanged(IceState::Closed))
    );
}

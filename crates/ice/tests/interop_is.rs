//! Interop with an independent ICE implementation: `is` (str0m's ICE agent, crates.io), in
//! memory with simulated time. Candidates cross over as SDP `candidate:` lines, so the SDP
//! encoding of both sides is exercised too.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tympan_ice::agent::{Candidate, Credentials, IceAgent, IceConfig, IceState, Transport};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct InFlight {
    at: Instant,
    to_ours: bool,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

struct Outcome {
    ours_state: IceState,
    ours_selected: Option<(SocketAddr, SocketAddr, Transport)>,
    theirs_connected: bool,
    theirs_nominated: Option<(SocketAddr, SocketAddr)>,
    ours_controlling: bool,
    theirs_controlling: bool,
}

fn run(ours_cfg: IceConfig, theirs_controlling: bool) -> Outcome {
    let start = Instant::now();
    let mut now = start;
    let our_addr = sa("192.0.2.10:4000");
    let their_addr = sa("198.51.100.20:5000");

    let mut ours = IceAgent::new(ours_cfg);
    ours.add_local_candidate(Candidate::host(our_addr));

    let their_creds = is::IceCreds::new();
    let mut theirs = is::IceAgent::new(their_creds.clone());
    theirs.set_controlling(theirs_controlling);
    theirs.add_local_candidate(is::Candidate::host(their_addr, "udp").unwrap());

    // Signalling: credentials and candidate lines.
    ours.set_remote_credentials(Credentials::new(&their_creds.ufrag, &their_creds.pass));
    let oc = ours.local_credentials().clone();
    theirs.set_remote_credentials(is::IceCreds {
        ufrag: oc.ufrag.clone(),
        pass: oc.pwd.clone(),
    });
    for c in theirs.local_candidates() {
        let line = c.to_sdp_string();
        ours.add_remote_candidate(
            Candidate::from_sdp(&line).unwrap_or_else(|e| panic!("{line}: {e}")),
        );
    }
    ours.end_of_remote_candidates();
    for c in ours.local_candidates() {
        let line = c.to_sdp();
        theirs.add_remote_candidate(
            is::Candidate::from_sdp_string(&line).unwrap_or_else(|e| panic!("{line}: {e:?}")),
        );
    }

    let mut flight: Vec<InFlight> = Vec::new();
    let mut theirs_connected = false;
    let mut theirs_nominated = None;
    ours.handle_timeout(now);
    theirs.handle_timeout(now);
    while now - start < Duration::from_secs(10) {
        while let Some(t) = ours.poll_transmit() {
            flight.push(InFlight {
                at: now + Duration::from_millis(10),
                to_ours: false,
                from: t.source,
                to: t.destination,
                data: t.contents,
            });
        }
        while let Some(t) = theirs.poll_transmit() {
            flight.push(InFlight {
                at: now + Duration::from_millis(10),
                to_ours: true,
                from: t.source,
                to: t.destination,
                data: t.contents.into(),
            });
        }
        while let Some(e) = theirs.poll_event() {
            match e {
                is::IceAgentEvent::IceConnectionStateChange(s) => {
                    theirs_connected = s.is_connected()
                }
                is::IceAgentEvent::NominatedSend {
                    source,
                    destination,
                    ..
                } => theirs_nominated = Some((source, destination)),
                _ => {}
            }
        }
        while ours.poll_event().is_some() {}
        let done = theirs_connected
            && matches!(ours.state(), IceState::Connected | IceState::Completed)
            && theirs_nominated.is_some()
            && now - start > Duration::from_secs(2);
        if done {
            break;
        }
        let mut next = flight.iter().map(|p| p.at).min();
        for t in [ours.poll_timeout(), theirs.poll_timeout()]
            .into_iter()
            .flatten()
        {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
        let Some(next) = next else { break };
        now = next.max(now + Duration::from_micros(1));
        let (due, rest): (Vec<_>, Vec<_>) = flight.into_iter().partition(|p| p.at <= now);
        flight = rest;
        for p in due {
            if p.to_ours {
                ours.handle_packet(now, p.from, p.to, &p.data);
            } else {
                let message = is::stun::StunMessage::parse(&p.data).expect("is parses our STUN");
                theirs.handle_packet(
                    now,
                    is::stun::StunPacket {
                        proto: is::Protocol::Udp,
                        source: p.from,
                        destination: p.to,
                        message,
                    },
                );
            }
        }
        ours.handle_timeout(now);
        theirs.handle_timeout(now);
    }
    Outcome {
        ours_state: ours.state(),
        ours_selected: ours.selected_pair(),
        theirs_connected,
        theirs_nominated,
        ours_controlling: ours.is_controlling(),
        theirs_controlling: theirs.controlling(),
    }
}

fn assert_connected(o: &Outcome) {
    assert!(
        matches!(o.ours_state, IceState::Connected | IceState::Completed),
        "{:?}",
        o.ours_state
    );
    assert!(o.theirs_connected, "is agent not connected");
    assert_eq!(
        o.ours_selected,
        Some((
            sa("192.0.2.10:4000"),
            sa("198.51.100.20:5000"),
            Transport::Udp
        ))
    );
    assert_eq!(
        o.theirs_nominated,
        Some((sa("198.51.100.20:5000"), sa("192.0.2.10:4000")))
    );
    assert_ne!(o.ours_controlling, o.theirs_controlling);
}

#[test]
fn ours_controlling_is_controlled() {
    let o = run(
        IceConfig {
            controlling: true,
            seed: 1,
            ..IceConfig::default()
        },
        false,
    );
    assert_connected(&o);
    assert!(o.ours_controlling);
}

#[test]
fn ours_controlled_is_controlling() {
    let o = run(
        IceConfig {
            controlling: false,
            seed: 2,
            ..IceConfig::default()
        },
        true,
    );
    assert_connected(&o);
    assert!(!o.ours_controlling);
}

#[test]
fn ours_lite_against_full_is_agent() {
    let o = run(
        IceConfig {
            lite: true,
            seed: 3,
            ..IceConfig::default()
        },
        true,
    );
    assert_connected(&o);
}

//! TURN client against a real coturn on 127.0.0.1, started by `.ci/steps/20-turn.sh`
//! (static user `u:p`, realm `tympan`). Real UDP on loopback: allocate, permission, Send and
//! Data indications, channel bind, ChannelData both ways, deallocate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use tympan_ice::turn::{
    TurnClient, TurnConfig, TurnEvent, TurnInput, TurnState, stream_message_len,
};

enum Conn {
    Udp(UdpSocket),
    /// A TCP connection to the server and the bytes read but not yet consumed.
    Tcp(TcpStream, Vec<u8>),
}

impl Conn {
    fn send(&mut self, data: &[u8], to: SocketAddr) {
        match self {
            Conn::Udp(s) => {
                s.send_to(data, to).unwrap();
            }
            Conn::Tcp(s, _) => s.write_all(data).unwrap(),
        }
    }

    /// Next message from the server, if one arrives within 50 ms.
    fn recv(&mut self, server: SocketAddr) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        match self {
            Conn::Udp(s) => {
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let (n, from) = s.recv_from(&mut buf).ok()?;
                assert_eq!(from, server);
                Some(buf[..n].to_vec())
            }
            Conn::Tcp(s, pending) => {
                if let Some(n) = stream_message_len(pending) {
                    return Some(pending.drain(..n).collect());
                }
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let n = s.read(&mut buf).ok()?;
                pending.extend_from_slice(&buf[..n]);
                let n = stream_message_len(pending)?;
                Some(pending.drain(..n).collect())
            }
        }
    }
}

struct Harness {
    conn: Conn,
    client: TurnClient,
    events: Vec<TurnEvent>,
    received: Vec<(SocketAddr, Vec<u8>)>,
    sent: usize,
}

impl Harness {
    fn flush(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            self.conn.send(&t.contents, t.destination);
            self.sent += 1;
        }
    }

    /// Pumps the client until `done` holds or 5 s pass.
    fn pump(&mut self, mut done: impl FnMut(&Harness) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            self.flush();
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            if done(self) {
                return;
            }
            let server = self.client.server();
            if let Some(msg) = self.conn.recv(server) {
                if let TurnInput::Data { peer, data } =
                    self.client.handle_packet(Instant::now(), &msg)
                {
                    self.received.push((peer, data.to_vec()));
                }
            }
            self.client.handle_timeout(Instant::now());
        }
        panic!("timed out; events so far: {:?}", self.events);
    }
}

fn server() -> SocketAddr {
    std::env::var("TYMPAN_TURN_SERVER")
        .unwrap_or_else(|_| "127.0.0.1:34780".into())
        .parse()
        .unwrap()
}

#[test]
#[ignore = "needs coturn; run by .ci/steps/20-turn.sh"]
fn udp_allocate_permission_channel_and_data_both_ways() {
    let server = server();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = sock.local_addr().unwrap();
    scenario(server, Conn::Udp(sock), local);
}

#[test]
#[ignore = "needs coturn; run by .ci/steps/20-turn.sh"]
fn tcp_allocate_permission_channel_and_data_both_ways() {
    let server = server();
    let sock = TcpStream::connect(server).unwrap();
    let local = sock.local_addr().unwrap();
    scenario(server, Conn::Tcp(sock, Vec::new()), local);
}

fn scenario(server: SocketAddr, conn: Conn, local: SocketAddr) {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let mut h = Harness {
        conn,
        client: TurnClient::new(TurnConfig::new(server, "u", "p")),
        events: Vec::new(),
        received: Vec::new(),
        sent: 0,
    };

    // Allocate: 401 with realm/nonce, then the authenticated retry.
    h.client.allocate(Instant::now());
    h.pump(|h| h.client.state() == TurnState::Allocated);
    assert_eq!(
        h.sent, 2,
        "unauthenticated Allocate, then the retry with realm/nonce"
    );
    let relayed = h.client.relayed_address().unwrap();
    assert_eq!(relayed.ip(), server.ip());
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, TurnEvent::Allocated { mapped: Some(m), .. } if *m == local))
    );
    assert!(h.client.relayed_candidate().is_some());

    // Permission, then a Send indication to the peer.
    h.client
        .create_permission(Instant::now(), peer_addr.ip())
        .unwrap();
    h.pump(|h| {
        h.events
            .contains(&TurnEvent::PermissionCreated(peer_addr.ip()))
    });
    let mut out = [0u8; 1500];
    let n = h
        .client
        .encode_send(peer_addr, b"via send indication", &mut out)
        .unwrap();
    h.conn.send(&out[..n], server);
    let mut buf = [0u8; 1500];
    let (m, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(from, relayed);
    assert_eq!(&buf[..m], b"via send indication");

    // Peer answers: arrives as a Data indication.
    peer.send_to(b"reply via data indication", relayed).unwrap();
    h.pump(|h| !h.received.is_empty());
    assert_eq!(
        h.received[0],
        (peer_addr, b"reply via data indication".to_vec())
    );

    // Channel bind, then ChannelData both ways.
    let ch = h.client.bind_channel(Instant::now(), peer_addr).unwrap();
    h.pump(|h| h.client.channel_of(peer_addr) == Some(ch));
    let n = h
        .client
        .encode_send(peer_addr, b"via channel", &mut out)
        .unwrap();
    assert_eq!(u16::from_be_bytes([out[0], out[1]]), ch);
    h.conn.send(&out[..n], server);
    let (m, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((from, &buf[..m]), (relayed, &b"via channel"[..]));
    peer.send_to(b"back via channel", relayed).unwrap();
    h.pump(|h| h.received.len() >= 2);
    assert_eq!(h.received[1], (peer_addr, b"back via channel".to_vec()));

    // Deallocate.
    h.client.deallocate(Instant::now());
    h.pump(|h| h.client.state() == TurnState::Closed);
    assert!(h.events.contains(&TurnEvent::Closed));
}

/// ICE over a coturn relay: agent A has only its relayed candidate (handed over from the TURN
/// client); agent B is a host on loopback. Checks and responses really cross coturn.
#[test]
#[ignore = "needs coturn; run by .ci/steps/20-turn.sh"]
fn ice_agent_connects_through_coturn_relay() {
    use tympan_ice::agent::{Candidate, IceAgent, IceConfig, IceState};

    let server = server();
    let sock_a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock_b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr_b = sock_b.local_addr().unwrap();
    sock_a.set_nonblocking(true).unwrap();
    sock_b.set_nonblocking(true).unwrap();

    let mut h = Harness {
        conn: Conn::Udp(sock_a.try_clone().unwrap()),
        client: TurnClient::new(TurnConfig::new(server, "u", "p")),
        events: Vec::new(),
        received: Vec::new(),
        sent: 0,
    };
    h.client.allocate(Instant::now());
    h.pump(|h| h.client.state() == TurnState::Allocated);
    let relayed = h.client.relayed_address().unwrap();
    h.client
        .create_permission(Instant::now(), addr_b.ip())
        .unwrap();
    h.pump(|h| {
        h.events
            .contains(&TurnEvent::PermissionCreated(addr_b.ip()))
    });
    let mut turn = h.client;

    let mut a = IceAgent::new(IceConfig {
        controlling: true,
        seed: 11,
        ..IceConfig::default()
    });
    let mut b = IceAgent::new(IceConfig {
        seed: 12,
        ..IceConfig::default()
    });
    a.add_local_candidate(turn.relayed_candidate().unwrap());
    b.add_local_candidate(Candidate::host(addr_b));
    a.set_remote_credentials(b.local_credentials().clone());
    b.set_remote_credentials(a.local_credentials().clone());
    for c in b.local_candidates().to_vec() {
        a.add_remote_candidate(Candidate::from_sdp(&c.to_sdp()).unwrap());
    }
    for c in a.local_candidates().to_vec() {
        b.add_remote_candidate(Candidate::from_sdp(&c.to_sdp()).unwrap());
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    let mut out = [0u8; 2048];
    let connected = |s: IceState| matches!(s, IceState::Connected | IceState::Completed);
    while !(connected(a.state()) && connected(b.state())) {
        assert!(
            Instant::now() < deadline,
            "not connected: {:?} {:?}",
            a.state(),
            b.state()
        );
        let now = Instant::now();
        a.handle_timeout(now);
        b.handle_timeout(now);
        turn.handle_timeout(now);
        while let Some(t) = a.poll_transmit() {
            assert_eq!(t.source, relayed, "A only has its relayed candidate");
            let n = turn
                .encode_send(t.destination, &t.contents, &mut out)
                .unwrap();
            sock_a.send_to(&out[..n], server).unwrap();
        }
        while let Some(t) = turn.poll_transmit() {
            sock_a.send_to(&t.contents, t.destination).unwrap();
        }
        while let Some(t) = b.poll_transmit() {
            sock_b.send_to(&t.contents, t.destination).unwrap();
        }
        while let Ok((n, _)) = sock_a.recv_from(&mut buf) {
            if let TurnInput::Data { peer, data } = turn.handle_packet(now, &buf[..n]) {
                a.handle_packet(now, peer, relayed, data);
            }
        }
        while let Ok((n, from)) = sock_b.recv_from(&mut buf) {
            b.handle_packet(now, from, addr_b, &buf[..n]);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(a.selected_pair().unwrap().0, relayed);
    assert_eq!(b.selected_pair().unwrap().1, relayed);
}

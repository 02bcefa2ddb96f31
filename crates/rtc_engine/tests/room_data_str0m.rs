//! Room data and chat history with independent clients: str0m 0.24 (crates.io), in-process
//! and sans-IO over a simulated network with simulated time. Each client opens the two
//! room-data channels with str0m's own channel API — `tympan-data` (ordered, reliable) and
//! `tympan-data-lossy` (unordered, maxRetransmits 0) — negotiated in band (DCEP), and the
//! messages are read back from str0m's `ChannelData` events.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::change::SdpAnswer;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use tympan_rtc_engine::{
    Datagram, Engine, EngineConfig, LOSSY_LABEL, LeaveReason, Notice, ParticipantId,
    RELIABLE_LABEL, Transport,
};

const TICK: Duration = Duration::from_millis(5);

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

struct Client {
    id: ParticipantId,
    rtc: Rtc,
    addr: SocketAddr,
    /// Channel label -> str0m channel id (as opened by this client).
    channels: HashMap<String, ChannelId>,
    /// Labels of the channels str0m reported open.
    open: Vec<String>,
    /// (channel label, binary, text) of every message received, in order.
    received: Vec<(String, bool, String)>,
}

impl Client {
    fn label_of(&self, id: ChannelId) -> String {
        self.channels
            .iter()
            .find(|(_, c)| **c == id)
            .map(|(l, _)| l.clone())
            .unwrap_or_default()
    }

    /// Messages received on `label`, parsed as JSON.
    fn json_on(&self, label: &str) -> Vec<Value> {
        self.received
            .iter()
            .filter(|(l, binary, _)| l == label && !binary)
            .map(|(_, _, t)| serde_json::from_str(t).expect("the server sends JSON"))
            .collect()
    }

    fn send(&mut self, label: &str, binary: bool, data: &[u8]) {
        let id = self.channels[label];
        self.rtc
            .channel(id)
            .expect("open channel")
            .write(binary, data)
            .expect("str0m writes");
    }

    fn send_json(&mut self, label: &str, v: &Value) {
        self.send(label, false, v.to_string().as_bytes());
    }
}

struct World {
    now: Instant,
    engine: Engine,
    server: SocketAddr,
    clients: Vec<Client>,
    buf: Vec<u8>,
}

impl World {
    fn new(config: impl FnOnce(&mut EngineConfig)) -> World {
        install_crypto();
        let now = Instant::now();
        let server: SocketAddr = "10.0.0.1:3478".parse().unwrap();
        let mut c = EngineConfig::new(tympan_dtls::DtlsCertificate::generate().expect("cert"));
        c.udp_addrs.push(server);
        c.seed = 11;
        config(&mut c);
        World {
            now,
            engine: Engine::new(c, now).expect("engine"),
            server,
            clients: Vec::new(),
            buf: vec![0; 2048],
        }
    }

    /// Joins a client that opens `labels` (with the room-data reliability of each label;
    /// any other label is a plain reliable channel) in its first offer.
    fn join(&mut self, room: &str, name: &str, labels: &[&str]) -> usize {
        let joined = self.engine.join(self.now, room, name).expect("join");
        let addr: SocketAddr = format!("10.0.1.{}:5000", self.clients.len() + 2)
            .parse()
            .unwrap();
        let mut rtc = Rtc::new(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mut channels = HashMap::new();
        for &label in labels {
            let config = if label == LOSSY_LABEL {
                ChannelConfig {
                    label: label.into(),
                    ordered: false,
                    reliability: Reliability::MaxRetransmits { retransmits: 0 },
                    ..Default::default()
                }
            } else {
                ChannelConfig {
                    label: label.into(),
                    ..Default::default()
                }
            };
            channels.insert(label.to_string(), api.add_channel_with_config(config));
        }
        let (offer, pending) = api.apply().expect("an offer");
        let answer = self
            .engine
            .handle_offer(self.now, joined.participant, &offer.to_sdp_string(), &[])
            .expect("engine answers");
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .expect("str0m accepts the answer");
        self.clients.push(Client {
            id: joined.participant,
            rtc,
            addr,
            channels,
            open: Vec::new(),
            received: Vec::new(),
        });
        self.clients.len() - 1
    }

    fn exchange(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                loop {
                    match self.clients[i].rtc.poll_output().expect("poll_output") {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) => {
                            moved = true;
                            let mut d = t.contents.to_vec();
                            self.engine.handle_datagram(
                                self.now,
                                Datagram {
                                    local: self.server,
                                    remote: t.source,
                                    transport: Transport::Udp,
                                    contents: &mut d,
                                },
                            );
                        }
                        Output::Event(Event::ChannelOpen(_, label)) => {
                            self.clients[i].open.push(label)
                        }
                        Output::Event(Event::ChannelData(d)) => {
                            let c = &mut self.clients[i];
                            let label = c.label_of(d.id);
                            let text = String::from_utf8_lossy(&d.data).into_owned();
                            c.received.push((label, d.binary, text));
                        }
                        Output::Event(_) => {}
                    }
                }
            }
            while let Some(meta) = self.engine.poll_transmit(&mut self.buf) {
                moved = true;
                let Some(i) = self.clients.iter().position(|c| c.addr == meta.remote) else {
                    continue;
                };
                let d = self.buf[..meta.len].to_vec();
                let r = Receive::new(Protocol::Udp, self.server, meta.remote, &d).unwrap();
                self.clients[i]
                    .rtc
                    .handle_input(Input::Receive(self.now, r))
                    .expect("str0m handle_input");
            }
            // Data-only clients get no server offers; other notices are not needed here.
            while self.engine.poll_notice().is_some() {
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn advance(&mut self, tick: Duration) {
        self.now += tick;
        for c in &mut self.clients {
            c.rtc.handle_input(Input::Timeout(self.now)).unwrap();
        }
        if let Some((t, _)) = self.engine.poll_timeout()
            && t <= self.now
        {
            self.engine.handle_timeout(self.now);
        }
        self.exchange();
    }

    fn run_until(&mut self, max: Duration, done: impl Fn(&World) -> bool) -> bool {
        let end = self.now + max;
        self.exchange();
        while self.now < end {
            if done(self) {
                return true;
            }
            self.advance(TICK);
        }
        done(self)
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.advance(TICK);
        }
    }

    fn all_open(&self) -> bool {
        self.clients
            .iter()
            .all(|c| c.rtc.is_connected() && c.open.len() == c.channels.len())
    }
}

const BOTH: &[&str] = &[RELIABLE_LABEL, LOSSY_LABEL];

#[test]
fn room_data_reaches_the_right_participants_on_the_right_channel() {
    let mut w = World::new(|_| {});
    let a = w.join("data", "Ana", BOTH);
    let b = w.join("data", "Ben", BOTH);
    let c = w.join("data", "Chen", BOTH);
    // Dana only has the reliable channel (and one the server does not know).
    let d = w.join("data", "Dana", &[RELIABLE_LABEL, "chat"]);
    // Olga is in another room.
    let o = w.join("elsewhere", "Olga", BOTH);
    assert!(
        w.run_until(Duration::from_secs(10), World::all_open),
        "channels did not open: {:?}",
        w.clients.iter().map(|c| &c.open).collect::<Vec<_>>()
    );
    let id = |w: &World, i: usize| w.clients[i].id.to_string();
    let (ida, idb, idc) = (id(&w, a), id(&w, b), id(&w, c));

    // ---- to everyone, reliable, with a forged `from` that the server replaces.
    w.clients[a].send_json(
        RELIABLE_LABEL,
        &json!({"from": idb, "topic": "hand", "data": {"raised": true, "n": [1, 2.5, "x"]}}),
    );
    w.run_for(Duration::from_millis(100));
    for r in [b, c, d] {
        let got = w.clients[r].json_on(RELIABLE_LABEL);
        assert_eq!(
            got,
            vec![
                json!({"from": ida, "topic": "hand", "data": {"raised": true, "n": [1, 2.5, "x"]}})
            ],
            "recipient {r}"
        );
    }
    assert!(
        w.clients[a].received.is_empty(),
        "the sender gets nothing back"
    );
    assert!(
        w.clients[o].received.is_empty(),
        "another room gets nothing"
    );
    for r in [b, c, d] {
        assert!(w.clients[r].json_on(LOSSY_LABEL).is_empty());
    }

    // ---- to Ben only (listing Ana herself and Ben twice changes nothing).
    w.clients[a].send_json(
        RELIABLE_LABEL,
        &json!({"to": [idb, ida, idb], "data": "just for you"}),
    );
    w.run_for(Duration::from_millis(100));
    assert_eq!(
        w.clients[b].json_on(RELIABLE_LABEL).last(),
        Some(&json!({"from": ida, "data": "just for you"}))
    );
    assert_eq!(w.clients[b].json_on(RELIABLE_LABEL).len(), 2);
    assert_eq!(
        w.clients[c].json_on(RELIABLE_LABEL).len(),
        1,
        "Chen gets nothing"
    );
    assert_eq!(
        w.clients[d].json_on(RELIABLE_LABEL).len(),
        1,
        "Dana gets nothing"
    );
    assert!(w.clients[a].received.is_empty());

    // ---- lossy: arrives on the recipients' lossy channel; Dana has none and is skipped.
    for i in 0..5 {
        w.clients[c].send_json(LOSSY_LABEL, &json!({"topic": "reaction", "data": i}));
    }
    w.run_for(Duration::from_millis(100));
    for r in [a, b] {
        let got = w.clients[r].json_on(LOSSY_LABEL);
        // Nothing is lost on this network; unordered delivery may reorder.
        let mut values: Vec<i64> = got
            .iter()
            .map(|m| {
                assert_eq!(m["from"], json!(idc));
                assert_eq!(m["topic"], "reaction");
                m["data"].as_i64().unwrap()
            })
            .collect();
        values.sort_unstable();
        assert_eq!(values, [0, 1, 2, 3, 4], "recipient {r}");
    }
    assert_eq!(
        w.clients[d].json_on(RELIABLE_LABEL).len(),
        1,
        "not moved to reliable"
    );
    assert!(w.clients[d].json_on(LOSSY_LABEL).is_empty());
    assert_eq!(
        w.clients[c].received.len(),
        1,
        "Chen only has Ana's first message"
    );

    // ---- a message on a channel that is not room data is ignored.
    let before: Vec<usize> = w.clients.iter().map(|c| c.received.len()).collect();
    w.clients[d].send_json("chat", &json!({"data": 1}));
    w.run_for(Duration::from_millis(100));
    let after: Vec<usize> = w.clients.iter().map(|c| c.received.len()).collect();
    assert_eq!(before, after);

    // ---- errors go back to the sender on the same channel; nobody else gets anything.
    let big = json!({"data": "x".repeat(16 * 1024)});
    w.clients[b].send_json(RELIABLE_LABEL, &big);
    w.clients[b].send(RELIABLE_LABEL, false, b"{\"data\": [1, 2,");
    w.clients[b].send(RELIABLE_LABEL, true, b"{\"data\": 1}");
    w.clients[b].send_json(RELIABLE_LABEL, &json!({"to": ["p999"], "data": 1}));
    let ido = w.clients[o].id.to_string();
    w.clients[b].send_json(RELIABLE_LABEL, &json!({"to": [ido], "data": 1}));
    w.clients[b].send_json(LOSSY_LABEL, &json!({"topic": "t".repeat(65), "data": 1}));
    w.run_for(Duration::from_millis(200));
    let errors: Vec<String> = w.clients[b]
        .json_on(RELIABLE_LABEL)
        .iter()
        .filter(|m| m.get("error").is_some())
        .map(|m| {
            assert!(m["message"].as_str().is_some_and(|s| !s.is_empty()), "{m}");
            m["error"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        errors,
        [
            "too_large",
            "bad_message",
            "bad_message",
            "unknown_participant",
            "unknown_participant"
        ]
    );
    let lossy_errors = w.clients[b].json_on(LOSSY_LABEL);
    assert_eq!(lossy_errors.last().unwrap()["error"], "bad_message");
    for r in [a, c, d, o] {
        assert_eq!(
            w.clients[r].received.len(),
            after[r],
            "client {r} got a refused message"
        );
    }

    // ---- a participant that left is no longer a recipient, nor a valid `to`.
    let idc_id = w.clients[c].id;
    w.engine.leave(w.now, idc_id, LeaveReason::Left);
    w.run_for(Duration::from_millis(50));
    w.clients[a].send_json(RELIABLE_LABEL, &json!({"to": [idc], "data": 1}));
    w.clients[a].send_json(RELIABLE_LABEL, &json!({"data": "after"}));
    w.run_for(Duration::from_millis(100));
    assert_eq!(
        w.clients[a].json_on(RELIABLE_LABEL)[0]["error"],
        "unknown_participant"
    );
    assert_eq!(
        w.clients[b].json_on(RELIABLE_LABEL).last().unwrap(),
        &json!({"from": ida, "data": "after"})
    );
}

#[test]
fn a_late_joiner_gets_the_last_n_chat_messages_in_order() {
    const N: usize = 5;
    let mut w = World::new(|c| c.chat_history = N);
    let t0: u64 = 1_764_000_000_000;
    let ana = w.engine.join(w.now, "talk", "Ana").unwrap();
    let ben = w.engine.join(w.now, "talk", "Ben").unwrap();
    assert!(ben.chat_history.is_empty());
    // N + 1 messages from both; the oldest falls out.
    for i in 0..=N as u64 {
        let from = if i % 2 == 0 { &ana } else { &ben };
        w.engine
            .chat(w.now, from.participant, &format!("m{i}"), t0 + i)
            .unwrap();
    }
    // Refused messages are not remembered.
    assert!(w.engine.chat(w.now, ana.participant, " ", t0).is_err());
    let chat_notices = std::iter::from_fn(|| w.engine.poll_notice())
        .filter(|(_, n)| matches!(n, Notice::Chat { .. }))
        .count();
    assert_eq!(
        chat_notices,
        2 * (N + 1),
        "live chat still reaches everyone"
    );

    let chen = w.engine.join(w.now, "talk", "Chen").unwrap();
    let got: Vec<(ParticipantId, &str, &str, u64)> = chen
        .chat_history
        .iter()
        .map(|e| (e.from, e.name.as_str(), e.text.as_str(), e.timestamp_ms))
        .collect();
    let want: Vec<(ParticipantId, &str, &str, u64)> = (1..=N as u64)
        .map(|i| {
            let (p, name) = if i % 2 == 0 {
                (ana.participant, "Ana")
            } else {
                (ben.participant, "Ben")
            };
            (
                p,
                name,
                ["m1", "m2", "m3", "m4", "m5"][i as usize - 1],
                t0 + i,
            )
        })
        .collect();
    assert_eq!(got, want);

    // Another room has its own (empty) history; the history goes with its room.
    assert!(
        w.engine
            .join(w.now, "other", "Olga")
            .unwrap()
            .chat_history
            .is_empty()
    );
    for p in [ana.participant, ben.participant, chen.participant] {
        w.engine.leave(w.now, p, LeaveReason::Left);
    }
    assert!(
        w.engine
            .join(w.now, "talk", "Dana")
            .unwrap()
            .chat_history
            .is_empty()
    );
}

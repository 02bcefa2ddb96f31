//! Shared harness of the `peer_*` tests: our `Peer` and a str0m 0.24 `Rtc` (crates.io) wired
//! through a simulated in-memory network with simulated time.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::channel::ChannelId as Str0mChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid as Str0mMid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate as Str0mCandidate, Event, Input, Output, Rtc};

use tympan_dtls::{DtlsCertificate, DtlsConfig, DtlsContext};
use tympan_ice::agent::Candidate;
use tympan_rtc_engine::peer::{Datagram, Peer, PeerConfig, PeerEvent, Received, Transport};

pub(crate) const TICK: Duration = Duration::from_millis(5);

pub(crate) fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        str0m::crypto::from_feature_flags().install_process_default();
    });
}

pub(crate) type DropFilter = Box<dyn FnMut(&[u8]) -> bool>;

pub(crate) struct Sim {
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    pub(crate) peer: Peer,
    pub(crate) rtc: Rtc,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) rtc_addr: SocketAddr,
    pub(crate) to_peer: VecDeque<Vec<u8>>,
    pub(crate) to_rtc: VecDeque<Vec<u8>>,
    pub(crate) rtc_events: Vec<Event>,
    pub(crate) peer_events: Vec<PeerEvent>,
    /// Plaintext RTP packets our peer handed out, with their mid.
    pub(crate) peer_rtp: Vec<(String, Vec<u8>)>,
    /// Drops datagrams from our peer to str0m when it returns true.
    pub(crate) drop_to_rtc: DropFilter,
    pub(crate) dropped_to_rtc: usize,
    /// When false, nothing reaches our peer (str0m "stops sending checks").
    pub(crate) deliver_to_peer: bool,
    /// Copies of the datagrams str0m sent to our peer (for truncation tests), when enabled.
    pub(crate) record: bool,
    pub(crate) recorded: Vec<Vec<u8>>,
}

impl Sim {
    pub(crate) fn new() -> Self {
        install_crypto();
        let now = Instant::now();
        let peer_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let rtc_addr: SocketAddr = "10.0.0.2:6000".parse().unwrap();
        let ctx = DtlsContext::new(
            DtlsCertificate::generate().expect("certificate"),
            DtlsConfig::default(),
        )
        .expect("DTLS context");
        let peer = Peer::new(
            PeerConfig {
                local_candidates: vec![Candidate::host(peer_addr)],
                dtls: Arc::new(ctx),
                seed: 42,
                cname: "tympan-test".into(),
            },
            now,
        );
        let mut rtc = Rtc::new(now);
        rtc.add_local_candidate(Str0mCandidate::host(rtc_addr, "udp").unwrap());
        Sim {
            start: now,
            now,
            peer,
            rtc,
            peer_addr,
            rtc_addr,
            to_peer: VecDeque::new(),
            to_rtc: VecDeque::new(),
            rtc_events: Vec::new(),
            peer_events: Vec::new(),
            peer_rtp: Vec::new(),
            drop_to_rtc: Box::new(|_| false),
            dropped_to_rtc: 0,
            deliver_to_peer: true,
            record: false,
            recorded: Vec::new(),
        }
    }

    /// Moves datagrams both ways until nobody has anything to send.
    pub(crate) fn exchange(&mut self) {
        for _ in 0..50 {
            let mut moved = false;
            while self.rtc.is_alive() {
                match self.rtc.poll_output().expect("str0m poll_output") {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        assert_eq!(t.destination, self.peer_addr);
                        self.to_peer.push_back(t.contents.to_vec());
                    }
                    Output::Event(e) => self.rtc_events.push(e),
                }
            }
            while let Some(mut d) = self.to_peer.pop_front() {
                moved = true;
                if self.record {
                    self.recorded.push(d.clone());
                }
                if !self.deliver_to_peer {
                    continue;
                }
                let received = self.peer.handle_datagram(
                    self.now,
                    Datagram {
                        local: self.peer_addr,
                        remote: self.rtc_addr,
                        transport: Transport::Udp,
                        contents: &mut d,
                    },
                );
                if let Received::Rtp { mid, packet } = received {
                    self.peer_rtp.push((mid.to_string(), packet.to_vec()));
                }
            }
            while let Some(e) = self.peer.poll_event() {
                self.peer_events.push(e);
            }
            let mut buf = vec![0u8; 2048];
            while let Some(meta) = self.peer.poll_transmit(&mut buf) {
                assert_eq!(meta.remote, self.rtc_addr);
                assert_eq!(meta.local, self.peer_addr);
                let d = buf[..meta.len].to_vec();
                if (self.drop_to_rtc)(&d) {
                    self.dropped_to_rtc += 1;
                } else {
                    self.to_rtc.push_back(d);
                }
            }
            while let Some(d) = self.to_rtc.pop_front() {
                moved = true;
                if !self.rtc.is_alive() {
                    continue;
                }
                let r = Receive::new(Protocol::Udp, self.peer_addr, self.rtc_addr, &d)
                    .expect("str0m accepts the datagram");
                self.rtc
                    .handle_input(Input::Receive(self.now, r))
                    .expect("str0m handle_input");
            }
            if !moved {
                break;
            }
        }
    }

    pub(crate) fn advance(&mut self) {
        self.now += TICK;
        if self.rtc.is_alive() {
            self.rtc
                .handle_input(Input::Timeout(self.now))
                .expect("str0m timeout");
        }
        if let Some((t, _)) = self.peer.poll_timeout() {
            if t <= self.now {
                self.peer.handle_timeout(self.now);
            }
        }
        self.exchange();
    }

    pub(crate) fn run_until(&mut self, max: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + max;
        self.exchange();
        while self.now < end {
            if done(self) {
                return true;
            }
            self.advance();
        }
        done(self)
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.advance();
        }
    }

    pub(crate) fn peer_connected(&self) -> bool {
        self.peer_events
            .iter()
            .any(|e| matches!(e, PeerEvent::Connected))
    }

    pub(crate) fn str0m_channel_open(&self) -> Option<Str0mChannelId> {
        self.rtc_events.iter().find_map(|e| match e {
            Event::ChannelOpen(id, _) => Some(*id),
            _ => None,
        })
    }

    pub(crate) fn peer_channel_open(&self) -> Option<(tympan_rtc_engine::peer::ChannelId, String)> {
        self.peer_events.iter().find_map(|e| match e {
            PeerEvent::DataChannelOpen { channel, label } => Some((*channel, label.clone())),
            _ => None,
        })
    }
}

pub(crate) fn attr<'a>(sdp: &'a str, prefix: &str) -> Vec<&'a str> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
        .collect()
}

/// str0m offers audio + video + data channel; our peer answers; everything connects.
pub(crate) fn connect() -> (Sim, Str0mMid, Str0mMid, String) {
    connect_with(false)
}

/// Like [`connect`]; with `offer_passive` the offer our peer sees says `a=setup:passive`, so
/// our peer answers `active` and is the DTLS client (str0m then takes the server role).
pub(crate) fn connect_with(offer_passive: bool) -> (Sim, Str0mMid, Str0mMid, String) {
    let mut sim = Sim::new();
    let mut api = sim.rtc.sdp_api();
    let audio = api.add_media(
        MediaKind::Audio,
        Direction::SendRecv,
        Some("client".into()),
        Some("mic".into()),
        None,
    );
    let video = api.add_media(
        MediaKind::Video,
        Direction::SendRecv,
        Some("client".into()),
        Some("cam".into()),
        None,
    );
    let _dc = api.add_channel("chat".into());
    let (offer, pending) = api.apply().expect("an offer");
    let mut offer_text = offer.to_sdp_string();
    if offer_passive {
        offer_text = offer_text.replace("a=setup:actpass", "a=setup:passive");
    }
    let answer_text = sim
        .peer
        .accept_offer(sim.now, &offer_text)
        .expect("our peer answers str0m's offer");
    assert!(answer_text.contains("a=ice-lite"), "{answer_text}");
    let setup = if offer_passive {
        "a=setup:active"
    } else {
        "a=setup:passive"
    };
    assert!(answer_text.contains(setup), "{answer_text}");
    let answer = SdpAnswer::from_sdp_string(&answer_text).expect("str0m parses our answer");
    sim.rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("str0m accepts our answer");

    let ok = sim.run_until(Duration::from_secs(10), |s| {
        s.rtc.is_connected()
            && s.peer_connected()
            && s.str0m_channel_open().is_some()
            && s.peer_channel_open().is_some()
    });
    assert!(
        ok,
        "not connected: str0m connected={} peer events={:?} str0m events={:?}",
        sim.rtc.is_connected(),
        sim.peer_events,
        sim.rtc_events
            .iter()
            .filter(|e| !matches!(
                e,
                Event::MediaIngressStats(_) | Event::MediaEgressStats(_) | Event::PeerStats(_)
            ))
            .collect::<Vec<_>>()
    );
    assert!(
        sim.peer_events
            .iter()
            .any(|e| matches!(e, PeerEvent::IceConnected { remote, transport: Transport::Udp } if *remote == sim.rtc_addr)),
        "{:?}",
        sim.peer_events
    );
    (sim, audio, video, answer_text)
}

pub(crate) fn str0m_pt(rtc: &Rtc, codec: Codec) -> str0m::media::Pt {
    rtc.codec_config()
        .find(|p| p.spec().codec == codec)
        .expect("codec configured")
        .pt()
}

/// A fake VP8 keyframe of `len` bytes (payload header with P=0 and the start code).
pub(crate) fn vp8_frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    f[0] = 0x10; // P=0: keyframe, version 0, show_frame
    f[3] = 0x9d;
    f[4] = 0x01;
    f[5] = 0x2a;
    f[6] = 0x40; // width 320
    f[7] = 0x01;
    f[8] = 0xf0; // height 240
    f[9] = 0x00;
    f
}

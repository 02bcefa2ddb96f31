//! Shared harness of the `engine_*` tests and the forward bench: our [`Engine`] and several
//! str0m 0.24 clients (crates.io), all sans-IO, wired through a simulated in-memory network
//! with simulated time. The clients speak to the engine through its signalling API exactly as
//! `docs/signalling.md` describes (join, offer/answer, answers to server offers).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid as Str0mMid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate as Str0mCandidate, Event, Input, Output, Rtc};

use tympan_rtc_engine::{
    Datagram, Engine, EngineConfig, Notice, ParticipantId, TrackAnnouncement, TrackId, TrackSource,
    Transport,
};

pub const TICK: Duration = Duration::from_millis(5);

pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        str0m::crypto::from_feature_flags().install_process_default();
    });
}

/// One str0m client of the engine.
pub struct Client {
    pub id: ParticipantId,
    pub name: String,
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub events: Vec<Event>,
    pub notices: Vec<Notice>,
    /// When true, nothing the client sends reaches the engine.
    pub silent: bool,
    pub audio: Option<Str0mMid>,
    pub video: Option<Str0mMid>,
    /// Our mid -> (publisher, track), from the server offers' track lists.
    pub offered: HashMap<String, (ParticipantId, TrackId)>,
    /// Server offers answered.
    pub answered: u64,
}

impl Client {
    pub fn connected(&self) -> bool {
        self.rtc.is_connected()
    }

    pub fn pt(&self, codec: Codec) -> Pt {
        self.rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .expect("codec configured")
            .pt()
    }

    /// Frames received on `mid`, in order.
    pub fn frames_on(&self, mid: &str) -> Vec<Vec<u8>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::MediaData(d) if d.mid.to_string() == mid => Some(d.data.to_vec()),
                _ => None,
            })
            .collect()
    }

    /// Frames received from `publisher`'s track `track`.
    pub fn frames_from(&self, track: TrackId) -> Vec<Vec<u8>> {
        let mid = self
            .offered
            .iter()
            .find(|(_, (_, t))| *t == track)
            .map(|(m, _)| m.clone());
        mid.map(|m| self.frames_on(&m)).unwrap_or_default()
    }

    pub fn write_audio(&mut self, now: Instant, i: u64, data: &[u8]) {
        let pt = self.pt(Codec::Opus);
        let mid = self.audio.expect("audio mid");
        self.rtc
            .writer(mid)
            .expect("audio writer")
            .write(pt, now, MediaTime::from_millis(20 * i), data.to_vec())
            .expect("write opus");
    }

    pub fn write_video(&mut self, now: Instant, i: u64, data: &[u8]) {
        let pt = self.pt(Codec::Vp8);
        let mid = self.video.expect("video mid");
        self.rtc
            .writer(mid)
            .expect("video writer")
            .write(pt, now, MediaTime::from_90khz(3000 * i), data.to_vec())
            .expect("write vp8");
    }
}

pub struct World {
    pub now: Instant,
    pub engine: Engine,
    pub server: SocketAddr,
    pub clients: Vec<Client>,
    /// Answer server offers automatically.
    pub auto_answer: bool,
    pub buf: Vec<u8>,
}

impl World {
    pub fn new(max_room_size: usize) -> Self {
        Self::with_config(max_room_size, |_| {})
    }

    /// [`World::new`] with a last say on the engine configuration.
    pub fn with_config(max_room_size: usize, edit: impl FnOnce(&mut EngineConfig)) -> Self {
        install_crypto();
        let now = Instant::now();
        let server: SocketAddr = "10.0.0.1:3478".parse().unwrap();
        let mut config =
            EngineConfig::new(tympan_dtls::DtlsCertificate::generate().expect("certificate"));
        config.udp_addrs.push(server);
        config.max_room_size = max_room_size;
        config.seed = 7;
        edit(&mut config);
        World {
            now,
            engine: Engine::new(config, now).expect("engine"),
            server,
            clients: Vec::new(),
            auto_answer: true,
            buf: vec![0; 2048],
        }
    }

    pub fn client(&mut self, id: ParticipantId) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.id == id)
            .expect("client")
    }

    /// Joins a client and (when `publish`) offers audio + video through the engine.
    pub fn join(&mut self, room: &str, name: &str, publish: bool) -> usize {
        let joined = self.engine.join(self.now, room, name).expect("join");
        let n = self.clients.len() + 2;
        let addr: SocketAddr = format!("10.0.1.{n}:5000").parse().unwrap();
        let mut rtc = Rtc::new(self.now);
        rtc.add_local_candidate(Str0mCandidate::host(addr, "udp").unwrap());
        let mut c = Client {
            id: joined.participant,
            name: name.into(),
            rtc,
            addr,
            events: Vec::new(),
            notices: Vec::new(),
            silent: false,
            audio: None,
            video: None,
            offered: HashMap::new(),
            answered: 0,
        };
        let mut api = c.rtc.sdp_api();
        let mut tracks = Vec::new();
        if publish {
            let a = api.add_media(
                MediaKind::Audio,
                Direction::SendRecv,
                Some(name.into()),
                Some("mic".into()),
                None,
            );
            let v = api.add_media(
                MediaKind::Video,
                Direction::SendRecv,
                Some(name.into()),
                Some("cam".into()),
                None,
            );
            c.audio = Some(a);
            c.video = Some(v);
            tracks.push(TrackAnnouncement {
                mid: a.to_string(),
                kind: tympan_sdp::MediaKind::Audio,
                source: TrackSource::Microphone,
                muted: false,
            });
            tracks.push(TrackAnnouncement {
                mid: v.to_string(),
                kind: tympan_sdp::MediaKind::Video,
                source: TrackSource::Camera,
                muted: false,
            });
        }
        let _ = api.add_channel("chat".into());
        let (offer, pending) = api.apply().expect("an offer");
        let answer = self
            .engine
            .handle_offer(self.now, c.id, &offer.to_sdp_string(), &tracks)
            .expect("engine answers");
        let answer = SdpAnswer::from_sdp_string(&answer).expect("str0m parses the answer");
        c.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("str0m accepts the answer");
        self.clients.push(c);
        self.clients.len() - 1
    }

    fn client_index_by_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.clients.iter().position(|c| c.addr == addr)
    }

    /// Moves datagrams and notices until nothing moves.
    pub fn exchange(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                loop {
                    let out = self.clients[i]
                        .rtc
                        .poll_output()
                        .expect("str0m poll_output");
                    match out {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) => {
                            moved = true;
                            if self.clients[i].silent {
                                continue;
                            }
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
                        Output::Event(e) => self.clients[i].events.push(e),
                    }
                }
            }
            while let Some(meta) = self.engine.poll_transmit(&mut self.buf) {
                moved = true;
                assert_eq!(meta.local, self.server);
                let Some(i) = self.client_index_by_addr(meta.remote) else {
                    continue;
                };
                let d = self.buf[..meta.len].to_vec();
                let r = Receive::new(Protocol::Udp, self.server, meta.remote, &d)
                    .expect("str0m accepts the datagram");
                self.clients[i]
                    .rtc
                    .handle_input(Input::Receive(self.now, r))
                    .expect("str0m handle_input");
            }
            while let Some((to, notice)) = self.engine.poll_notice() {
                moved = true;
                let Some(i) = self.clients.iter().position(|c| c.id == to) else {
                    continue;
                };
                if let Notice::Offer {
                    negotiation,
                    sdp,
                    tracks,
                } = &notice
                {
                    for t in tracks {
                        self.clients[i]
                            .offered
                            .insert(t.mid.clone(), (t.participant, t.track));
                    }
                    if self.auto_answer {
                        let offer =
                            SdpOffer::from_sdp_string(sdp).expect("str0m parses the server offer");
                        let answer = self.clients[i]
                            .rtc
                            .sdp_api()
                            .accept_offer(offer)
                            .expect("str0m accepts the server offer");
                        self.engine
                            .handle_answer(self.now, to, *negotiation, &answer.to_sdp_string())
                            .expect("engine accepts the answer");
                        self.clients[i].answered += 1;
                    }
                }
                self.clients[i].notices.push(notice);
            }
            if !moved {
                break;
            }
        }
    }

    pub fn advance(&mut self, tick: Duration) {
        self.now += tick;
        for c in &mut self.clients {
            c.rtc
                .handle_input(Input::Timeout(self.now))
                .expect("str0m timeout");
        }
        if let Some((t, _)) = self.engine.poll_timeout() {
            if t <= self.now {
                self.engine.handle_timeout(self.now);
            }
        }
        self.exchange();
    }

    pub fn run_until(&mut self, max: Duration, mut done: impl FnMut(&World) -> bool) -> bool {
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

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.advance(TICK);
        }
    }

    /// Everyone connected and every client has a mid for every other participant's tracks.
    pub fn settled(&self, tracks_each: usize) -> bool {
        let n = self.clients.len();
        self.clients
            .iter()
            .all(|c| c.connected() && c.offered.len() >= tracks_each * (n - 1))
    }
}

/// A fake VP8 frame of `len` bytes: a keyframe (P=0, start code) or a delta frame (P=1).
pub fn vp8_frame(len: usize, seed: u8, key: bool) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    f[0] = if key { 0x10 } else { 0x11 };
    f[3] = 0x9d;
    f[4] = 0x01;
    f[5] = 0x2a;
    f[6] = 0x40;
    f[7] = 0x01;
    f[8] = 0xf0;
    f[9] = 0x00;
    f
}

pub fn opus_frame(i: u8, seed: u8) -> Vec<u8> {
    (0..(40 + usize::from(i) * 5))
        .map(|j| (j as u8) ^ i ^ seed)
        .collect()
}

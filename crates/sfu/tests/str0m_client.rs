//! The independent non-browser client: str0m 0.24 (crates.io) speaks our documented
//! signalling over a real loopback WebSocket and its own loopback UDP socket. Ana publishes
//! Opus and VP8; Ben publishes Opus; each receives the other's stream through the server,
//! and the RTP payloads that arrive are compared byte for byte with what was sent.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::{Client, TestServer};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn init_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// Sent payloads carry a tag: kind byte + 4-byte counter, then deterministic filler.
fn payload(kind: MediaKind, n: u32) -> Vec<u8> {
    let mut p = Vec::new();
    match kind {
        // VP8 payload descriptor (S=1, PID=0) + a key frame header (P=0, show_frame=1) with
        // the start code and a 640x480 size, so the server's keyframe gate lets it through.
        MediaKind::Video => {
            p.extend_from_slice(&[
                0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
            ]);
            p.push(b'V');
        }
        MediaKind::Audio => p.push(b'A'),
    }
    p.extend_from_slice(&n.to_be_bytes());
    let len = 40 + (n as usize * 7) % 200;
    p.extend((0..len).map(|i| (i as u32 * 31 + n) as u8));
    p
}

struct Str0mPeer {
    name: &'static str,
    /// Our participant id.
    id: String,
    rtc: Rtc,
    udp: UdpSocket,
    local: SocketAddr,
    ws: Client,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    /// Mids we publish on, with their kind.
    publish: Vec<(Mid, MediaKind)>,
    sent: HashMap<(MediaKind, u32), Vec<u8>>,
    counter: u32,
    next_write: Instant,
    /// Payloads received, with the kind of the m-line they arrived on.
    received: Vec<(MediaKind, Vec<u8>)>,
    server_offers: u32,
    /// ICE-TCP (RFC 6544 active) instead of UDP.
    tcp: Option<TcpLink>,
    /// The WebSocket is still open.
    ws_open: bool,
    /// `bye` reasons received.
    byes: Vec<String>,
    /// Other server events seen while driving.
    events: Vec<Value>,
    /// The server is being stopped.
    stopping: bool,
    /// The server's DTLS close_notify arrived (str0m `Event::Closed`).
    closed_by_server: bool,
}

/// The client side of ICE-TCP: one connection to the server's passive candidate, RFC 4571
/// framing written here independently of the server's code.
struct TcpLink {
    /// Our active candidate's address (port 9, as RFC 6544 says).
    local: SocketAddr,
    stream: Option<(SocketAddr, TcpStream)>,
    inbuf: Vec<u8>,
}

/// Reads from the ICE-TCP connection, or waits forever when there is none.
async fn tcp_read(tcp: &mut Option<TcpLink>, buf: &mut [u8]) -> std::io::Result<usize> {
    match tcp.as_mut().and_then(|t| t.stream.as_mut()) {
        Some((_, stream)) => stream.read(buf).await,
        None => std::future::pending().await,
    }
}

impl Str0mPeer {
    async fn join(
        server: &TestServer,
        room: &str,
        name: &'static str,
        kinds: &[MediaKind],
        use_tcp: bool,
    ) -> Self {
        init_crypto();
        let (ws, joined) = Client::join(server, room, name).await;
        assert_eq!(joined["type"], "joined");
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = udp.local_addr().unwrap();
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        let tcp = if use_tcp {
            let active: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let c = Candidate::builder()
                .tcp()
                .host(active)
                .tcptype(TcpType::Active)
                .build()
                .unwrap();
            rtc.add_local_candidate(c);
            Some(TcpLink {
                local: active,
                stream: None,
                inbuf: Vec::new(),
            })
        } else {
            rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
            None
        };
        let mut api = rtc.sdp_api();
        let mut publish = Vec::new();
        for kind in kinds {
            let mid = api.add_media(*kind, Direction::SendOnly, None, None, None);
            publish.push((mid, *kind));
        }
        let (offer, pending) = api.apply().expect("changes");
        let mut peer = Str0mPeer {
            name,
            id: joined["participant_id"].as_str().unwrap().to_string(),
            rtc,
            udp,
            local,
            ws,
            pending: Some(pending),
            connected: false,
            publish,
            sent: HashMap::new(),
            counter: 0,
            next_write: now,
            received: Vec::new(),
            server_offers: 0,
            tcp,
            ws_open: true,
            byes: Vec::new(),
            events: Vec::new(),
            stopping: false,
            closed_by_server: false,
        };
        let tracks: Vec<Value> = peer
            .publish
            .iter()
            .map(|(mid, kind)| {
                json!({"mid": mid.to_string(), "kind": if *kind == MediaKind::Audio { "audio" } else { "video" },
                       "source": if *kind == MediaKind::Audio { "microphone" } else { "camera" }, "muted": false})
            })
            .collect();
        let reply = peer
            .ws
            .request(json!({"type": "offer", "sdp": offer.to_sdp_string(), "tracks": tracks}))
            .await;
        assert_eq!(reply["type"], "answer", "{name}: {reply}");
        // The reply names the track id of each m-line we publish (what `mute` needs).
        let mut own: Vec<String> = reply["tracks"]
            .as_array()
            .expect("answer.tracks")
            .iter()
            .map(|t| {
                let id = t["track_id"].as_str().expect("track_id");
                assert!(id.starts_with('t'), "{name}: track id {id}");
                t["mid"].as_str().expect("mid").to_owned()
            })
            .collect();
        own.sort();
        let mut published: Vec<String> = peer
            .publish
            .iter()
            .map(|(mid, _)| mid.to_string())
            .collect();
        published.sort();
        assert_eq!(
            own, published,
            "{name}: answer.tracks covers exactly our sending m-lines"
        );
        let answer = SdpAnswer::from_sdp_string(reply["sdp"].as_str().unwrap())
            .expect("server answer parses in str0m");
        peer.rtc
            .sdp_api()
            .accept_answer(peer.pending.take().unwrap(), answer)
            .expect("str0m accepts the server's answer");
        peer
    }

    fn pt_for(&self, kind: MediaKind) -> Option<str0m::media::Pt> {
        let codec = if kind == MediaKind::Audio {
            Codec::Opus
        } else {
            Codec::Vp8
        };
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
    }

    fn write_media(&mut self, now: Instant) {
        if !self.connected || now < self.next_write {
            return;
        }
        self.next_write = now + Duration::from_millis(20);
        self.counter += 1;
        let n = self.counter;
        for (mid, kind) in self.publish.clone() {
            let Some(pt) = self.pt_for(kind) else {
                continue;
            };
            let data = payload(kind, n);
            let mut api = self.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            let clock = if kind == MediaKind::Audio { 48 } else { 90 };
            let write = RtpWrite::new(
                pt,
                (1000 + n as u64).into(),
                n * 20 * clock,
                now,
                data.clone(),
            )
            .marker(true);
            tx.write_rtp(write);
            self.sent.insert((kind, n), data);
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::Closed => self.closed_by_server = true,
            Event::RtpPacket(p) => {
                // The kind comes from the payload type the server put in the header: it
                // must be one we negotiated, for the right codec.
                let codec = self
                    .rtc
                    .codec_config()
                    .params()
                    .iter()
                    .find(|c| c.pt() == p.header.payload_type)
                    .map(|c| c.spec().codec);
                let kind = match codec {
                    Some(Codec::Opus) => MediaKind::Audio,
                    Some(Codec::Vp8) => MediaKind::Video,
                    other => panic!(
                        "{}: RTP with payload type {} ({other:?})",
                        self.name, *p.header.payload_type
                    ),
                };
                if std::env::var_os("STR0M_TEST_DEBUG").is_some() && self.received.len() < 6 {
                    eprintln!(
                        "{}: rtp mid={:?} pt={} ssrc={} first={:02x?} kind={kind:?}",
                        self.name,
                        p.header.ext_vals.mid,
                        *p.header.payload_type,
                        *p.header.ssrc,
                        &p.payload[..p.payload.len().min(13)]
                    );
                }
                self.received.push((kind, p.payload.to_vec()));
            }
            _ => {}
        }
    }

    async fn on_ws(&mut self, m: Value) {
        if m["type"] == "offer" {
            self.server_offers += 1;
            let offer = SdpOffer::from_sdp_string(m["sdp"].as_str().unwrap())
                .expect("server offer parses in str0m");
            let answer = self
                .rtc
                .sdp_api()
                .accept_offer(offer)
                .expect("str0m accepts the server's offer");
            let id = 10_000 + self.server_offers as u64;
            self.ws
                .send_text(
                    json!({"type": "answer", "id": id, "negotiation": m["negotiation"], "sdp": answer.to_sdp_string()})
                        .to_string(),
                )
                .await;
        } else if m["type"] == "bye" {
            self.byes
                .push(m["reason"].as_str().unwrap_or_default().to_string());
        } else if m["type"] == "__closed" {
            self.ws_open = false;
        } else if m["type"] == "error" && !(self.stopping && m["code"] == "internal") {
            // (A request racing the shutdown is answered `internal`: that one is expected.)
            panic!("{}: server error {m}", self.name);
        } else {
            self.events.push(m);
        }
    }

    /// Drives str0m, the UDP socket and the WebSocket until `until`.
    async fn run_until(&mut self, until: Instant) {
        let mut buf = vec![0u8; 2000];
        let mut tcp_buf = vec![0u8; 16 * 1024];
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            self.write_media(now);
            if !self.rtc.is_alive() {
                return;
            }
            let timeout = loop {
                match self.rtc.poll_output().expect("str0m poll_output") {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) if t.proto == Protocol::Tcp => {
                        let link = self.tcp.as_mut().expect("tcp transmit without a tcp link");
                        if link.stream.is_none() {
                            let stream = TcpStream::connect(t.destination)
                                .await
                                .expect("connect ICE-TCP");
                            link.stream = Some((t.destination, stream));
                        }
                        let (_, stream) = link.stream.as_mut().unwrap();
                        let mut framed = (t.contents.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&t.contents);
                        stream.write_all(&framed).await.expect("write ICE-TCP");
                    }
                    Output::Transmit(t) => {
                        let _ = self.udp.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(e) => self.on_event(e),
                }
            };
            let wake = timeout
                .min(until)
                .min(self.next_write.max(now + Duration::from_millis(1)));
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    if let Ok(contents) = buf[..n].try_into() {
                        let input = Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp, source, destination: self.local, contents,
                        });
                        self.rtc.handle_input(input).expect("str0m handle_input");
                    }
                }
                r = tcp_read(&mut self.tcp, &mut tcp_buf) => {
                    let n = r.expect("ICE-TCP read");
                    assert!(n > 0, "{}: the server closed the ICE-TCP connection", self.name);
                    let link = self.tcp.as_mut().unwrap();
                    link.inbuf.extend_from_slice(&tcp_buf[..n]);
                    let (source, destination) = (link.stream.as_ref().unwrap().0, link.local);
                    while link.inbuf.len() >= 2 {
                        let len = u16::from_be_bytes([link.inbuf[0], link.inbuf[1]]) as usize;
                        if link.inbuf.len() < 2 + len {
                            break;
                        }
                        let frame: Vec<u8> = link.inbuf.drain(..2 + len).skip(2).collect();
                        if let Ok(contents) = frame.as_slice().try_into() {
                            let input = Input::Receive(Instant::now(), Receive {
                                proto: Protocol::Tcp, source, destination, contents,
                            });
                            self.rtc.handle_input(input).expect("str0m handle_input (tcp)");
                        }
                    }
                }
                m = self.ws.recv(), if self.ws_open => self.on_ws(m).await,
                () = tokio::time::sleep_until(wake.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).expect("str0m timeout");
                }
            }
        }
    }
}

fn check_forwarded(from: &Str0mPeer, to: &Str0mPeer, kind: MediaKind) -> usize {
    let tag = if kind == MediaKind::Audio { b'A' } else { b'V' };
    let mut matched = 0;
    let at = if kind == MediaKind::Video { 11 } else { 0 };
    for (got_kind, p) in &to.received {
        if *got_kind != kind {
            continue;
        }
        assert_eq!(
            p.get(at),
            Some(&tag),
            "{}: {kind:?} payload without its tag: {p:02x?}",
            to.name
        );
        let n = u32::from_be_bytes(p[at + 1..at + 5].try_into().unwrap());
        let sent = from.sent.get(&(kind, n)).unwrap_or_else(|| {
            panic!(
                "{} got {kind:?} #{n} that {} never sent",
                to.name, from.name
            )
        });
        assert_eq!(p, sent, "{kind:?} #{n}: forwarded payload differs");
        matched += 1;
    }
    matched
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn str0m_clients_exchange_media_through_the_sfu() {
    // A short resume grace: Carl's vanished socket is reported once it is over.
    let mut config = tympan_sfu::Config::ephemeral();
    config.resume_grace = Duration::from_millis(300);
    let server = TestServer::start_with(config).await;
    let mut ana = Str0mPeer::join(
        &server,
        "str0m",
        "Ana",
        &[MediaKind::Audio, MediaKind::Video],
        false,
    )
    .await;
    let mut ben = Str0mPeer::join(&server, "str0m", "Ben", &[MediaKind::Audio], false).await;
    // Carl publishes audio, completes his ICE check, sends his DTLS ClientHello, and then
    // his media socket disappears mid-handshake (his WebSocket stays open): the server must
    // keep serving Ana and Ben while it retransmits its DTLS flight to nobody.
    let mut carl = Str0mPeer::join(&server, "str0m", "Carl", &[MediaKind::Audio], false).await;
    assert!(
        carl.run_until_dtls_starts().await,
        "Carl's ICE check succeeds and his DTLS ClientHello leaves"
    );
    let Str0mPeer {
        ws: mut carl_ws,
        connected: carl_connected,
        ..
    } = carl;
    assert!(!carl_connected, "Carl stopped before DTLS completed");
    let until = Instant::now() + Duration::from_secs(6);
    tokio::join!(ana.run_until(until), ben.run_until(until));
    carl_ws.assert_alive().await;
    assert!(
        ana.connected && ben.connected,
        "both connect (ICE + DTLS) to the server"
    );
    assert!(
        ben.server_offers >= 1 && ana.server_offers >= 1,
        "the server offers the other's tracks"
    );
    let audio_to_ben = check_forwarded(&ana, &ben, MediaKind::Audio);
    let video_to_ben = check_forwarded(&ana, &ben, MediaKind::Video);
    let audio_to_ana = check_forwarded(&ben, &ana, MediaKind::Audio);
    assert!(
        audio_to_ben >= 50,
        "Ana's audio reaches Ben: {audio_to_ben}"
    );
    assert!(
        video_to_ben >= 50,
        "Ana's video reaches Ben: {video_to_ben}"
    );
    assert!(
        audio_to_ana >= 50,
        "Ben's audio reaches Ana: {audio_to_ana}"
    );
    eprintln!(
        "forwarded byte-exact: audio Ana->Ben {audio_to_ben}, video Ana->Ben {video_to_ben}, audio Ben->Ana {audio_to_ana}; \
         sent by Ana {} packets, by Ben {}",
        ana.sent.len(),
        ben.sent.len()
    );
    // Carl's socket closes now: the others are told.
    carl_ws.vanish();
    let left = ana.event("participant_left").await;
    assert_eq!(left["reason"], "disconnected", "{left}");

    // Ctrl-C equivalent while Ana is connected: her str0m receives the server's DTLS
    // close_notify, and her WebSocket a `bye` with reason shutdown, then the close.
    let until = Instant::now() + Duration::from_secs(2);
    ana.stopping = true;
    let ((), ()) = tokio::join!(server.stop(), ana.run_until(until));
    assert!(
        ana.closed_by_server,
        "the server sent DTLS close_notify at shutdown"
    );
    while ana.ws_open {
        let m = ana.ws.recv().await;
        ana.on_ws(m).await;
    }
    assert_eq!(ana.byes, vec!["shutdown".to_string()]);
    assert!(!ana.ws_open, "the server closed the WebSocket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_closing_dtls_is_removed_and_told_bye() {
    let server = TestServer::start().await;
    let mut ana = Str0mPeer::join(&server, "close", "Ana", &[MediaKind::Audio], false).await;
    let mut ben = Str0mPeer::join(&server, "close", "Ben", &[MediaKind::Audio], false).await;
    let until = Instant::now() + Duration::from_secs(1);
    tokio::join!(ana.run_until(until), ben.run_until(until));
    assert!(ana.connected && ben.connected);
    // Ben closes his peer connection (DTLS close_notify) but not his WebSocket.
    ben.rtc.close().unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    tokio::join!(ana.run_until(until), ben.run_until(until));
    let left = ana.event("participant_left").await;
    assert_eq!(left["participant_id"], ben.id.as_str(), "{left}");
    assert_eq!(left["reason"], "disconnected", "{left}");
    // Ben is told (bye, reason timeout) and his socket is closed.
    while ben.ws_open {
        let m = ben.ws.recv().await;
        ben.on_ws(m).await;
    }
    assert_eq!(ben.byes, vec!["disconnected".to_string()]);
    ana.ws.assert_alive().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn str0m_client_over_ice_tcp_exchanges_media() {
    let server = TestServer::start().await;
    let mut ana = Str0mPeer::join(&server, "tcp", "Ana", &[MediaKind::Audio], false).await;
    // Ben has only an ICE-TCP active candidate: everything he sends and receives goes
    // through the server's TCP listener with RFC 4571 framing.
    let mut ben = Str0mPeer::join(
        &server,
        "tcp",
        "Ben",
        &[MediaKind::Audio, MediaKind::Video],
        true,
    )
    .await;
    let until = Instant::now() + Duration::from_secs(5);
    tokio::join!(ana.run_until(until), ben.run_until(until));
    assert!(
        ben.tcp.as_ref().unwrap().stream.is_some(),
        "Ben used ICE-TCP"
    );
    assert!(ana.connected && ben.connected, "both connect");
    let audio_to_ana = check_forwarded(&ben, &ana, MediaKind::Audio);
    let video_to_ana = check_forwarded(&ben, &ana, MediaKind::Video);
    let audio_to_ben = check_forwarded(&ana, &ben, MediaKind::Audio);
    eprintln!(
        "ICE-TCP byte-exact: Ben->Ana audio {audio_to_ana} video {video_to_ana}, Ana->Ben audio {audio_to_ben}"
    );
    assert!(
        audio_to_ana >= 40,
        "Ben's audio (sent over TCP) reaches Ana: {audio_to_ana}"
    );
    assert!(
        video_to_ana >= 40,
        "Ben's video (sent over TCP) reaches Ana: {video_to_ana}"
    );
    assert!(
        audio_to_ben >= 40,
        "Ana's audio reaches Ben over TCP: {audio_to_ben}"
    );
    server.stop().await;
}

impl Str0mPeer {
    /// The first event of type `ty`, seen while driving or still to come.
    async fn event(&mut self, ty: &str) -> Value {
        if let Some(pos) = self.events.iter().position(|m| m["type"] == ty) {
            return self.events.remove(pos);
        }
        self.ws.recv_type(ty).await
    }
}

impl Str0mPeer {
    /// Drives ICE until str0m sends its first DTLS record (the ClientHello: the server
    /// answered `setup:passive`), then stops: the handshake is left half done.
    async fn run_until_dtls_starts(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 2000];
        while Instant::now() < deadline {
            let timeout = loop {
                match self.rtc.poll_output().expect("str0m poll_output") {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = self.udp.send_to(&t.contents, t.destination).await;
                        // RFC 7983: DTLS records start with 20..=63.
                        if t.contents.first().is_some_and(|b| (20..=63).contains(b)) {
                            return true;
                        }
                    }
                    Output::Event(e) => self.on_event(e),
                }
            };
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    if let Ok(contents) = buf[..n].try_into() {
                        let input = Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp, source, destination: self.local, contents,
                        });
                        self.rtc.handle_input(input).expect("str0m handle_input");
                    }
                }
                () = tokio::time::sleep_until(timeout.min(deadline).into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).expect("str0m timeout");
                }
            }
        }
        false
    }
}

#[tokio::test]
async fn public_ip_is_what_the_answer_advertises() {
    init_crypto();
    let mut config = tympan_sfu::Config::ephemeral();
    config.public_ips = vec!["192.0.2.7".parse().unwrap()];
    let server = TestServer::start_with(config).await;
    let (mut ws, _) = Client::join(&server, "lan", "Ana").await;
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host("127.0.0.1:5000".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let reply = ws
        .request(json!({"type": "offer", "sdp": offer.to_sdp_string(),
            "tracks": [{"mid": mid.to_string(), "kind": "audio", "source": "microphone"}]}))
        .await;
    assert_eq!(reply["type"], "answer", "{reply}");
    let sdp = reply["sdp"].as_str().unwrap();
    let candidates: Vec<&str> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    let udp = format!("192.0.2.7 {} typ host", server.addrs.udp.port());
    let tcp = format!(
        "192.0.2.7 {} typ host tcptype passive",
        server.addrs.tcp.port()
    );
    assert!(
        candidates
            .iter()
            .any(|c| c.to_lowercase().contains(" udp ") && c.ends_with(&udp)),
        "{candidates:?}"
    );
    assert!(
        candidates
            .iter()
            .any(|c| c.to_lowercase().contains(" tcp ") && c.ends_with(&tcp)),
        "{candidates:?}"
    );
    assert!(
        candidates.iter().all(|c| c.contains("192.0.2.7")),
        "only the public ip is advertised: {candidates:?}"
    );
    assert!(sdp.contains("a=ice-lite"));
    assert!(sdp.contains("a=end-of-candidates"));
    // str0m accepts it.
    let answer = SdpAnswer::from_sdp_string(sdp).unwrap();
    rtc.sdp_api().accept_answer(pending, answer).unwrap();
    server.stop().await;
}

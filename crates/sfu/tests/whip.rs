//! WHIP and WHEP over real loopback HTTP and UDP with independent clients: str0m 0.24
//! (crates.io) publishes Opus + VP8 through `POST /whip/{room}` (plain HTTP/1.1 written here
//! over a TcpStream), a str0m participant on the WebSocket signalling in the same room
//! receives it byte for byte, and str0m WHEP viewers (`POST /whep/{room}`) receive the
//! tracks their m-lines were filled with. Also: several publishers and viewers at once,
//! DELETE, trickle PATCH, CORS and the error statuses.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::{Client, TIMEOUT, TestServer};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn init_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

// ------------------------------------------------------------------ plain HTTP/1.1

struct HttpReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let mut s = TcpStream::connect(addr).await.expect("connect http");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("reply in time")
        .expect("read reply");
    let text = String::from_utf8(out).expect("UTF-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: body.to_string(),
    }
}

const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const FRAG: (&str, &str) = ("Content-Type", "application/trickle-ice-sdpfrag");

// ------------------------------------------------------------------ str0m peers

/// Payload: kind byte + publisher tag + 4-byte counter + filler; video starts with a VP8
/// descriptor and keyframe header so that the server's keyframe gate lets it through.
fn payload(kind: MediaKind, tag: u8, n: u32) -> Vec<u8> {
    let mut p = Vec::new();
    if kind == MediaKind::Video {
        p.extend_from_slice(&[
            0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
        ]);
        p.push(b'V');
    } else {
        p.push(b'A');
    }
    p.push(tag);
    p.extend_from_slice(&n.to_be_bytes());
    p.extend((0..40 + (n as usize * 7) % 200).map(|i| (i as u32 * 31 + n) as u8 ^ tag));
    p
}

/// (kind, publisher tag, counter) of a received payload.
fn parse_payload(kind: MediaKind, p: &[u8]) -> (u8, u32) {
    let at = if kind == MediaKind::Video { 11 } else { 0 };
    assert_eq!(
        p.get(at),
        Some(if kind == MediaKind::Video {
            &b'V'
        } else {
            &b'A'
        }),
        "{kind:?} payload without its tag"
    );
    let tag = p[at + 1];
    let n = u32::from_be_bytes(p[at + 2..at + 6].try_into().unwrap());
    (tag, n)
}

struct Peer {
    name: &'static str,
    tag: u8,
    rtc: Rtc,
    udp: UdpSocket,
    local: SocketAddr,
    connected: bool,
    publish: Vec<(Mid, MediaKind)>,
    sent: HashMap<(MediaKind, u32), Vec<u8>>,
    counter: u32,
    next_write: Instant,
    /// (mid it arrived on, kind, payload)
    received: Vec<(Mid, MediaKind, Vec<u8>)>,
    /// The WebSocket participant's signalling.
    ws: Option<Client>,
    events: Vec<Value>,
    closed: bool,
}

impl Peer {
    async fn new(name: &'static str, tag: u8) -> Peer {
        init_crypto();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = udp.local_addr().unwrap();
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        Peer {
            name,
            tag,
            rtc,
            udp,
            local,
            connected: false,
            publish: Vec::new(),
            sent: HashMap::new(),
            counter: 0,
            next_write: now,
            received: Vec::new(),
            ws: None,
            events: Vec::new(),
            closed: false,
        }
    }

    /// An offer with these m-lines (sendonly ones are published).
    fn offer(&mut self, lines: &[(MediaKind, Direction)]) -> (String, SdpPendingOffer, Vec<Mid>) {
        let mut api = self.rtc.sdp_api();
        let mut mids = Vec::new();
        for (kind, dir) in lines {
            let mid = api.add_media(*kind, *dir, None, None, None);
            if *dir == Direction::SendOnly {
                self.publish.push((mid, *kind));
            }
            mids.push(mid);
        }
        let (offer, pending) = api.apply().expect("an offer");
        (offer.to_sdp_string(), pending, mids)
    }

    fn accept(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("the answer parses in str0m");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("str0m accepts the server's answer");
    }

    /// A WHIP publisher: POST the offer, check the 201, accept the answer. Returns the reply.
    async fn whip(
        server: &TestServer,
        room: &str,
        name: &'static str,
        tag: u8,
        kinds: &[MediaKind],
    ) -> (Peer, HttpReply) {
        let mut p = Peer::new(name, tag).await;
        let lines: Vec<_> = kinds.iter().map(|k| (*k, Direction::SendOnly)).collect();
        let (offer, pending, _) = p.offer(&lines);
        let r = http(
            server.addrs.http,
            "POST",
            &format!("/whip/{room}?name={name}"),
            &[SDP],
            &offer,
        )
        .await;
        assert_eq!(r.status, 201, "{name}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/sdp"));
        assert!(
            r.header("location")
                .unwrap()
                .starts_with(&format!("/whip/{room}/"))
        );
        assert!(r.header("etag").is_some_and(|e| e.starts_with('"')));
        assert!(
            r.body.contains("a=candidate:"),
            "the answer carries candidates"
        );
        p.accept(pending, &r.body);
        (p, r)
    }

    /// A WHEP viewer with recvonly m-lines of these kinds.
    async fn whep(
        server: &TestServer,
        path: &str,
        name: &'static str,
        kinds: &[MediaKind],
    ) -> (Peer, Vec<Mid>, HttpReply) {
        let mut p = Peer::new(name, 0).await;
        let lines: Vec<_> = kinds.iter().map(|k| (*k, Direction::RecvOnly)).collect();
        let (offer, pending, mids) = p.offer(&lines);
        let r = http(server.addrs.http, "POST", path, &[SDP], &offer).await;
        assert_eq!(r.status, 201, "{name}: {}", r.body);
        assert!(r.header("location").unwrap().starts_with("/whep/"));
        p.accept(pending, &r.body);
        (p, mids, r)
    }

    /// A participant on the WebSocket signalling publishing audio.
    async fn websocket(server: &TestServer, room: &str, name: &'static str, tag: u8) -> Peer {
        let (ws, joined) = Client::join(server, room, name).await;
        assert_eq!(joined["type"], "joined");
        let mut p = Peer::new(name, tag).await;
        let (offer, pending, mids) = p.offer(&[(MediaKind::Audio, Direction::SendOnly)]);
        p.ws = Some(ws);
        let reply = p
            .ws
            .as_mut()
            .unwrap()
            .request(json!({"type": "offer", "sdp": offer, "tracks": [
                {"mid": mids[0].to_string(), "kind": "audio", "source": "microphone", "muted": false}]}))
            .await;
        assert_eq!(reply["type"], "answer", "{reply}");
        p.accept(pending, reply["sdp"].as_str().unwrap());
        p
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
        if !self.connected || now < self.next_write || self.publish.is_empty() {
            return;
        }
        self.next_write = now + Duration::from_millis(20);
        self.counter += 1;
        let n = self.counter;
        for (mid, kind) in self.publish.clone() {
            let Some(pt) = self.pt_for(kind) else {
                continue;
            };
            let data = payload(kind, self.tag, n);
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
            Event::Closed => self.closed = true,
            Event::RtpPacket(p) => {
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
                    other => panic!("{}: RTP with {other:?}", self.name),
                };
                // The m-line it arrived on, by the SSRC the server's answer declared there.
                let mid = self
                    .rtc
                    .direct_api()
                    .stream_rx(&p.header.ssrc)
                    .map(|s| s.mid())
                    .expect("RTP on an SSRC the answer declared");
                self.received.push((mid, kind, p.payload.to_vec()));
            }
            _ => {}
        }
    }

    async fn on_ws(&mut self, m: Value) {
        if m["type"] == "offer" {
            let offer = SdpOffer::from_sdp_string(m["sdp"].as_str().unwrap()).unwrap();
            let answer = self
                .rtc
                .sdp_api()
                .accept_offer(offer)
                .expect("accept server offer");
            let ws = self.ws.as_mut().unwrap();
            ws.send_text(
                json!({"type": "answer", "negotiation": m["negotiation"], "sdp": answer.to_sdp_string()})
                    .to_string(),
            )
            .await;
        } else if m["type"] == "error" {
            panic!("{}: server error {m}", self.name);
        }
        self.events.push(m);
    }

    /// Drives str0m, the UDP socket and the WebSocket (if any) until `until`.
    async fn run_until(&mut self, until: Instant) {
        let mut buf = vec![0u8; 2000];
        loop {
            let now = Instant::now();
            if now >= until || !self.rtc.is_alive() {
                return;
            }
            self.write_media(now);
            let timeout = loop {
                match self.rtc.poll_output().expect("poll_output") {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = self.udp.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(e) => self.on_event(e),
                }
            };
            let wake = timeout
                .min(until)
                .min(self.next_write.max(now + Duration::from_millis(1)));
            let ws = self.ws.as_mut();
            let has_ws = ws.is_some();
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    if let Ok(contents) = buf[..n].try_into() {
                        let input = Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp, source, destination: self.local, contents,
                        });
                        self.rtc.handle_input(input).expect("handle_input");
                    }
                }
                m = async { ws.unwrap().recv().await }, if has_ws => self.on_ws(m).await,
                () = tokio::time::sleep_until(wake.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).expect("timeout");
                }
            }
        }
    }

    /// The first WebSocket event of type `ty` (seen while driving, or still to come).
    async fn event(&mut self, ty: &str) -> Value {
        if let Some(pos) = self.events.iter().position(|m| m["type"] == ty) {
            return self.events.remove(pos);
        }
        self.ws.as_mut().unwrap().recv_type(ty).await
    }
}

/// Payloads `to` received from `from` (by publisher tag) of `kind`, on `mid` if given: all
/// byte-identical to what `from` sent. Returns how many.
fn check_forwarded(from: &Peer, to: &Peer, kind: MediaKind, mid: Option<Mid>) -> usize {
    let mut matched = 0;
    for (got_mid, got_kind, p) in &to.received {
        if *got_kind != kind || mid.is_some_and(|m| m != *got_mid) {
            continue;
        }
        let (tag, n) = parse_payload(kind, p);
        if tag != from.tag {
            continue;
        }
        let sent = from
            .sent
            .get(&(kind, n))
            .unwrap_or_else(|| panic!("{} got {kind:?} #{n} {} never sent", to.name, from.name));
        assert_eq!(
            p, sent,
            "{kind:?} #{n} from {} differs at {}",
            from.name, to.name
        );
        matched += 1;
    }
    matched
}

/// Publisher tags `to` received on `mid`.
fn tags_on(to: &Peer, mid: Mid) -> Vec<u8> {
    let mut tags: Vec<u8> = to
        .received
        .iter()
        .filter(|(m, _, _)| *m == mid)
        .map(|(_, k, p)| parse_payload(*k, p).0)
        .collect();
    tags.dedup();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publishers_and_whep_viewers_over_http() {
    let server = TestServer::start().await;
    let http_addr = server.addrs.http;
    // Ana is in the room over the WebSocket, publishing audio.
    let mut ana = Peer::websocket(&server, "live", "Ana", 1).await;
    // Two WHIP publishers: OBS with Opus + VP8, Cam with VP8.
    let (mut obs, obs_reply) = Peer::whip(
        &server,
        "live",
        "OBS",
        2,
        &[MediaKind::Audio, MediaKind::Video],
    )
    .await;
    let (mut cam, cam_reply) = Peer::whip(&server, "live", "Cam", 3, &[MediaKind::Video]).await;
    // CORS on the 201: any origin, and the headers a browser client must read.
    assert_eq!(obs_reply.header("access-control-allow-origin"), Some("*"));
    let exposed = obs_reply.header("access-control-expose-headers").unwrap();
    for h in ["Location", "Link", "ETag"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    assert_eq!(
        obs_reply.header("accept-patch"),
        Some("application/trickle-ice-sdpfrag")
    );
    // Ana sees both publishers join with a microphone / camera.
    let joined = ana.event("participant_joined").await;
    assert_eq!(joined["participant"]["name"], "OBS", "{joined}");
    let obs_id = joined["participant"]["id"].as_str().unwrap().to_string();
    let joined = ana.event("participant_joined").await;
    assert_eq!(joined["participant"]["name"], "Cam", "{joined}");
    let published = ana.event("track_published").await;
    assert_eq!(published["participant_id"], obs_id.as_str());
    assert_eq!(published["track"]["source"], "microphone", "{published}");

    // Trickle PATCH with OBS's real host candidate and the session's ETag: 204.
    let obs_location = obs_reply.header("location").unwrap().to_string();
    let etag = obs_reply.header("etag").unwrap().to_string();
    let ufrag = obs_offer_ufrag(&mut obs);
    let frag = format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:whatever\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
         a=candidate:1 1 udp 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
        obs.local.ip(),
        obs.local.port()
    );
    let r = http(
        http_addr,
        "PATCH",
        &obs_location,
        &[FRAG, ("If-Match", &etag)],
        &frag,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = http(http_addr, "PATCH", &obs_location, &[FRAG], &frag).await;
    assert_eq!(r.status, 204, "without If-Match: {}", r.body);
    let r = http(
        http_addr,
        "PATCH",
        &obs_location,
        &[FRAG, ("If-Match", "\"stale\"")],
        &frag,
    )
    .await;
    assert_eq!(r.status, 412, "{}", r.body);
    let restart = "a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpassword12\r\n";
    let r = http(
        http_addr,
        "PATCH",
        &obs_location,
        &[FRAG, ("If-Match", "*")],
        restart,
    )
    .await;
    assert_eq!(r.status, 422, "ICE restart (If-Match *): {}", r.body);
    let r = http(http_addr, "PATCH", &obs_location, &[FRAG], restart).await;
    assert_eq!(r.status, 422, "ICE restart (new ufrag): {}", r.body);
    let r = http(http_addr, "PATCH", &obs_location, &[SDP], &frag).await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = http(http_addr, "PATCH", &obs_location, &[FRAG], "hello\r\n").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(http_addr, "PATCH", "/whip/live/0123", &[FRAG], &frag).await;
    assert_eq!(r.status, 404, "{}", r.body);

    // WHEP viewers: V1 watches OBS only (audio, video); V2 watches the room with two
    // audio and two video m-lines: publication order gives Ana's and OBS's audio and
    // OBS's and Cam's video.
    let (mut v1, v1_mids, v1_reply) = Peer::whep(
        &server,
        &format!("/whep/live?participant={obs_id}"),
        "V1",
        &[MediaKind::Audio, MediaKind::Video],
    )
    .await;
    let (mut v2, v2_mids, _) = Peer::whep(
        &server,
        "/whep/live",
        "V2",
        &[
            MediaKind::Audio,
            MediaKind::Audio,
            MediaKind::Video,
            MediaKind::Video,
        ],
    )
    .await;
    let (_, rooms) = common::http_get(http_addr, "/api/rooms").await;
    let rooms: Value = serde_json::from_str(&rooms).unwrap();
    assert_eq!(rooms[0]["participants"], 3, "{rooms}");
    assert_eq!(rooms[0]["viewers"], 2, "{rooms}");

    let until = Instant::now() + Duration::from_secs(4);
    tokio::join!(
        ana.run_until(until),
        obs.run_until(until),
        cam.run_until(until),
        v1.run_until(until),
        v2.run_until(until)
    );
    for p in [&ana, &obs, &cam, &v1, &v2] {
        assert!(p.connected, "{} connected", p.name);
    }
    // Ana (WebSocket) receives the WHIP publishers' media byte for byte.
    let n = check_forwarded(&obs, &ana, MediaKind::Audio, None);
    assert!(n >= 40, "OBS audio at Ana: {n}");
    let n = check_forwarded(&obs, &ana, MediaKind::Video, None);
    assert!(n >= 40, "OBS video at Ana: {n}");
    let n = check_forwarded(&cam, &ana, MediaKind::Video, None);
    assert!(n >= 40, "Cam video at Ana: {n}");
    // The WHIP publishers receive nothing.
    assert!(obs.received.is_empty() && cam.received.is_empty());
    // V1: OBS's audio and video on its two m-lines.
    assert!(check_forwarded(&obs, &v1, MediaKind::Audio, Some(v1_mids[0])) >= 40);
    assert!(check_forwarded(&obs, &v1, MediaKind::Video, Some(v1_mids[1])) >= 40);
    assert_eq!(tags_on(&v1, v1_mids[0]), [2]);
    // V2: the room in publication order.
    assert_eq!(tags_on(&v2, v2_mids[0]), [1], "V2 audio 0 = Ana");
    assert_eq!(tags_on(&v2, v2_mids[1]), [2], "V2 audio 1 = OBS");
    assert_eq!(tags_on(&v2, v2_mids[2]), [2], "V2 video 0 = OBS");
    assert_eq!(tags_on(&v2, v2_mids[3]), [3], "V2 video 1 = Cam");
    assert!(check_forwarded(&ana, &v2, MediaKind::Audio, Some(v2_mids[0])) >= 40);
    assert!(check_forwarded(&cam, &v2, MediaKind::Video, Some(v2_mids[3])) >= 40);

    // DELETE OBS: Ana is told it left; a second DELETE is 404.
    let r = http(http_addr, "DELETE", &obs_location, &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let left = ana.event("participant_left").await;
    assert_eq!(left["participant_id"], obs_id.as_str(), "{left}");
    assert_eq!(left["reason"], "left", "{left}");
    let r = http(http_addr, "DELETE", &obs_location, &[], "").await;
    assert_eq!(r.status, 404);
    // The WHEP viewer's DELETE: 200, and the room hears nothing of it.
    let v1_location = v1_reply.header("location").unwrap().to_string();
    let wrong_kind = v1_location.replacen("/whep/", "/whip/", 1);
    assert_eq!(
        http(http_addr, "DELETE", &wrong_kind, &[], "").await.status,
        404
    );
    assert_eq!(
        http(http_addr, "DELETE", &v1_location, &[], "")
            .await
            .status,
        200
    );
    let cam_location = cam_reply.header("location").unwrap().to_string();
    assert_eq!(
        http(http_addr, "DELETE", &cam_location, &[], "")
            .await
            .status,
        200
    );
    let left = ana.event("participant_left").await;
    assert_eq!(left["participant"], Value::Null);
    assert_eq!(left["reason"], "left", "{left}");
    assert_ne!(
        left["participant_id"],
        obs_id.as_str(),
        "Cam left, not a viewer"
    );
    ana.ws.as_mut().unwrap().assert_alive().await;
    server.stop().await;
}

/// OBS's own ICE ufrag, read from its local description.
fn obs_offer_ufrag(p: &mut Peer) -> String {
    p.rtc.direct_api().local_ice_credentials().ufrag
}

#[tokio::test]
async fn options_cors_and_error_statuses() {
    let mut config = tympan_sfu::Config::ephemeral();
    config.max_room_size = 1;
    let server = TestServer::start_with(config).await;
    let a = server.addrs.http;
    // OPTIONS: 204 with CORS on endpoints and resources.
    for path in ["/whip/r", "/whep/r", "/whip/r/abc", "/whep/r/abc"] {
        let r = http(
            a,
            "OPTIONS",
            path,
            &[
                ("Origin", "http://example.com"),
                ("Access-Control-Request-Method", "POST"),
            ],
            "",
        )
        .await;
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        let methods = r.header("access-control-allow-methods").unwrap();
        assert!(
            methods.contains("POST") && methods.contains("PATCH") && methods.contains("DELETE")
        );
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap()
            .to_lowercase();
        for h in ["content-type", "authorization", "if-match"] {
            assert!(allowed.contains(h), "{allowed}");
        }
    }
    let r = http(a, "OPTIONS", "/whip/r", &[], "").await;
    assert_eq!(r.header("accept-post"), Some("application/sdp"));

    let mut p = Peer::new("P", 9).await;
    let (offer, _, _) = p.offer(&[(MediaKind::Audio, Direction::SendOnly)]);
    let mut q = Peer::new("Q", 9).await;
    let (recv_offer, _, _) = q.offer(&[(MediaKind::Audio, Direction::RecvOnly)]);
    // Wrong content type, bad SDP, bad room name, bad participant id, unknown room.
    let r = http(
        a,
        "POST",
        "/whip/r",
        &[("Content-Type", "text/plain")],
        &offer,
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(http(a, "POST", "/whip/r", &[], &offer).await.status, 415);
    let r = http(a, "POST", "/whip/r", &[SDP], "v=0\r\nnot sdp").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("bad_sdp"), "{}", r.body);
    assert_eq!(
        http(a, "POST", "/whip/bad%20room", &[SDP], &offer)
            .await
            .status,
        400
    );
    assert_eq!(
        http(a, "POST", "/whip/r?name=%zz", &[SDP], &offer)
            .await
            .status,
        400
    );
    let r = http(a, "POST", "/whip/r", &[SDP], &recv_offer).await;
    assert_eq!(r.status, 406, "publishes nothing: {}", r.body);
    assert_eq!(
        http(a, "POST", "/whep/nobody", &[SDP], &recv_offer)
            .await
            .status,
        404
    );
    assert_eq!(
        http(a, "POST", "/whep/r?participant=x", &[SDP], &recv_offer)
            .await
            .status,
        400
    );
    let r = http(
        a,
        "POST",
        "/whip/r",
        &[SDP, ("Authorization", "Basic Zm9vOmJhcg==")],
        &offer,
    )
    .await;
    assert_eq!(r.status, 401);
    let big = "a".repeat(100_000);
    assert_eq!(http(a, "POST", "/whip/r", &[SDP], &big).await.status, 413);
    // GET on the endpoint and POST on a resource are reserved: 405 (with CORS).
    let r = http(a, "GET", "/whip/r", &[], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        http(a, "POST", "/whip/r/abc", &[SDP], &offer).await.status,
        405
    );
    // A publisher with a bearer token (not checked yet), then the room is full: 409.
    let r = http(
        a,
        "POST",
        "/whip/r?name=First",
        &[SDP, ("Authorization", "Bearer t0k3n")],
        &offer,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut p2 = Peer::new("P2", 9).await;
    let (offer2, _, _) = p2.offer(&[(MediaKind::Audio, Direction::SendOnly)]);
    let r = http(a, "POST", "/whip/r?name=Second", &[SDP], &offer2).await;
    assert_eq!(r.status, 409, "{}", r.body);
    // Viewers do not count against the room size; a participant filter that is not in
    // the room is 404.
    let r = http(a, "POST", "/whep/r", &[SDP], &recv_offer).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut q2 = Peer::new("Q2", 9).await;
    let (recv2, _, _) = q2.offer(&[(MediaKind::Audio, Direction::RecvOnly)]);
    assert_eq!(
        http(a, "POST", "/whep/r?participant=p999", &[SDP], &recv2)
            .await
            .status,
        404
    );
    server.stop().await;
}

//! `/metrics`, `/api/rooms` and `/api/rooms/{room}` against what independent clients did:
//! three str0m 0.24 clients (crates.io) join one room over loopback (Ana publishes audio and
//! video, Ben audio, Carl only listens), publish a known number of RTP packets, and the test
//! scrapes the server while media flows and after it stopped. The exposition text is checked
//! by a strict little parser written here (HELP/TYPE before samples, names, labels, counter
//! suffixes, histogram buckets monotonic and ending in `+Inf` = `_count`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::{Client, TestServer, http_get};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

fn init_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// A payload of `kind` for packet `n` (VP8 keyframe header so the server's keyframe gate
/// lets video through).
fn payload(kind: MediaKind, n: u32) -> Vec<u8> {
    let mut p = Vec::new();
    match kind {
        MediaKind::Video => p.extend_from_slice(&[
            0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, b'V',
        ]),
        MediaKind::Audio => p.push(b'A'),
    }
    p.extend_from_slice(&n.to_be_bytes());
    let len = 40 + (n as usize * 7) % 200;
    p.extend((0..len).map(|i| (i as u32 * 31 + n) as u8));
    p
}

/// A str0m client in RTP mode over a loopback UDP socket and a signalling WebSocket.
struct Peer {
    name: &'static str,
    rtc: Rtc,
    udp: UdpSocket,
    local: SocketAddr,
    ws: Client,
    connected: bool,
    publish: Vec<(Mid, MediaKind)>,
    /// RTP packets written, and their payload bytes.
    sent: u64,
    sent_bytes: u64,
    /// (time, payload bytes) of each packet written.
    sent_log: Vec<(Instant, usize)>,
    counter: u32,
    next_write: Instant,
    /// Media is written while true.
    sending: bool,
    /// RTP packets received.
    received: u64,
}

impl Peer {
    async fn join(
        server: &TestServer,
        room: &str,
        name: &'static str,
        kinds: &[MediaKind],
    ) -> Peer {
        init_crypto();
        let (mut ws, joined) = Client::join(server, room, name).await;
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
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mut publish = Vec::new();
        for kind in kinds {
            let mid = api.add_media(*kind, Direction::SendOnly, None, None, None);
            publish.push((mid, *kind));
        }
        // A listener still needs an m-line for its first offer: a data channel.
        if kinds.is_empty() {
            api.add_channel("data".into());
        }
        let (offer, pending) = api.apply().expect("changes");
        let tracks: Vec<Value> = publish
            .iter()
            .map(|(mid, kind)| {
                let audio = *kind == MediaKind::Audio;
                json!({"mid": mid.to_string(), "kind": if audio { "audio" } else { "video" },
                       "source": if audio { "microphone" } else { "camera" }, "muted": false})
            })
            .collect();
        let reply = ws
            .request(json!({"type": "offer", "sdp": offer.to_sdp_string(), "tracks": tracks}))
            .await;
        assert_eq!(reply["type"], "answer", "{name}: {reply}");
        let answer = SdpAnswer::from_sdp_string(reply["sdp"].as_str().unwrap()).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        Peer {
            name,
            rtc,
            udp,
            local,
            ws,
            connected: false,
            publish,
            sent: 0,
            sent_bytes: 0,
            sent_log: Vec::new(),
            counter: 0,
            next_write: now,
            sending: true,
            received: 0,
        }
    }

    fn write_media(&mut self, now: Instant) {
        if !self.connected || !self.sending || now < self.next_write {
            return;
        }
        self.next_write = now + Duration::from_millis(20);
        self.counter += 1;
        let n = self.counter;
        for (mid, kind) in self.publish.clone() {
            let codec = if kind == MediaKind::Audio {
                Codec::Opus
            } else {
                Codec::Vp8
            };
            let Some(pt) = self
                .rtc
                .codec_config()
                .params()
                .iter()
                .find(|p| p.spec().codec == codec)
                .map(|p| p.pt())
            else {
                continue;
            };
            let data = payload(kind, n);
            let clock = if kind == MediaKind::Audio { 48 } else { 90 };
            let mut api = self.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            self.sent += 1;
            self.sent_bytes += data.len() as u64;
            self.sent_log.push((now, data.len()));
            let write =
                RtpWrite::new(pt, (1000 + n as u64).into(), n * 20 * clock, now, data).marker(true);
            tx.write_rtp(write);
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
            self.ws
                .send_text(
                    json!({"type": "answer", "negotiation": m["negotiation"], "sdp": answer.to_sdp_string()})
                        .to_string(),
                )
                .await;
        } else if m["type"] == "error" {
            panic!("{}: server error {m}", self.name);
        }
    }

    async fn run_until(&mut self, until: Instant) {
        let mut buf = vec![0u8; 2000];
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            self.write_media(now);
            let timeout = loop {
                match self.rtc.poll_output().expect("poll_output") {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = self.udp.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(Event::Connected) => self.connected = true,
                    Output::Event(Event::RtpPacket(_)) => self.received += 1,
                    Output::Event(_) => {}
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
                        self.rtc.handle_input(input).expect("handle_input");
                    }
                }
                m = self.ws.recv() => self.on_ws(m).await,
                () = tokio::time::sleep_until(wake.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).expect("timeout");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// A strict parser of the Prometheus text exposition format 0.0.4.

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: bool,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {s:?}"));
        assert!(
            valid_name(name) && !name.starts_with("__"),
            "label name {name:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {s:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {s:?}"),
            }
        };
        assert!(
            labels.insert(name.to_owned(), value).is_none(),
            "duplicate label in {s:?}"
        );
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// Parses the exposition text into families (by name), checking the format strictly.
fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    assert!(text.ends_with('\n'), "ends with a newline");
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            let f = families.entry(name.to_owned()).or_default();
            assert!(
                !f.help && f.samples.is_empty(),
                "HELP once, before samples: {line}"
            );
            f.help = true;
            current = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            let f = families.entry(name.to_owned()).or_default();
            assert!(
                f.kind.is_empty() && f.samples.is_empty(),
                "TYPE once, before samples: {line}"
            );
            f.kind = kind.to_owned();
            current = Some(name.to_owned());
        } else if line.starts_with('#') || line.trim().is_empty() {
            panic!("unexpected line {line:?}");
        } else {
            let (series, value) = line.rsplit_once(' ').expect("sample: series value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect("closing brace"))),
                None => (series, BTreeMap::new()),
            };
            assert!(valid_name(name), "{line}");
            let fam = current.clone().expect("sample after HELP/TYPE");
            let f = families.get_mut(&fam).unwrap();
            let ok = match f.kind.as_str() {
                "histogram" => [
                    format!("{fam}_bucket"),
                    format!("{fam}_sum"),
                    format!("{fam}_count"),
                ]
                .contains(&name.to_owned()),
                _ => name == fam,
            };
            assert!(ok, "sample {name} outside its family {fam}");
            assert!(f.help && !f.kind.is_empty(), "{fam} has HELP and TYPE");
            if f.kind == "counter" {
                assert!(fam.ends_with("_total"), "counter {fam} ends in _total");
                assert!(value >= 0.0, "{line}");
            }
            f.samples.push((name.to_owned(), labels, value));
        }
    }
    // Histograms: buckets with increasing `le`, monotonic counts, `+Inf` last == `_count`.
    for (name, f) in &families {
        assert!(!f.samples.is_empty(), "{name} has samples");
        if f.kind != "histogram" {
            continue;
        }
        let mut last_le = f64::NEG_INFINITY;
        let mut last_count = 0.0;
        let mut inf = None;
        for (n, labels, v) in &f.samples {
            if n.ends_with("_bucket") {
                let le: f64 = match labels["le"].as_str() {
                    "+Inf" => f64::INFINITY,
                    s => s.parse().expect("le"),
                };
                assert!(le > last_le, "{name}: le increasing");
                assert!(*v >= last_count, "{name}: cumulative buckets");
                last_le = le;
                last_count = *v;
                if le.is_infinite() {
                    inf = Some(*v);
                }
            }
        }
        let count = f
            .samples
            .iter()
            .find(|(n, _, _)| n.ends_with("_count"))
            .expect("_count")
            .2;
        assert!(
            f.samples.iter().any(|(n, _, _)| n.ends_with("_sum")),
            "{name}_sum"
        );
        assert_eq!(inf, Some(count), "{name}: +Inf bucket == _count");
    }
    families
}

/// The one unlabelled sample called `name` (of any family).
fn value(f: &BTreeMap<String, Family>, name: &str) -> f64 {
    let found: Vec<f64> = f
        .values()
        .flat_map(|fam| fam.samples.iter())
        .filter(|(n, labels, _)| n == name && labels.is_empty())
        .map(|s| s.2)
        .collect();
    assert_eq!(found.len(), 1, "{name} exported once");
    found[0]
}

fn errors(f: &BTreeMap<String, Family>, code: &str) -> f64 {
    f["tympan_signalling_errors_total"]
        .samples
        .iter()
        .find(|(_, l, _)| l.get("code").map(String::as_str) == Some(code))
        .map_or(0.0, |s| s.2)
}

async fn scrape(server: &TestServer) -> BTreeMap<String, Family> {
    let (status, body) = http_get(server.addrs.http, "/metrics").await;
    assert_eq!(status, 200);
    parse_exposition(&body)
}

async fn api(server: &TestServer, path: &str) -> (u16, Value) {
    let (status, body) = http_get(server.addrs.http, path).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_room_details_follow_what_str0m_clients_sent() {
    let server = TestServer::start().await;
    let first = scrape(&server).await;
    assert_eq!(value(&first, "tympan_rooms"), 0.0);
    assert_eq!(value(&first, "tympan_room_participants_count"), 0.0);

    let mut ana = Peer::join(
        &server,
        "metrics",
        "Ana",
        &[MediaKind::Audio, MediaKind::Video],
    )
    .await;
    let mut ben = Peer::join(&server, "metrics", "Ben", &[MediaKind::Audio]).await;
    let mut carl = Peer::join(&server, "metrics", "Carl", &[]).await;

    // Media for 5 s; a scrape of the room in the middle, while it flows.
    let start = Instant::now();
    let until = start + Duration::from_secs(5);
    let mid_run = async {
        tokio::time::sleep(Duration::from_millis(4000)).await;
        api(&server, "/api/rooms/metrics").await
    };
    let ((), (), (), (status, live)) = tokio::join!(
        ana.run_until(until),
        ben.run_until(until),
        carl.run_until(until),
        mid_run
    );
    assert_eq!(status, 200, "{live}");
    assert!(ana.connected && ben.connected && carl.connected);
    // Ana's inbound bit rate (the server's last 1 s window) against what she wrote in the
    // 2 s before the scrape: payload bytes plus 12-byte headers, and at most 40 bytes of
    // header extensions per packet.
    let scraped_at = start + Duration::from_millis(4000);
    let (mut bytes, mut packets) = (0usize, 0usize);
    for (t, n) in &ana.sent_log {
        if *t + Duration::from_secs(2) >= scraped_at && *t <= scraped_at {
            bytes += n;
            packets += 1;
        }
    }
    let low = (bytes + 12 * packets) as f64 * 8.0 / 2.0;
    let high = (bytes + 52 * packets) as f64 * 8.0 / 2.0;
    let ana_live = &live["participants"][0];
    assert_eq!(ana_live["name"], "Ana");
    let rate = ana_live["inbound"]["bitrate_bps"]
        .as_f64()
        .expect("bitrate");
    assert!(
        rate >= low * 0.6 && rate <= high * 1.4,
        "Ana's inbound bit rate {rate} vs sent {low}..{high}"
    );
    assert!(live["totals"]["bitrate_in_bps"].as_f64().unwrap() >= rate);
    assert!(live["totals"]["bitrate_out_bps"].as_f64().unwrap() > 0.0);

    // Stop the media, let what is in flight and the RTCP reports arrive.
    for p in [&mut ana, &mut ben, &mut carl] {
        p.sending = false;
    }
    let until = Instant::now() + Duration::from_millis(2500);
    tokio::join!(
        ana.run_until(until),
        ben.run_until(until),
        carl.run_until(until)
    );

    let m = scrape(&server).await;
    let sent = ana.sent + ben.sent;
    let rtp_in = value(&m, "tympan_rtp_packets_in_total");
    let rtx_in = value(&m, "tympan_rtx_received_total");
    let forwarded = value(&m, "tympan_rtp_packets_forwarded_total");
    let rtx_out = value(&m, "tympan_rtx_sent_total");
    let received = (ana.received + ben.received + carl.received) as f64;
    eprintln!(
        "sent {sent} rtp_in {rtp_in} (rtx {rtx_in}); forwarded {forwarded} (rtx {rtx_out}), received {received}"
    );
    assert_eq!(value(&m, "tympan_rooms"), 1.0);
    assert_eq!(value(&m, "tympan_participants"), 3.0);
    assert_eq!(value(&m, "tympan_tracks"), 3.0);
    assert_eq!(value(&m, "tympan_websocket_connections"), 3.0);
    assert_eq!(value(&m, "tympan_room_participants_sum"), 3.0);
    let hist = &m["tympan_room_participants"].samples;
    let bucket = |le: &str| {
        hist.iter()
            .find(|(_, l, _)| l.get("le").map(String::as_str) == Some(le))
            .map(|s| s.2)
    };
    assert_eq!((bucket("2"), bucket("5")), (Some(0.0), Some(1.0)));
    // Everything the clients sent arrived (loopback), plus at most the retransmissions.
    assert!(
        rtp_in >= sent as f64 && rtp_in <= sent as f64 + rtx_in,
        "rtp in {rtp_in}, sent {sent}"
    );
    // Ana's packets go to Ben and Carl, Ben's to Ana and Carl: what the clients received is
    // what was forwarded (nothing is in flight any more; retransmissions may add copies).
    assert!(
        received <= forwarded + rtx_out && received >= forwarded * 0.98,
        "received {received}, forwarded {forwarded} + rtx {rtx_out}"
    );
    assert!(
        forwarded >= (2 * sent) as f64 * 0.9,
        "each packet reaches two subscribers"
    );
    // Bytes: RTP plaintext covers at least payload + header of what was sent; datagram bytes
    // cover RTP plus SRTP tags plus everything else.
    let payload_bytes = (ana.sent_bytes + ben.sent_bytes) as f64;
    let rtp_bytes_in = value(&m, "tympan_rtp_bytes_in_total");
    assert!(
        rtp_bytes_in >= payload_bytes + 12.0 * sent as f64,
        "{rtp_bytes_in}"
    );
    assert!(
        rtp_bytes_in <= payload_bytes + 60.0 * rtp_in,
        "{rtp_bytes_in}"
    );
    assert!(value(&m, "tympan_bytes_in_total") >= rtp_bytes_in + 10.0 * rtp_in);
    assert!(value(&m, "tympan_bytes_out_total") >= value(&m, "tympan_rtp_bytes_forwarded_total"));
    assert!(value(&m, "tympan_datagrams_in_total") >= rtp_in);
    assert!(value(&m, "tympan_datagrams_out_total") >= forwarded);
    assert!(value(&m, "tympan_rtcp_packets_in_total") > 0.0);
    assert!(value(&m, "tympan_rtcp_packets_out_total") > 0.0);

    // The room in detail.
    let (status, room) = api(&server, "/api/rooms/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(room["name"], "metrics");
    let ps = room["participants"].as_array().expect("participants");
    let names: Vec<&str> = ps.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ana", "Ben", "Carl"]);
    let by_name: HashMap<&str, &Value> = names.iter().copied().zip(ps.iter()).collect();
    for (p, sent) in [
        (by_name["Ana"], ana.sent),
        (by_name["Ben"], ben.sent),
        (by_name["Carl"], 0),
    ] {
        let who = &p["name"];
        assert_eq!(p["connected"], true, "{who}");
        assert_eq!(p["transport"], "udp", "{who}");
        assert!(p["id"].as_str().unwrap().starts_with('p'));
        let inbound = &p["inbound"];
        let got = inbound["packets"].as_u64().unwrap();
        assert!(
            got >= sent && got <= sent + rtx_in as u64,
            "{who}: {got} of {sent}"
        );
        // Everybody receives something and sends receiver reports: RTT, loss, jitter known.
        let rtt = p["rtt_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{who}: rtt {p}"));
        assert!((0.0..1000.0).contains(&rtt), "{who}: rtt {rtt}");
        let out = &p["outbound"];
        assert!(out["streams"].as_u64().unwrap() >= 1, "{who}: {out}");
        let fraction = out["fraction_lost"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&fraction), "{who}: {out}");
        let lost = out["packets_lost"].as_i64().unwrap();
        let packets = out["packets"].as_i64().unwrap();
        assert!(
            packets > 0 && lost.abs() <= packets / 20 + 2,
            "{who}: {out}"
        );
        let jitter = out["jitter_ms"].as_f64().unwrap();
        assert!((0.0..200.0).contains(&jitter), "{who}: jitter {jitter}");
        if sent > 0 {
            let jitter = inbound["jitter_ms"].as_f64().unwrap();
            assert!(
                (0.0..200.0).contains(&jitter),
                "{who}: inbound jitter {jitter}"
            );
            assert!(
                inbound["packets_lost"].as_i64().unwrap().abs() <= 5,
                "{who}: {inbound}"
            );
        }
    }
    let tracks = by_name["Ana"]["tracks"].as_array().unwrap();
    let kinds: Vec<&str> = tracks.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["audio", "video"]);
    assert_eq!(tracks[0]["source"], "microphone");
    assert_eq!(tracks[0]["muted"], false);
    assert!(by_name["Carl"]["tracks"].as_array().unwrap().is_empty());
    let totals = &room["totals"];
    assert_eq!(totals["participants"], 3);
    assert_eq!(totals["tracks"], 3);
    assert_eq!(
        totals["packets_in"].as_u64().unwrap(),
        ps.iter()
            .map(|p| p["inbound"]["packets"].as_u64().unwrap())
            .sum::<u64>()
    );
    // No media in the last window.
    assert_eq!(totals["bitrate_in_bps"], 0);

    // /api/rooms keeps its fields and adds the totals; unknown rooms are a JSON 404.
    let (status, list) = api(&server, "/api/rooms").await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["name"], "metrics");
    assert_eq!(list[0]["participants"], 3);
    assert_eq!(list[0]["tracks"], 3);
    assert_eq!(list[0]["totals"], *totals);
    let (status, missing) = api(&server, "/api/rooms/nowhere").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "not_found");

    // A bad request moves the signalling error counter (and the socket the gauge).
    let before = errors(&m, "bad_json");
    let mut bad = Client::connect(&server).await;
    bad.send_text("this is not JSON").await;
    let reply = bad.recv().await;
    assert_eq!(reply["code"], "bad_json");
    let reply = bad
        .request(json!({"type": "mute", "track": "t1", "muted": true}))
        .await;
    assert_eq!(reply["code"], "not_joined");
    let after = scrape(&server).await;
    assert_eq!(errors(&after, "bad_json"), before + 1.0);
    assert_eq!(errors(&after, "not_joined"), errors(&m, "not_joined") + 1.0);
    assert_eq!(value(&after, "tympan_websocket_connections"), 4.0);
    bad.close().await;
    server.stop().await;
}

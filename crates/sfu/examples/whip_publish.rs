//! A WHIP publisher for trying the server without a camera: str0m 0.24 (crates.io) posts its
//! SDP offer to `POST /whip/{room}` (plain HTTP/1.1 over a TcpStream), then sends a real VP8
//! bitstream — the RTP capture `rtp-captures/vp8.pcap` from the shared test data, replayed in
//! a loop at its own pace with rewritten sequence numbers and timestamps — and Opus frames
//! (a tone-like pattern alternating with silence). Ctrl-C (or `--seconds`) ends it with a
//! `DELETE` of the session.
//!
//! ```sh
//! cargo run -p tympan-sfu --example whip_publish -- --server 127.0.0.1:8080 --room demo \
//!     --name "Test card" --pcap ../shared/testdata/rtp-captures/vp8.pcap
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

type Error = Box<dyn std::error::Error>;

struct Args {
    server: SocketAddr,
    room: String,
    name: String,
    pcap: String,
    seconds: Option<u64>,
}

fn usage() -> ! {
    eprintln!(
        "usage: whip_publish --server HOST:PORT --room ROOM [--name NAME] --pcap vp8.pcap [--seconds N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut server = None;
    let mut room = None;
    let mut name = "WHIP test card".to_string();
    let mut pcap = None;
    let mut seconds = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--server" => {
                let v = value();
                let v = v.trim_start_matches("http://").trim_end_matches('/');
                server = Some(v.parse().unwrap_or_else(|_| usage()));
            }
            "--room" => room = Some(value()),
            "--name" => name = value(),
            "--pcap" => pcap = Some(value()),
            "--seconds" => seconds = Some(value().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    Args {
        server: server.unwrap_or_else(|| usage()),
        room: room.unwrap_or_else(|| usage()),
        name,
        pcap: pcap.unwrap_or_else(|| usage()),
        seconds,
    }
}

/// One RTP packet of the capture: payload, marker, timestamp.
struct CapturedPacket {
    payload: Vec<u8>,
    marker: bool,
    timestamp: u32,
}

/// Classic little-endian pcap, Ethernet, IPv4/UDP, RTP inside (no extensions assumed beyond
/// what the header says).
fn read_pcap(path: &str) -> Result<Vec<CapturedPacket>, Error> {
    let d = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let u32le = |o: usize| -> Result<u32, Error> {
        Ok(u32::from_le_bytes(
            d.get(o..o + 4).ok_or("truncated pcap")?.try_into()?,
        ))
    };
    if d.len() < 24 || u32le(0)? != 0xA1B2_C3D4 || u32le(20)? != 1 {
        return Err("expected a little-endian Ethernet pcap".into());
    }
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32le(off + 8)? as usize;
        let frame = d.get(off + 16..off + 16 + incl).ok_or("truncated frame")?;
        off += 16 + incl;
        let ip = frame.get(14..).ok_or("short frame")?;
        let ihl = 4 * usize::from(ip.first().ok_or("no ip")? & 0x0f);
        let udp = ip.get(ihl..).ok_or("short ip")?;
        let rtp = udp.get(8..).ok_or("short udp")?;
        if rtp.len() < 12 || rtp[0] >> 6 != 2 {
            continue;
        }
        let cc = usize::from(rtp[0] & 0x0f);
        let mut header = 12 + 4 * cc;
        if rtp[0] & 0x10 != 0 {
            let ext = rtp.get(header + 2..header + 4).ok_or("short ext")?;
            header += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        }
        let mut end = rtp.len();
        if rtp[0] & 0x20 != 0 {
            end -= usize::from(*rtp.last().ok_or("empty")?);
        }
        out.push(CapturedPacket {
            payload: rtp.get(header..end).ok_or("bad padding")?.to_vec(),
            marker: rtp[1] & 0x80 != 0,
            timestamp: u32::from_be_bytes(rtp[4..8].try_into()?),
        });
    }
    if out.is_empty() {
        return Err("no RTP in the capture".into());
    }
    Ok(out)
}

/// A plain HTTP/1.1 request; returns (status, headers, body).
async fn http(
    server: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Result<(u16, Vec<(String, String)>, String), Error> {
    let mut s = TcpStream::connect(server).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8(out)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

/// A 20 ms Opus frame: the CELT-only silence frame, or (every other second) a frame with
/// varying content so that the level meter moves. Receivers decode both.
fn opus_frame(n: u32) -> Vec<u8> {
    if (n / 50) % 2 == 0 {
        vec![0xf8, 0xff, 0xfe]
    } else {
        let mut f = vec![0xf8];
        f.extend((0..60u32).map(|i| (i.wrapping_mul(37) ^ n) as u8));
        f
    }
}

fn pt_of(rtc: &Rtc, codec: Codec) -> Option<Pt> {
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args = parse_args();
    let packets = read_pcap(&args.pcap)?;
    str0m::crypto::from_feature_flags().install_process_default();
    let bind_ip = if args.server.ip().is_loopback() {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let udp = UdpSocket::bind((bind_ip, 0)).await?;
    let local = udp.local_addr()?;
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    let audio: Mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let video: Mid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().ok_or("no offer")?;
    let name: String = args
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (status, headers, body) = http(
        args.server,
        "POST",
        &format!("/whip/{}?name={name}", args.room),
        Some("application/sdp"),
        &offer.to_sdp_string(),
    )
    .await?;
    if status != 201 {
        return Err(format!("WHIP POST: {status} {body}").into());
    }
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .ok_or("no Location")?;
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&body)?)?;
    println!("publishing as {location}");

    let start = Instant::now();
    let stop_at = args.seconds.map(|s| start + Duration::from_secs(s));
    let first_ts = packets[0].timestamp;
    let loop_len = packets
        .last()
        .map_or(0, |p| p.timestamp.wrapping_sub(first_ts))
        + 3000;
    let mut loops = 0u32;
    let mut next_video = 0usize;
    let mut video_seq = 0u64;
    let mut audio_n = 0u32;
    let mut connected = false;
    let mut media_start = start;
    let mut buf = vec![0u8; 2000];
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let now = Instant::now();
        if stop_at.is_some_and(|t| now >= t) {
            break;
        }
        if connected {
            // Opus every 20 ms.
            while media_start + Duration::from_millis(20 * u64::from(audio_n)) <= now {
                audio_n += 1;
                if let Some(pt) = pt_of(&rtc, Codec::Opus) {
                    let w = RtpWrite::new(
                        pt,
                        u64::from(audio_n).into(),
                        audio_n * 960,
                        now,
                        opus_frame(audio_n),
                    );
                    if let Some(tx) = rtc.direct_api().stream_tx_by_mid(audio, None) {
                        tx.write_rtp(w);
                    }
                }
            }
            // VP8 at the capture's pace, looped with continuous timestamps.
            loop {
                let p = &packets[next_video];
                let ts = p
                    .timestamp
                    .wrapping_sub(first_ts)
                    .wrapping_add(loops.wrapping_mul(loop_len));
                let due = media_start + Duration::from_micros(u64::from(ts) * 1000 / 90);
                if due > now {
                    break;
                }
                video_seq += 1;
                if let Some(pt) = pt_of(&rtc, Codec::Vp8) {
                    let w = RtpWrite::new(pt, video_seq.into(), ts, now, p.payload.clone())
                        .marker(p.marker);
                    if let Some(tx) = rtc.direct_api().stream_tx_by_mid(video, None) {
                        tx.write_rtp(w);
                    }
                }
                next_video += 1;
                if next_video == packets.len() {
                    next_video = 0;
                    loops += 1;
                }
            }
        }
        let timeout = loop {
            match rtc.poll_output()? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = udp.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => {
                    connected = true;
                    media_start = Instant::now();
                    println!("connected");
                }
                Output::Event(_) => {}
            }
        };
        let wake = timeout.min(now + Duration::from_millis(5));
        tokio::select! {
            r = udp.recv_from(&mut buf) => {
                let Ok((n, source)) = r else { continue };
                if let Ok(contents) = buf[..n].try_into() {
                    rtc.handle_input(Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp, source, destination: local, contents,
                    }))?;
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {
                rtc.handle_input(Input::Timeout(Instant::now()))?;
            }
            _ = &mut ctrl_c => break,
        }
        if !rtc.is_alive() {
            return Err("the connection died".into());
        }
    }
    let (status, _, _) = http(args.server, "DELETE", &location, None, "").await?;
    println!("DELETE {location}: {status}");
    Ok(())
}

//! Hostile and broken input at the media ports and on the WebSocket: the server keeps
//! serving the others, checked with a live client after each blow.

mod common;

use std::time::Duration;

use common::{Client, TestServer, http_get};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

/// Datagrams that look like each protocol sharing the port (RFC 7983 demux by first byte),
/// truncated or corrupted, plus plain noise.
fn garbage_datagrams() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0x00, 0x01], // STUN type, nothing else
        vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42], // STUN header, truncated
        vec![0x16, 0xfe, 0xfd], // DTLS record header, truncated
        vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], // DTLS length beyond end
        vec![0x80, 0x60, 0x00, 0x01], // RTP, 4 bytes
        vec![0x80, 0xc8, 0x00, 0x06, 1, 2, 3, 4], // RTCP SR, truncated
        vec![0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 5, 0, 3, 1, 2, 3], // DTLS appdata, no epoch
        vec![0xff; 1500],
    ];
    // A full STUN binding request with an unknown ufrag and a bad integrity.
    let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
    stun.extend_from_slice(b"nobo:dy!");
    out.push(stun);
    // Pseudo-random noise (xorshift, fixed seed).
    let mut x: u32 = 0x9e37_79b9;
    for len in [1usize, 12, 20, 100, 200, 1200] {
        out.push(
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect(),
        );
    }
    out
}

#[tokio::test]
async fn garbage_at_the_udp_and_tcp_media_ports_does_not_hurt_the_others() {
    let server = TestServer::start().await;
    let (mut ana, _) = Client::join(&server, "steady", "Ana").await;
    let (mut ben, _) = Client::join(&server, "steady", "Ben").await;

    // UDP: every garbage datagram, many times, from two sources.
    let udp_a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let garbage = garbage_datagrams();
    for _ in 0..20 {
        for d in &garbage {
            udp_a.send_to(d, server.addrs.udp).await.unwrap();
            udp_b.send_to(d, server.addrs.udp).await.unwrap();
        }
    }
    ana.assert_alive().await;

    // TCP: garbage frames, a frame announced longer than what follows then a close,
    // a lone length byte, and a connection that says nothing.
    let mut framed = Vec::new();
    for d in &garbage {
        framed.extend_from_slice(&(d.len() as u16).to_be_bytes());
        framed.extend_from_slice(d);
    }
    let mut t1 = TcpStream::connect(server.addrs.tcp).await.unwrap();
    t1.write_all(&framed).await.unwrap();
    t1.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap(); // truncated 65535-byte frame
    drop(t1);
    let mut t2 = TcpStream::connect(server.addrs.tcp).await.unwrap();
    t2.write_all(&[0x00]).await.unwrap();
    drop(t2);
    let silent = TcpStream::connect(server.addrs.tcp).await.unwrap();
    let mut t3 = TcpStream::connect(server.addrs.tcp).await.unwrap();
    for _ in 0..50 {
        t3.write_all(&framed).await.unwrap();
    }
    t3.flush().await.unwrap();

    // Give the server time to chew through it, then check everyone is still served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ana.assert_alive().await;
    ben.assert_alive().await;
    let r = ben
        .request(json!({"type": "chat", "text": "still here"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let m = ana.recv_type("chat").await;
    assert_eq!(m["text"], "still here");
    assert_eq!(m["name"], "Ben");
    let (status, body) = http_get(server.addrs.http, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["websockets"], 2, "{health}");
    // A newcomer can still join the room and sees both.
    let (_carl, joined) = Client::join(&server, "steady", "Carl").await;
    assert_eq!(joined["participants"].as_array().unwrap().len(), 2);
    drop(silent);
    drop(t3);
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_signalling_garbage_from_one_socket_leaves_the_others_alone() {
    let server = TestServer::start().await;
    let (mut ana, _) = Client::join(&server, "flood", "Ana").await;
    let mut rogue = Client::connect(&server).await;
    for i in 0..300u32 {
        let text = match i % 4 {
            0 => "{".to_string(),
            1 => format!(r#"{{"type":"x{i}"}}"#),
            2 => r#"{"type":"offer","sdp":12}"#.to_string(),
            _ => "\u{0}\u{1}garbage".to_string(),
        };
        rogue.send_text(text).await;
    }
    rogue.vanish();
    ana.assert_alive().await;
    let (_ben, joined) = Client::join(&server, "flood", "Ben").await;
    assert_eq!(joined["participants"].as_array().unwrap().len(), 1);
    server.stop().await;
}

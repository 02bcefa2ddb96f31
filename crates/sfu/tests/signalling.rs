//! The JSON signalling of docs/signalling.md over a real loopback WebSocket, with
//! tokio-tungstenite as the client.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Client, TestServer, http_get};
use serde_json::json;

fn assert_error(reply: &serde_json::Value, code: &str, id: Option<u64>) {
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], code, "{reply}");
    assert!(
        reply["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {reply}"
    );
    match id {
        Some(id) => assert_eq!(reply["id"], id, "{reply}"),
        None => assert!(reply.get("id").is_none(), "{reply}"),
    }
}

#[tokio::test]
async fn welcome_then_every_bad_message_gets_a_typed_error_and_the_socket_survives() {
    let server = TestServer::start().await;
    let mut c = Client::connect(&server).await;
    assert_eq!(c.welcome["version"], 1);
    assert!(c.welcome["server"].as_str().unwrap().starts_with("tympan/"));

    // ping is allowed before join
    c.assert_alive().await;

    // request before join
    let r = c.request(json!({"type": "chat", "text": "hi"})).await;
    assert_error(&r, "not_joined", Some(2));
    c.assert_alive().await;

    // malformed JSON, and JSON that is not an object: bad_json without id
    for text in ["{\"type\": \"join\",", "[1, 2, 3]", "42", ""] {
        c.send_text(text).await;
        let r = c.recv().await;
        assert_error(&r, "bad_json", None);
        c.assert_alive().await;
    }

    // binary frame
    c.send_binary(vec![1, 2, 3]).await;
    assert_error(&c.recv().await, "bad_json", None);
    c.assert_alive().await;

    // unknown type, missing type, missing field, wrong field type: bad_message with the id
    c.send_text(r#"{"type":"teleport","id":500}"#).await;
    assert_error(&c.recv().await, "bad_message", Some(500));
    c.send_text(r#"{"id":501,"room":"x"}"#).await;
    assert_error(&c.recv().await, "bad_message", Some(501));
    c.send_text(r#"{"type":"join","id":502,"version":1,"room":"x"}"#)
        .await;
    let r = c.recv().await;
    assert_error(&r, "bad_message", Some(502));
    assert!(r["message"].as_str().unwrap().contains("name"), "{r}");
    c.send_text(r#"{"type":"join","id":503,"version":"1","room":"x","name":"y"}"#)
        .await;
    assert_error(&c.recv().await, "bad_message", Some(503));
    c.send_text(r#"{"type":"ping","id":"seven"}"#).await;
    assert_error(&c.recv().await, "bad_message", None);
    c.assert_alive().await;

    // wrong protocol version
    let r = c
        .request(json!({"type": "join", "version": 2, "room": "r", "name": "Ana"}))
        .await;
    assert_eq!(r["code"], "unsupported_version", "{r}");
    c.assert_alive().await;

    // oversized frame (above 64 KiB): too_large, not a disconnect
    let big = format!(
        r#"{{"type":"chat","id":600,"text":"{}"}}"#,
        "a".repeat(70_000)
    );
    c.send_text(big).await;
    assert_error(&c.recv().await, "too_large", None);
    c.assert_alive().await;

    // engine-validated names
    let r = c
        .request(json!({"type": "join", "version": 1, "room": "", "name": "Ana"}))
        .await;
    assert_eq!(r["code"], "bad_name", "{r}");
    let r = c
        .request(json!({"type": "join", "version": 1, "room": "has space/slash", "name": "Ana"}))
        .await;
    assert_eq!(r["code"], "bad_name", "{r}");
    c.assert_alive().await;

    // join, then a second join
    let r = c
        .request(json!({"type": "join", "version": 1, "room": "errors", "name": "Ana"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    assert_eq!(r["room"], "errors");
    assert_eq!(r["participants"], json!([]));
    let r = c
        .request(json!({"type": "join", "version": 1, "room": "errors", "name": "Ana"}))
        .await;
    assert_eq!(r["code"], "already_joined", "{r}");

    // mute of a track that is not ours / not a track id
    let r = c
        .request(json!({"type": "mute", "track": "t999", "muted": true}))
        .await;
    assert_eq!(r["code"], "unknown_track", "{r}");
    let r = c
        .request(json!({"type": "mute", "track": "x", "muted": true}))
        .await;
    assert_eq!(r["code"], "unknown_track", "{r}");
    // an answer with no server offer outstanding
    let r = c
        .request(json!({"type": "answer", "negotiation": 77, "sdp": "v=0\r\n"}))
        .await;
    assert_error(&r, "stale_answer", r["id"].as_u64());
    // an offer that is not SDP
    let r = c
        .request(json!({"type": "offer", "sdp": "hello", "tracks": []}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert!(
        r["code"] == "bad_sdp" || r["code"] == "negotiation_failed",
        "{r}"
    );
    c.assert_alive().await;
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_with_errors_and_recovers() {
    let server = TestServer::start().await;
    let mut c = Client::connect(&server).await;
    const N: u64 = 400;
    for id in 1..=N {
        c.send_text(json!({"type": "ping", "id": id}).to_string())
            .await;
    }
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..N {
        let r = c.recv().await;
        match r["type"].as_str() {
            Some("ok") => ok += 1,
            Some("error") => {
                assert_error(&r, "rate_limited", None);
                limited += 1;
            }
            _ => panic!("unexpected {r}"),
        }
    }
    assert_eq!(ok + limited, N, "every frame gets exactly one reply");
    assert!(ok >= 100, "the burst of 100 passes: {ok}");
    assert!(limited >= 1, "sending {N} at once must hit the limit");
    // the bucket refills at 50/s
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.assert_alive().await;
    server.stop().await;
}

#[tokio::test]
async fn two_participants_see_each_other_chat_and_leave() {
    // A short resume grace: a vanished socket is reported once it is over.
    let mut config = tympan_sfu::Config::ephemeral();
    config.resume_grace = Duration::from_millis(300);
    let server = TestServer::start_with(config).await;
    let (mut ana, joined_a) = Client::join(&server, "room-1", "Ana").await;
    let ana_id = joined_a["participant_id"].as_str().unwrap().to_string();
    let (mut ben, joined_b) = Client::join(&server, "room-1", "Ben").await;
    let ben_id = joined_b["participant_id"].as_str().unwrap().to_string();
    assert_ne!(ana_id, ben_id);
    assert_eq!(
        joined_b["participants"],
        json!([{"id": ana_id, "name": "Ana", "tracks": []}])
    );
    let pj = ana.recv_type("participant_joined").await;
    assert_eq!(pj["participant"]["id"], ben_id);
    assert_eq!(pj["participant"]["name"], "Ben");

    // someone in another room is not seen
    let (mut other, joined_o) = Client::join(&server, "room-2", "Olga").await;
    assert_eq!(joined_o["participants"], json!([]));

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let r = ana
        .request(json!({"type": "chat", "text": "¡Hola, Ben!"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    for c in [&mut ana, &mut ben] {
        let m = c.recv_type("chat").await;
        assert_eq!(m["from"], ana_id);
        assert_eq!(m["name"], "Ana");
        assert_eq!(m["text"], "¡Hola, Ben!");
        let ts = m["ts"].as_u64().expect("ts");
        assert!(
            ts + 1000 >= before && ts <= before + 60_000,
            "ts {ts} vs {before}"
        );
    }
    // a chat text above the limit
    let r = ben
        .request(json!({"type": "chat", "text": "x".repeat(2001)}))
        .await;
    assert_eq!(r["code"], "too_large", "{r}");
    let r = ben.request(json!({"type": "chat", "text": "bye"})).await;
    assert_eq!(r["type"], "ok");
    assert_eq!(ana.recv_type("chat").await["name"], "Ben");

    // Ben leaves properly; Ana is told, reason left; Ben's socket is closed.
    let r = ben.request(json!({"type": "leave"})).await;
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(ben.recv_type("__closed").await["type"], "__closed");
    let left = ana.recv_type("participant_left").await;
    assert_eq!(left["participant_id"], ben_id);
    assert_eq!(left["reason"], "left");

    // Carl joins and his socket just vanishes: reason disconnected.
    let (carl, joined_c) = Client::join(&server, "room-1", "Carl").await;
    let carl_id = joined_c["participant_id"].as_str().unwrap().to_string();
    assert_eq!(
        ana.recv_type("participant_joined").await["participant"]["id"],
        carl_id
    );
    carl.vanish();
    let left = ana.recv_type("participant_left").await;
    assert_eq!(left["participant_id"], carl_id);
    assert_eq!(left["reason"], "disconnected");

    // Olga never saw any of it.
    other.assert_alive().await;
    let r = other
        .request(json!({"type": "chat", "text": "alone"}))
        .await;
    assert_eq!(r["type"], "ok");
    let m = other.recv().await;
    assert_eq!(m["type"], "chat", "only her own chat: {m}");
    assert_eq!(m["from"], joined_o["participant_id"]);
    ana.assert_alive().await;
    server.stop().await;
}

#[tokio::test]
async fn room_size_limit_is_enforced() {
    let mut config = tympan_sfu::Config::ephemeral();
    config.max_room_size = 2;
    let server = TestServer::start_with(config).await;
    let (_a, _) = Client::join(&server, "small", "A").await;
    let (_b, _) = Client::join(&server, "small", "B").await;
    let mut c = Client::connect(&server).await;
    let r = c
        .request(json!({"type": "join", "version": 1, "room": "small", "name": "C"}))
        .await;
    assert_eq!(r["code"], "room_full", "{r}");
    let r = c
        .request(json!({"type": "join", "version": 1, "room": "other", "name": "C"}))
        .await;
    assert_eq!(r["type"], "joined", "{r}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_says_bye_to_every_socket() {
    let server = TestServer::start().await;
    let (mut joined, _) = Client::join(&server, "bye", "Ana").await;
    let mut lobby = Client::connect(&server).await;
    server.stop().await;
    for c in [&mut joined, &mut lobby] {
        let bye = c.recv_type("bye").await;
        assert_eq!(bye["reason"], "shutdown");
        assert_eq!(c.recv().await["type"], "__closed");
    }
}

#[tokio::test]
async fn http_routes_serve_the_room_and_health() {
    let server = TestServer::start().await;
    let http = server.addrs.http;
    let (status, body) = http_get(http, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html") || body.contains("<!DOCTYPE") || body.contains("<!doctype"));
    let (status, room) = http_get(http, "/room/spanish-b1").await;
    assert_eq!(status, 200);
    assert_eq!(room, body);
    for f in ["app.js", "style.css", "index.html"] {
        let (status, body) = http_get(http, &format!("/static/{f}")).await;
        assert_eq!(status, 200, "{f}");
        assert!(!body.is_empty());
    }
    assert_eq!(http_get(http, "/static/nope.js").await.0, 404);
    let (_c, _) = Client::join(&server, "health", "Ana").await;
    let (status, body) = http_get(http, "/healthz").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("healthz JSON");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["websockets"], 1);
    let (status, body) = http_get(http, "/api/rooms").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("rooms JSON");
    // The fields of issue 6, plus the room totals (no media yet: all zero).
    let totals = json!({"participants": 1, "tracks": 0, "packets_in": 0, "packets_out": 0,
        "bytes_in": 0, "bytes_out": 0, "bitrate_in_bps": 0, "bitrate_out_bps": 0});
    assert_eq!(
        v,
        json!([{"name": "health", "participants": 1, "tracks": 0, "viewers": 0, "totals": totals}])
    );
    server.stop().await;
}

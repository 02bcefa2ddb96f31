//! `joined.chat_history` over a real loopback WebSocket (tokio-tungstenite as the client): a
//! late joiner gets the room's last `--chat-history` chat messages, oldest first, exactly as
//! the `chat` events carried them.

mod common;

use common::{Client, TestServer};
use serde_json::{Value, json};
use tympan_sfu::Config;

#[tokio::test]
async fn a_late_joiner_gets_the_last_n_chat_messages_oldest_first() {
    let mut config = Config::ephemeral();
    config.chat_history = 3;
    let server = TestServer::start_with(config).await;

    let (mut ana, joined_a) = Client::join(&server, "history", "Ana").await;
    assert_eq!(joined_a["chat_history"], json!([]), "a new room has none");
    let ana_id = joined_a["participant_id"].as_str().unwrap().to_string();

    // Four messages; the room keeps three. Remember the events Ana saw.
    let mut seen: Vec<Value> = Vec::new();
    for i in 1..=4 {
        let r = ana
            .request(json!({"type": "chat", "text": format!("message {i}")}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        seen.push(ana.recv_type("chat").await);
    }

    let (mut ben, joined_b) = Client::join(&server, "history", "Ben").await;
    let history = joined_b["chat_history"].as_array().expect("chat_history");
    let texts: Vec<&str> = history
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["message 2", "message 3", "message 4"]);
    for (entry, event) in history.iter().zip(&seen[1..]) {
        assert_eq!(entry["from"], ana_id);
        assert_eq!(entry["name"], "Ana");
        assert_eq!(entry["ts"], event["ts"], "same timestamp as the live event");
        let mut fields: Vec<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, ["from", "name", "text", "ts"]);
    }

    // Ben's own message joins the history for the next one.
    let r = ben.request(json!({"type": "chat", "text": "hi Ana"})).await;
    assert_eq!(r["type"], "ok", "{r}");
    let (chen, joined_c) = Client::join(&server, "history", "Chen").await;
    let texts: Vec<&str> = joined_c["chat_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["message 3", "message 4", "hi Ana"]);

    // The history lives with the room: once everyone left, a new room starts empty.
    for mut c in [ana, ben, chen] {
        let r = c.request(json!({"type": "leave"})).await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    let (_dana, j) = Client::join(&server, "history", "Dana").await;
    assert_eq!(j["participants"], json!([]), "everyone left: a new room");
    assert_eq!(j["chat_history"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn chat_history_zero_keeps_nothing() {
    let mut config = Config::ephemeral();
    config.chat_history = 0;
    let server = TestServer::start_with(config).await;
    let (mut ana, _) = Client::join(&server, "no-history", "Ana").await;
    let r = ana.request(json!({"type": "chat", "text": "hello"})).await;
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(ana.recv_type("chat").await["text"], "hello");
    let (_ben, joined) = Client::join(&server, "no-history", "Ben").await;
    assert_eq!(joined["chat_history"], json!([]));
    server.stop().await;
}

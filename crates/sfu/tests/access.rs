//! Token-gated rooms and reconnect without refresh, over a real loopback WebSocket
//! (tokio-tungstenite as the client). Tokens are also made by an independent implementation:
//! a few lines of Python's standard library (hmac, hashlib, base64, json).

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Client, TestServer};
use serde_json::{Value, json};
use tympan_sfu::Config;
use tympan_sfu::config::Command as CliCommand;
use tympan_sfu::token::{Claims, TokenError, Verifier, authorize};

const KEY: &str = "APIkey1";
const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWS made by Python's standard library: `header` and `claims` as JSON, HMAC-SHA256 with
/// `secret`. None (and a message) when python3 is not installed.
fn python_token(header: &Value, claims: &Value, secret: &str) -> Option<String> {
    const SCRIPT: &str = r#"
import base64, hashlib, hmac, json, sys
def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
h = b64(json.dumps(json.loads(sys.argv[1])).encode())
c = b64(json.dumps(json.loads(sys.argv[2])).encode())
sig = hmac.new(sys.argv[3].encode(), (h + "." + c).encode(), hashlib.sha256).digest()
print(h + "." + c + "." + b64(sig))
"#;
    let out = match Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(header.to_string())
        .arg(claims.to_string())
        .arg(secret)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: python3 is not available ({e}): no independent tokens");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn gated_config() -> Config {
    let mut config = Config::ephemeral();
    config.access = Some(Verifier::new(KEY, SECRET));
    config
}

/// Every message the client got up to now (a ping with `id` marks the end).
async fn drain(c: &mut Client, id: u64) -> Vec<Value> {
    c.send_text(json!({"type": "ping", "id": id}).to_string())
        .await;
    let mut seen = Vec::new();
    loop {
        let m = c.recv().await;
        if m["type"] == "ok" && m["id"] == id {
            return seen;
        }
        assert_ne!(m["type"], "__closed");
        seen.push(m);
    }
}

fn flicker(events: &[Value], id: &Value) -> Vec<Value> {
    events
        .iter()
        .filter(|m| {
            (m["type"] == "participant_left" && m["participant_id"] == *id)
                || (m["type"] == "participant_joined" && m["participant"]["id"] == *id)
        })
        .cloned()
        .collect()
}

fn assert_error(reply: &Value, code: &str) -> String {
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], code, "{reply}");
    reply["message"].as_str().unwrap().to_string()
}

#[test]
fn tokens_from_python_verify_and_bad_ones_are_refused_with_the_reason() {
    let v = Verifier::new(KEY, SECRET);
    let t = now();
    let claims = json!({"iss": KEY, "sub": "user-7", "name": "Ana", "room": "demo",
        "can_publish": false, "exp": t + 60, "nbf": t - 5});
    let Some(token) = python_token(&hs256(), &claims, SECRET) else {
        return;
    };
    let got = v
        .verify_for_room(&token, "demo", t)
        .expect("python's token verifies");
    assert_eq!(got.sub, "user-7");
    assert_eq!(got.name.as_deref(), Some("Ana"));
    assert!(!got.can_publish);
    assert!(got.can_subscribe, "absent can_subscribe defaults to true");
    assert_eq!(got.exp, t + 60);
    // Our own signature of the same claims verifies too (header order may differ).
    let ours = v.sign(&got);
    assert_eq!(v.verify(&ours, t), Ok(got.clone()));

    // Wrong room: forbidden.
    assert_eq!(
        v.verify_for_room(&token, "other", t),
        Err(TokenError::WrongRoom)
    );
    assert_eq!(TokenError::WrongRoom.code(), "forbidden");
    // Expired (exp is exclusive), not yet valid.
    assert!(matches!(
        v.verify(&token, t + 60),
        Err(TokenError::Expired { .. })
    ));
    assert!(matches!(
        v.verify(&token, t - 6),
        Err(TokenError::NotYetValid { .. })
    ));
    // Signed with another secret.
    let other = python_token(&hs256(), &claims, "another secret").unwrap();
    assert_eq!(v.verify(&other, t), Err(TokenError::BadSignature));
    // Another API key (iss).
    let mut foreign = claims.clone();
    foreign["iss"] = json!("APIother");
    let foreign = python_token(&hs256(), &foreign, SECRET).unwrap();
    assert_eq!(v.verify(&foreign, t), Err(TokenError::WrongIssuer));
    // alg none (empty signature) and other algorithms.
    let parts: Vec<&str> = token.split('.').collect();
    let none_header = tympan_sfu::token::encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert_eq!(
        v.verify(&unsigned, t),
        Err(TokenError::UnsupportedAlgorithm("none".into()))
    );
    let hs512 = python_token(&json!({"alg": "HS512"}), &claims, SECRET).unwrap();
    assert!(matches!(
        v.verify(&hs512, t),
        Err(TokenError::UnsupportedAlgorithm(a)) if a == "HS512"
    ));
    let crit = python_token(&json!({"alg": "HS256", "crit": ["exp"]}), &claims, SECRET).unwrap();
    assert_eq!(v.verify(&crit, t), Err(TokenError::CriticalHeader));
    // Tampered claims (room changed, signature kept).
    let mut tampered_claims = claims.clone();
    tampered_claims["room"] = json!("other");
    let tampered_body = tympan_sfu::token::encode(tampered_claims.to_string().as_bytes());
    let tampered = format!("{}.{tampered_body}.{}", parts[0], parts[2]);
    assert_eq!(v.verify(&tampered, t), Err(TokenError::BadSignature));
    // A flipped signature character.
    let mut sig = parts[2].to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, flipped);
    let bad_sig = format!("{}.{}.{sig}", parts[0], parts[1]);
    assert_eq!(v.verify(&bad_sig, t), Err(TokenError::BadSignature));
    // Structure.
    assert_eq!(v.verify("a.b", t), Err(TokenError::NotThreeParts));
    assert_eq!(v.verify("a.b.c.d", t), Err(TokenError::NotThreeParts));
    assert!(matches!(
        v.verify(&format!("{}=.{}.{}", parts[0], parts[1], parts[2]), t),
        Err(TokenError::BadBase64 { .. })
    ));
    assert_eq!(v.verify(&"x".repeat(5000), t), Err(TokenError::TooLong));
    // Missing required claims: exp.
    let no_exp = python_token(
        &hs256(),
        &json!({"iss": KEY, "sub": "u", "room": "demo"}),
        SECRET,
    )
    .unwrap();
    assert!(matches!(
        v.verify(&no_exp, t),
        Err(TokenError::BadJson { .. })
    ));
    // The one check of every entry point.
    assert_eq!(authorize(None, None, "demo", t), Ok(None), "open mode");
    assert_eq!(
        authorize(Some(&v), None, "demo", t),
        Err(TokenError::Missing)
    );
    assert_eq!(
        authorize(Some(&v), Some(&token), "demo", t).map(|c| c.map(|c| c.sub)),
        Ok(Some("user-7".into()))
    );
}

#[test]
fn token_subcommand_mints_tokens_the_server_accepts() {
    let args = [
        "sfu",
        "--api-key",
        KEY,
        "--api-secret",
        SECRET,
        "token",
        "--room",
        "r1",
        "--identity",
        "id-9",
        "--name",
        "Zoe",
        "--ttl",
        "120",
        "--no-subscribe",
    ];
    let CliCommand::MintToken { config, request } = Config::command_from_args(args).unwrap() else {
        panic!("token subcommand expected");
    };
    let verifier = config.access.expect("gated");
    let t = now();
    let token = verifier.sign(&request.claims(verifier.api_key(), t));
    let claims = Verifier::new(KEY, SECRET)
        .verify_for_room(&token, "r1", t)
        .expect("valid");
    assert_eq!(
        claims,
        Claims {
            iss: KEY.into(),
            sub: "id-9".into(),
            name: Some("Zoe".into()),
            room: "r1".into(),
            can_publish: true,
            can_subscribe: false,
            exp: t + 120,
            nbf: None,
        }
    );
    // Python's hmac agrees with our signature (the independent check of `sign`).
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value =
        serde_json::from_slice(&tympan_sfu::token::decode(parts[0]).unwrap()).unwrap();
    let body: Value =
        serde_json::from_slice(&tympan_sfu::token::decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header, hs256());
    if let Some(py) = python_token(&header, &body, SECRET) {
        let py_sig = py.rsplit('.').next().unwrap();
        // Python re-serialises the JSON, so compare signatures over Python's own parts.
        assert!(Verifier::new(KEY, SECRET).verify(&py, t).is_ok());
        assert_eq!(py_sig.len(), parts[2].len());
    }
    // The plain command line still serves; only one of key/secret is an error.
    assert!(matches!(
        Config::command_from_args(["sfu"]),
        Ok(CliCommand::Serve(_))
    ));
    assert!(Config::command_from_args(["sfu", "--api-key", "k"]).is_err());
    assert!(
        Config::command_from_args(["sfu", "token", "--room", "r", "--identity", "i"]).is_err(),
        "token without key/secret"
    );
}

#[tokio::test]
async fn gated_server_refuses_missing_and_bad_tokens_without_leaking_the_room() {
    let server = TestServer::start_with(gated_config()).await;
    let t = now();
    let room = "secret-room";
    let good = Verifier::new(KEY, SECRET)
        .sign(&Claims::new(KEY, "ana-id", room, t + 300).with_name("Ana from token"));
    // Someone is in the room.
    let mut ana = Client::connect(&server).await;
    let joined = ana
        .request(json!({"type": "join", "version": 1, "room": room, "name": "x", "token": good}))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["identity"], "ana-id");
    assert_eq!(joined["can_publish"], true);
    assert_eq!(joined["can_subscribe"], true);
    assert_eq!(joined["resumed"], false);

    let mut eve = Client::connect(&server).await;
    let wrong_secret =
        Verifier::new(KEY, "not the secret").sign(&Claims::new(KEY, "e", room, t + 300));
    let expired = Verifier::new(KEY, SECRET).sign(&Claims::new(KEY, "e", room, t - 1));
    let other_room = Verifier::new(KEY, SECRET).sign(&Claims::new(KEY, "e", "lobby", t + 300));
    let cases: [(Option<&str>, &str, &str); 5] = [
        (None, "unauthorized", "needs an access token"),
        (Some("garbage"), "unauthorized", "three"),
        (Some(&wrong_secret), "unauthorized", "signature"),
        (Some(&expired), "unauthorized", "expired"),
        (Some(&other_room), "forbidden", "room"),
    ];
    for (token, code, says) in cases {
        let mut req = json!({"type": "join", "version": 1, "room": room, "name": "Eve"});
        if let Some(tok) = token {
            req["token"] = json!(tok);
        }
        let reply = eve.request(req).await;
        let message = assert_error(&reply, code);
        assert!(message.contains(says), "{message}");
        // Nothing about the room: not its name, not who is in it.
        assert!(!message.contains(room), "{message}");
        assert!(!message.contains("Ana"), "{message}");
        assert!(reply.get("participants").is_none(), "{reply}");
    }
    // Refused joins left no trace: Ana saw no one come.
    ana.assert_alive().await;
    let r = eve.request(json!({"type": "chat", "text": "hi"})).await;
    assert_error(&r, "not_joined");

    // A listener token: the name comes from the token, the grants are reported.
    let listener = Verifier::new(KEY, SECRET).sign(&{
        let mut c = Claims::new(KEY, "bob-id", room, t + 300).with_name("Bob");
        c.can_publish = false;
        c
    });
    let joined = eve
        .request(
            json!({"type": "join", "version": 1, "room": room, "name": "Eve", "token": listener}),
        )
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["identity"], "bob-id");
    assert_eq!(joined["can_publish"], false);
    assert_eq!(joined["participants"][0]["name"], "Ana from token");
    let seen = ana.recv_type("participant_joined").await;
    assert_eq!(seen["participant"]["name"], "Bob");
    server.stop().await;
}

#[tokio::test]
async fn open_mode_ignores_tokens_and_gives_resume_tokens() {
    let server = TestServer::start().await;
    let mut c = Client::connect(&server).await;
    let joined = c
        .request(json!({"type": "join", "version": 1, "room": "open", "name": "Ana", "token": "whatever"}))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["identity"], Value::Null);
    assert_eq!(joined["resumed"], false);
    let token = joined["resume_token"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    // An unknown resume token: resume_failed, and the socket may join afresh.
    let mut d = Client::connect(&server).await;
    let r = d
        .request(json!({"type": "join", "version": 1, "room": "open", "name": "Ben", "resume": "00112233445566778899aabbccddeeff"}))
        .await;
    assert_error(&r, "resume_failed");
    let again = d
        .request(json!({"type": "join", "version": 1, "room": "open", "name": "Ben"}))
        .await;
    assert_eq!(again["type"], "joined", "{again}");
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_socket_resumes_within_the_grace_period_and_expires_after_it() {
    let mut config = Config::ephemeral();
    config.resume_grace = Duration::from_secs(2);
    let server = TestServer::start_with(config).await;
    let (mut ben, _) = Client::join(&server, "r", "Ben").await;
    let (ana, joined) = Client::join(&server, "r", "Ana").await;
    let ana_id = joined["participant_id"].clone();
    let _ = ben.recv_type("participant_joined").await;
    let token = joined["resume_token"].as_str().unwrap().to_string();

    // Ana's socket vanishes; she comes back on a new one within the grace period.
    ana.vanish();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut ana = Client::connect(&server).await;
    let back = ana
        .request(json!({"type": "join", "version": 1, "room": "r", "name": "Ana", "resume": token}))
        .await;
    assert_eq!(back["type"], "joined", "{back}");
    assert_eq!(back["resumed"], true);
    assert_eq!(back["participant_id"], ana_id, "same participant id");
    assert_eq!(back["participants"][0]["name"], "Ben");
    let token2 = back["resume_token"].as_str().unwrap().to_string();
    assert_ne!(token2, token);
    // Past the first grace period: she is still in, and Ben saw nothing.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let r = ana
        .request(json!({"type": "chat", "text": "still here"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let seen = drain(&mut ben, 9001).await;
    assert_eq!(flicker(&seen, &ana_id), Vec::<Value>::new(), "{seen:?}");
    assert!(
        seen.iter()
            .any(|m| m["type"] == "chat" && m["from"] == ana_id)
    );

    // A second socket takes over while the first is still open: the first gets bye.
    let mut ana2 = Client::connect(&server).await;
    let back = ana2
        .request(
            json!({"type": "join", "version": 1, "room": "r", "name": "Ana", "resume": token2}),
        )
        .await;
    assert_eq!(back["resumed"], true, "{back}");
    let bye = ana.recv_type("bye").await;
    assert_eq!(bye["reason"], "disconnected");
    assert_eq!(ana.recv_type("__closed").await["type"], "__closed");
    let token3 = back["resume_token"].as_str().unwrap().to_string();
    // The old socket closing does not detach the participant now held by the new one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ana2.assert_alive().await;
    let r = ana2
        .request(json!({"type": "chat", "text": "taken over"}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    // No leave or join flicker reached Ben in all this.
    let seen = drain(&mut ben, 9002).await;
    assert_eq!(flicker(&seen, &ana_id), Vec::<Value>::new(), "{seen:?}");
    assert!(
        seen.iter()
            .any(|m| m["type"] == "chat" && m["text"] == "taken over")
    );
    let (mut carl, _) = Client::join(&server, "r", "Carl").await;

    // Now she vanishes for good: after the grace period Ben and Carl are told.
    ana2.vanish();
    let left = ben.recv_type("participant_left").await;
    assert_eq!(left["participant_id"], ana_id);
    assert_eq!(left["reason"], "disconnected");
    assert_eq!(
        carl.recv_type("participant_left").await["participant_id"],
        ana_id
    );
    let mut late = Client::connect(&server).await;
    let r = late
        .request(
            json!({"type": "join", "version": 1, "room": "r", "name": "Ana", "resume": token3}),
        )
        .await;
    assert_error(&r, "resume_failed");
    server.stop().await;
}

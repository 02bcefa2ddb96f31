//! Shared helpers for the sfu integration tests: an in-process server on loopback port 0
//! and a WebSocket client speaking the documented JSON (tokio-tungstenite, not our code).
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tympan_sfu::{Config, LocalAddrs, Server};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addrs: LocalAddrs,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tympan_sfu::ServerError>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Config::ephemeral()).await
    }

    pub async fn start_with(config: Config) -> Self {
        // `TYMPAN_TEST_LOG=debug cargo test ...` shows the server's logs.
        if let Ok(filter) = std::env::var("TYMPAN_TEST_LOG") {
            let _ = tympan_sfu::init_logging(&filter);
        }
        let server = Server::bind(config).await.expect("bind");
        let addrs = server.local_addrs();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addrs,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addrs.http)
    }

    /// Stops the server and waits for it (clean shutdown must complete in time).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server result");
        }
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Messages received while waiting for something else.
    backlog: VecDeque<Value>,
    next_id: u64,
    pub welcome: Value,
}

impl Client {
    /// Connects and reads the `welcome`.
    pub async fn connect(server: &TestServer) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
            .await
            .expect("websocket connect");
        let mut c = Client {
            ws,
            backlog: VecDeque::new(),
            next_id: 1,
            welcome: Value::Null,
        };
        c.welcome = c.recv().await;
        assert_eq!(c.welcome["type"], "welcome", "first message: {}", c.welcome);
        c
    }

    /// Connects, joins, returns the client and the `joined` reply.
    pub async fn join(server: &TestServer, room: &str, name: &str) -> (Client, Value) {
        let mut c = Client::connect(server).await;
        let joined = c
            .request(json!({"type": "join", "version": 1, "room": room, "name": name}))
            .await;
        assert_eq!(joined["type"], "joined", "{joined}");
        (c, joined)
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .expect("send");
    }

    pub async fn send_binary(&mut self, data: Vec<u8>) {
        self.ws
            .send(Message::Binary(data.into()))
            .await
            .expect("send");
    }

    /// The next JSON message from the server (backlog first).
    pub async fn recv(&mut self) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        self.recv_wire().await
    }

    async fn recv_wire(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .expect("server message in time");
            let Some(Ok(frame)) = frame else {
                return json!({"type": "__closed", "frame": "end of stream"});
            };
            match frame {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("server JSON"),
                Message::Close(c) => return json!({"type": "__closed", "frame": format!("{c:?}")}),
                _ => continue,
            }
        }
    }

    /// Waits for a message of type `ty`, keeping the others for later.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        if let Some(pos) = self.backlog.iter().position(|m| m["type"] == ty) {
            return self.backlog.remove(pos).expect("position");
        }
        loop {
            let m = self.recv_wire().await;
            if m["type"] == ty {
                return m;
            }
            assert_ne!(m["type"], "__closed", "closed while waiting for {ty}");
            self.backlog.push_back(m);
        }
    }

    /// Sends `message` with a fresh id; returns the reply carrying that id.
    pub async fn request(&mut self, mut message: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        message["id"] = json!(id);
        self.send_text(message.to_string()).await;
        self.reply_to(id).await
    }

    /// Waits for the reply with this id, keeping events for later.
    pub async fn reply_to(&mut self, id: u64) -> Value {
        if let Some(pos) = self.backlog.iter().position(|m| m["id"] == id) {
            return self.backlog.remove(pos).expect("position");
        }
        loop {
            let m = self.recv_wire().await;
            if m["id"] == id {
                return m;
            }
            assert_ne!(m["type"], "__closed", "closed while waiting for reply {id}");
            self.backlog.push_back(m);
        }
    }

    /// Asserts the connection still works: a ping gets its `ok`.
    pub async fn assert_alive(&mut self) {
        let r = self.request(json!({"type": "ping"})).await;
        assert_eq!(r["type"], "ok", "{r}");
    }

    /// Drops the TCP connection without a close handshake.
    pub fn vanish(self) {
        drop(self.ws);
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A plain HTTP/1.1 GET; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect http");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("http reply in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

//! HTTP routes: the web room (embedded static files), `/ws`, `/healthz`, and (in
//! `metrics.rs`) `/api/rooms`, `/api/rooms/{room}` and `/metrics`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::protocol::MAX_FRAME_BYTES;
use crate::ws::{self, SocketContext};

/// The web room's files, embedded at build time from `crates/sfu/static/`.
const STATIC_FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../static/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../static/style.css"),
    ),
];

/// Frames above this kill the connection inside the WebSocket library; frames between
/// [`MAX_FRAME_BYTES`] and this get a `too_large` error and the connection survives.
const HARD_FRAME_LIMIT: usize = 16 * MAX_FRAME_BYTES;

pub(crate) fn router(ctx: SocketContext) -> Router {
    let whip = crate::whip::router(ctx.engine.clone(), ctx.access.clone());
    Router::new()
        .route("/", get(index))
        .route("/room/{name}", get(index))
        .route("/static/{file}", get(static_file))
        .route("/ws", get(websocket))
        .route("/healthz", get(healthz))
        .route("/api/rooms", get(crate::metrics::rooms))
        .route("/api/rooms/{room}", get(crate::metrics::room))
        .route("/metrics", get(crate::metrics::metrics))
        .with_state(ctx)
        .merge(whip)
}

fn file(name: &str) -> Response {
    match STATIC_FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

async fn index() -> Response {
    file("index.html")
}

async fn static_file(Path(name): Path<String>) -> Response {
    file(&name)
}

async fn websocket(
    upgrade: WebSocketUpgrade,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    State(ctx): State<SocketContext>,
) -> Response {
    upgrade
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| ws::serve(socket, remote, ctx))
}

/// 200 with a small JSON status while the engine answers, 503 when it does not.
async fn healthz(State(ctx): State<SocketContext>) -> Response {
    let status = ctx
        .engine
        .call(|core, _| {
            let rooms = core.engine.rooms().count();
            let participants: usize = core.engine.rooms().map(|r| r.participants).sum();
            let c = core.engine.counters();
            serde_json::json!({
                "status": "ok",
                "rooms": rooms,
                "participants": participants,
                "websockets": core.connected(),
                "datagrams_in": c.datagrams_in,
                "rtp_in": c.rtp_in,
                "rtp_forwarded": c.rtp_forwarded,
                "dropped": c.dropped,
            })
        })
        .await;
    match status {
        Ok(json) => (
            [(header::CONTENT_TYPE, "application/json")],
            json.to_string(),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "engine stopped\n").into_response(),
    }
}

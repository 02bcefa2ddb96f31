//! Observability over HTTP: `GET /metrics` (Prometheus text exposition format 0.0.4, written
//! by hand), `GET /api/rooms` and `GET /api/rooms/{room}` (JSON). Engine figures come from a
//! snapshot taken on the actor (the engine's owner) through its command channel; the
//! signalling error counts and the WebSocket gauge are atomics the socket tasks update.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tympan_rtc_engine::{
    DirectionStats, EngineCounters, ParticipantDetails, RoomDetails, RoomSummary, RoomTotals,
    Transport,
};
use tympan_sdp::MediaKind;

use crate::ws::SocketContext;

/// The `Content-Type` of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the `tympan_room_participants` histogram buckets (`+Inf` follows).
pub(crate) const ROOM_SIZE_BUCKETS: [u64; 7] = [1, 2, 5, 10, 20, 50, 100];

/// Every error code of `docs/signalling.md` (exported as 0 before the first one happens, so
/// that rates work from the start). Codes not listed here are counted too when they occur.
const ERROR_CODES: &[&str] = &[
    "bad_json",
    "bad_message",
    "unsupported_version",
    "not_joined",
    "already_joined",
    "bad_name",
    "room_full",
    "bad_sdp",
    "negotiation_failed",
    "glare",
    "stale_answer",
    "unknown_track",
    "too_large",
    "rate_limited",
    "internal",
    "unauthorized",
    "forbidden",
    "resume_failed",
];

/// Counters kept outside the engine, shared by every socket task.
#[derive(Debug)]
pub(crate) struct Metrics {
    websockets: AtomicI64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            websockets: AtomicI64::new(0),
            errors: Mutex::new(ERROR_CODES.iter().map(|c| ((*c).to_owned(), 0)).collect()),
        }
    }
}

/// Decrements the WebSocket gauge when dropped.
pub(crate) struct WebSocketGauge(Arc<Metrics>);

impl Drop for WebSocketGauge {
    fn drop(&mut self) {
        self.0.websockets.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one `error` reply with this code.
    pub(crate) fn signalling_error(&self, code: &str) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        match errors.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                errors.insert(code.to_owned(), 1);
            }
        }
    }

    /// A WebSocket opened: counted until the returned guard is dropped.
    pub(crate) fn websocket_opened(self: &Arc<Self>) -> WebSocketGauge {
        self.websockets.fetch_add(1, Ordering::Relaxed);
        WebSocketGauge(self.clone())
    }

    fn errors(&self) -> Vec<(String, u64)> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// What `/metrics` reports, taken on the actor in one go.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) counters: EngineCounters,
    pub(crate) rooms: Vec<RoomSummary>,
}

/// The engine counters as Prometheus counters: name (without `tympan_` and `_total`), help.
fn engine_counters(c: &EngineCounters) -> [(&'static str, &'static str, u64); 26] {
    [
        (
            "datagrams_in",
            "Datagrams received on the media sockets (UDP and ICE-TCP frames).",
            c.datagrams_in,
        ),
        (
            "bytes_in",
            "Bytes of the datagrams received on the media sockets.",
            c.bytes_in,
        ),
        (
            "datagrams_out",
            "Datagrams sent on the media sockets.",
            c.datagrams_out,
        ),
        (
            "bytes_out",
            "Bytes of the datagrams sent on the media sockets.",
            c.bytes_out,
        ),
        (
            "datagrams_dropped",
            "Datagrams that reached no peer (unknown ICE ufrag and 5-tuple).",
            c.dropped,
        ),
        (
            "datagrams_garbage",
            "Datagrams a peer dropped (unparseable, not for it, unknown stream, not connected).",
            c.garbage,
        ),
        (
            "srtp_failures",
            "Datagrams whose SRTP/SRTCP authentication or replay check failed.",
            c.srtp_failures,
        ),
        (
            "rtp_packets_in",
            "RTP packets received from publishers (RTX unwrapped included).",
            c.rtp_in,
        ),
        (
            "rtp_bytes_in",
            "Plaintext RTP bytes received from publishers.",
            c.rtp_bytes_in,
        ),
        (
            "rtp_packets_forwarded",
            "RTP packets forwarded to subscribers (one per subscriber).",
            c.rtp_forwarded,
        ),
        (
            "rtp_bytes_forwarded",
            "Plaintext RTP bytes forwarded to subscribers.",
            c.rtp_bytes_forwarded,
        ),
        (
            "rtp_packets_not_forwarded",
            "Packet copies not forwarded (no shared codec, waiting for a keyframe, subscriber not ready).",
            c.rtp_not_forwarded,
        ),
        ("rtcp_packets_in", "RTCP compounds received.", c.rtcp_in),
        (
            "rtcp_packets_out",
            "RTCP compounds sent (reports, NACK, PLI/FIR, transport-wide CC).",
            c.rtcp_out,
        ),
        (
            "nacks_received",
            "Packets subscribers asked to have retransmitted (NACKed sequence numbers).",
            c.nacks_received,
        ),
        (
            "nacks_sent",
            "Packets the server asked publishers to retransmit (NACKed sequence numbers).",
            c.nacks_sent,
        ),
        (
            "rtx_sent",
            "Retransmissions sent to subscribers in answer to NACKs.",
            c.rtx_sent,
        ),
        (
            "rtx_received",
            "RTX retransmissions received from publishers.",
            c.rtx_received,
        ),
        (
            "plis_received",
            "PLIs received from subscribers.",
            c.plis_received,
        ),
        (
            "firs_received",
            "FIRs received from subscribers.",
            c.firs_received,
        ),
        (
            "keyframe_requests_sent",
            "Keyframe requests (PLI/FIR) sent to publishers.",
            c.plis,
        ),
        (
            "keyframe_requests_throttled",
            "Keyframe requests held back by the 500 ms per-track throttle.",
            c.plis_throttled,
        ),
        (
            "data_messages_in",
            "Data channel messages received from participants.",
            c.data_messages_in,
        ),
        (
            "data_messages_out",
            "Data channel messages sent to participants.",
            c.data_messages_out,
        ),
        (
            "offers_sent",
            "Server SDP offers sent (renegotiations).",
            c.offers,
        ),
        (
            "media_timeouts",
            "Participants removed because their media path was lost.",
            c.timeouts,
        ),
    ]
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, newline).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text.
pub(crate) fn render(snapshot: &Snapshot, metrics: &Metrics) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let rooms = &snapshot.rooms;
    let participants: usize = rooms.iter().map(|r| r.participants).sum();
    let tracks: usize = rooms.iter().map(|r| r.tracks).sum();
    let viewers: usize = rooms.iter().map(|r| r.viewers).sum();
    for (name, help, value) in [
        ("tympan_rooms", "Rooms open now.", rooms.len()),
        (
            "tympan_participants",
            "Participants in rooms now.",
            participants,
        ),
        ("tympan_tracks", "Published tracks now.", tracks),
        (
            "tympan_whep_viewers",
            "WHEP viewers watching rooms now.",
            viewers,
        ),
    ] {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let websockets = metrics.websockets.load(Ordering::Relaxed).max(0);
    family(
        &mut out,
        "tympan_websocket_connections",
        "gauge",
        "Signalling WebSockets open now.",
    );
    let _ = writeln!(out, "tympan_websocket_connections {websockets}");
    for (name, help, value) in engine_counters(&snapshot.counters) {
        let name = format!("tympan_{name}_total");
        family(&mut out, &name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        &mut out,
        "tympan_signalling_errors_total",
        "counter",
        "Signalling error replies sent, by error code.",
    );
    for (code, n) in metrics.errors() {
        let code = label_value(&code);
        let _ = writeln!(out, "tympan_signalling_errors_total{{code=\"{code}\"}} {n}");
    }
    family(
        &mut out,
        "tympan_room_participants",
        "histogram",
        "Participants per room, over the rooms open now.",
    );
    for le in ROOM_SIZE_BUCKETS {
        let n = rooms.iter().filter(|r| r.participants as u64 <= le).count();
        let _ = writeln!(out, "tympan_room_participants_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "tympan_room_participants_bucket{{le=\"+Inf\"}} {}",
        rooms.len()
    );
    let _ = writeln!(out, "tympan_room_participants_sum {participants}");
    let _ = writeln!(out, "tympan_room_participants_count {}", rooms.len());
    out
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn engine_stopped() -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "unavailable", "message": "the engine is stopped"}),
    )
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(ctx): State<SocketContext>) -> Response {
    let snapshot = ctx
        .engine
        .call(|core, _| Snapshot {
            counters: core.engine.counters(),
            rooms: core.engine.rooms().collect(),
        })
        .await;
    match snapshot {
        Ok(s) => (
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            render(&s, &ctx.metrics),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "engine stopped\n").into_response(),
    }
}

fn totals_json(t: &RoomTotals) -> Value {
    json!({
        "participants": t.participants,
        "tracks": t.tracks,
        "packets_in": t.packets_in,
        "packets_out": t.packets_out,
        "bytes_in": t.bytes_in,
        "bytes_out": t.bytes_out,
        "bitrate_in_bps": t.bitrate_in_bps,
        "bitrate_out_bps": t.bitrate_out_bps,
    })
}

fn direction_json(d: &DirectionStats) -> Value {
    json!({
        "packets": d.packets,
        "bytes": d.bytes,
        "bitrate_bps": d.bitrate_bps,
        "packets_lost": d.packets_lost,
        "fraction_lost": d.fraction_lost,
        "jitter_ms": d.jitter_ms,
        "streams": d.streams,
    })
}

fn participant_json(p: &ParticipantDetails) -> Value {
    let tracks: Vec<Value> = p
        .tracks
        .iter()
        .map(|t| {
            json!({
                "id": t.id.to_string(),
                "kind": if t.kind == MediaKind::Audio { "audio" } else { "video" },
                "source": t.source.as_str(),
                "muted": t.muted,
            })
        })
        .collect();
    json!({
        "id": p.id.to_string(),
        "name": p.name,
        "connected": p.connected,
        "transport": p.transport.map(|t| match t {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }),
        "tracks": tracks,
        "rtt_ms": p.stats.rtt_ms,
        "inbound": direction_json(&p.stats.inbound),
        "outbound": direction_json(&p.stats.outbound),
    })
}

/// The JSON of `GET /api/rooms/{room}`.
pub(crate) fn room_json(r: &RoomDetails) -> Value {
    json!({
        "name": r.name,
        "participants": r.participants.iter().map(participant_json).collect::<Vec<_>>(),
        "totals": totals_json(&r.totals),
    })
}

/// `GET /api/rooms`: name, participants, tracks (as before) and the room totals.
pub(crate) async fn rooms(State(ctx): State<SocketContext>) -> Response {
    let rooms = ctx
        .engine
        .call(|core, _| {
            let names: Vec<RoomSummary> = core.engine.rooms().collect();
            names
                .into_iter()
                .map(|r| {
                    let totals = core
                        .engine
                        .room_details(&r.name)
                        .map(|d| totals_json(&d.totals));
                    json!({
                        "name": r.name,
                        "participants": r.participants,
                        "tracks": r.tracks,
                        "viewers": r.viewers,
                        "totals": totals,
                    })
                })
                .collect::<Vec<_>>()
        })
        .await;
    match rooms {
        Ok(list) => json_response(StatusCode::OK, &Value::Array(list)),
        Err(_) => engine_stopped(),
    }
}

/// `GET /api/rooms/{room}`: the room in detail, or 404 with a JSON error.
pub(crate) async fn room(Path(room): Path<String>, State(ctx): State<SocketContext>) -> Response {
    let name = room.clone();
    let details = ctx
        .engine
        .call(move |core, _| core.engine.room_details(&name))
        .await;
    match details {
        Ok(Some(d)) => json_response(StatusCode::OK, &room_json(&d)),
        Ok(None) => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "message": format!("no room named {room:?}")}),
        ),
        Err(_) => engine_stopped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str, participants: usize) -> RoomSummary {
        RoomSummary {
            name: name.into(),
            participants,
            tracks: participants * 2,
            viewers: 0,
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_counted() {
        let metrics = Metrics::default();
        metrics.signalling_error("bad_json");
        metrics.signalling_error("bad_json");
        metrics.signalling_error("something \"new\"");
        let snapshot = Snapshot {
            counters: EngineCounters {
                rtp_in: 42,
                ..EngineCounters::default()
            },
            rooms: vec![room("a", 1), room("b", 3), room("c", 3), room("d", 150)],
        };
        let text = render(&snapshot, &metrics);
        for line in [
            "tympan_rooms 4",
            "tympan_participants 157",
            "tympan_tracks 314",
            "tympan_rtp_packets_in_total 42",
            "tympan_signalling_errors_total{code=\"bad_json\"} 2",
            "tympan_signalling_errors_total{code=\"room_full\"} 0",
            "tympan_signalling_errors_total{code=\"something \\\"new\\\"\"} 1",
            "tympan_room_participants_bucket{le=\"1\"} 1",
            "tympan_room_participants_bucket{le=\"2\"} 1",
            "tympan_room_participants_bucket{le=\"5\"} 3",
            "tympan_room_participants_bucket{le=\"100\"} 3",
            "tympan_room_participants_bucket{le=\"+Inf\"} 4",
            "tympan_room_participants_sum 157",
            "tympan_room_participants_count 4",
            "# TYPE tympan_room_participants histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn websocket_gauge_follows_the_guards() {
        let metrics = Arc::new(Metrics::default());
        let a = metrics.websocket_opened();
        let b = metrics.websocket_opened();
        drop(a);
        assert_eq!(metrics.websockets.load(Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(metrics.websockets.load(Ordering::Relaxed), 0);
    }
}

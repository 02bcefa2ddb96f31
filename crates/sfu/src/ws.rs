//! One task per WebSocket: speaks the JSON protocol (`docs/signalling.md`), enforces the
//! frame-size and rate limits, turns requests into engine calls and engine notices into
//! events.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, field, info, info_span};
use tympan_rtc_engine::{
    LeaveReason, Notice, ParticipantId, ParticipantInfo, SignalError, TrackAnnouncement, TrackId,
    TrackInfo, TrackSource,
};
use tympan_sdp::MediaKind;

use crate::actor::{ActorGone, EngineHandle};
use crate::protocol::{AudioSlotJson, Level, SpeakerJson};
use crate::protocol::{
    ChatEntryJson, ClientMessage, Kind, MAX_FRAME_BYTES, OfferedTrackJson, PROTOCOL_VERSION,
    ParticipantJson, ProtocolError, PublishedTrackJson, Request, ServerMessage, Source,
    TokenBucket, TrackJson, parse_client_message,
};

/// Messages per second allowed on one socket.
pub(crate) const RATE_PER_SECOND: f64 = 50.0;
/// Burst allowed above the rate.
pub(crate) const RATE_BURST: f64 = 100.0;

/// Shared by every socket task.
#[derive(Clone)]
pub(crate) struct SocketContext {
    pub(crate) engine: EngineHandle,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Dropped when the task ends: the server waits for all of them at shutdown.
    #[allow(dead_code)] // held, never read: its drop is the signal
    pub(crate) alive: mpsc::Sender<()>,
    /// Signalling error counts and the WebSocket gauge (`/metrics`).
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Token-gated mode (`None`: open rooms).
    pub(crate) access: Option<std::sync::Arc<crate::token::Verifier>>,
}

/// What to do after handling one frame.
enum Flow {
    Continue,
    /// The socket is done (after `leave`); close it.
    Close,
}

struct Session {
    socket: WebSocket,
    ctx: SocketContext,
    me: Option<ParticipantId>,
    notice_tx: mpsc::UnboundedSender<Notice>,
    bucket: TokenBucket,
}

/// Serves one upgraded WebSocket until it closes.
pub(crate) async fn serve(socket: WebSocket, remote: SocketAddr, ctx: SocketContext) {
    let span = info_span!("ws", %remote, room = field::Empty, participant = field::Empty);
    run(socket, ctx).instrument(span).await;
}

async fn run(socket: WebSocket, ctx: SocketContext) {
    let (notice_tx, mut notice_rx) = mpsc::unbounded_channel();
    let mut shutdown = ctx.shutdown.clone();
    let _open = ctx.metrics.websocket_opened();
    let mut s = Session {
        socket,
        ctx,
        me: None,
        notice_tx,
        bucket: TokenBucket::new(RATE_PER_SECOND, RATE_BURST, Instant::now()),
    };
    debug!("websocket opened");
    let welcome = ServerMessage::Welcome {
        version: PROTOCOL_VERSION,
        server: concat!("tympan/", env!("CARGO_PKG_VERSION")).to_string(),
    };
    if !s.send(&welcome).await {
        return;
    }
    // Whether the engine already knows we are gone (left, removed, or server shutdown).
    let mut engine_done = false;
    loop {
        tokio::select! {
            frame = s.socket.recv() => {
                let Some(Ok(frame)) = frame else { break };
                match frame {
                    Message::Text(text) => {
                        match s.on_text(text.as_str()).await {
                            Flow::Continue => {}
                            Flow::Close => {
                                engine_done = true;
                                s.close("left").await;
                                break;
                            }
                        }
                    }
                    Message::Binary(_) => {
                        if !s.take_token().await {
                            continue;
                        }
                        let e = ServerMessage::error(None, "bad_json", "binary frames are not used: send JSON text frames");
                        if !s.send(&e).await { break; }
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            Some(notice) = notice_rx.recv() => {
                if let Notice::Removed { reason } = &notice {
                    info!(%reason, "removed by the server");
                    engine_done = true;
                    let reason = reason.as_str();
                    let _ = s.send(&ServerMessage::Bye { reason: reason.to_string() }).await;
                    s.close(reason).await;
                    break;
                }
                if !s.send(&notice_to_message(notice)).await { break; }
            }
            () = wait_shutdown(&mut shutdown) => {
                engine_done = true;
                let _ = s.send(&ServerMessage::Bye { reason: "shutdown".into() }).await;
                s.close("shutdown").await;
                break;
            }
        }
    }
    if let (Some(me), false) = (s.me, engine_done) {
        // Not a `leave`: keep the participant for the resume grace period (unless another
        // socket has resumed it already).
        info!("websocket closed; participant detached for a resume");
        let tx = s.notice_tx.clone();
        s.ctx.engine.cast(move |core, now| {
            if core.routes_to(me, &tx) {
                core.unregister(me);
                core.engine.detach(now, me);
            }
        });
    } else {
        debug!("websocket closed");
    }
}

/// Resolves once the server shuts down (or is gone).
async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

impl Session {
    /// Sends one message; false when the socket is gone.
    async fn send(&mut self, message: &ServerMessage) -> bool {
        if let ServerMessage::Error { code, .. } = message {
            self.ctx.metrics.signalling_error(code);
        }
        self.socket
            .send(Message::Text(message.to_json().into()))
            .await
            .is_ok()
    }

    async fn close(&mut self, reason: &str) {
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: reason.to_string().into(),
            })))
            .await;
    }

    /// Rate limit: false (and a `rate_limited` error sent) when the bucket is empty.
    async fn take_token(&mut self) -> bool {
        if self.bucket.try_take(Instant::now()) {
            return true;
        }
        let e = ServerMessage::error(
            None,
            "rate_limited",
            format!(
                "more than {RATE_PER_SECOND} messages per second (burst {RATE_BURST}): message dropped"
            ),
        );
        let _ = self.send(&e).await;
        false
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        if !self.take_token().await {
            return Flow::Continue;
        }
        if text.len() > MAX_FRAME_BYTES {
            let e = ServerMessage::error(
                None,
                "too_large",
                format!(
                    "frame of {} bytes exceeds the limit of {MAX_FRAME_BYTES}",
                    text.len()
                ),
            );
            self.send(&e).await;
            return Flow::Continue;
        }
        let message = match parse_client_message(text) {
            Ok(m) => m,
            Err(ProtocolError::BadJson(m)) => {
                self.send(&ServerMessage::error(None, "bad_json", m)).await;
                return Flow::Continue;
            }
            Err(ProtocolError::BadMessage { id, message }) => {
                self.send(&ServerMessage::error(id, "bad_message", message))
                    .await;
                return Flow::Continue;
            }
        };
        let ClientMessage { id, request } = message;
        let kind = request.type_name();
        let (reply, flow) = self.on_request(id, request).await;
        if let ServerMessage::Error { code, message, .. } = &reply {
            debug!(request = kind, code, message, "request refused");
        }
        self.send(&reply).await;
        flow
    }

    async fn on_request(&mut self, id: Option<u64>, request: Request) -> (ServerMessage, Flow) {
        let ok = ServerMessage::Ok { id };
        let me = match (&request, self.me) {
            (Request::Ping, _) => return (ok, Flow::Continue),
            (Request::Join { .. }, Some(me)) => {
                return (
                    ServerMessage::error(
                        id,
                        "already_joined",
                        format!("this socket already joined as {me}"),
                    ),
                    Flow::Continue,
                );
            }
            (Request::Join { .. }, None) => None,
            (_, None) => {
                return (
                    ServerMessage::error(id, "not_joined", "send join first"),
                    Flow::Continue,
                );
            }
            (_, Some(me)) => Some(me),
        };
        let result = match (request, me) {
            (
                Request::Join {
                    version,
                    room,
                    name,
                    token,
                    resume,
                },
                _,
            ) => {
                let reply = match resume {
                    Some(resume) if version == PROTOCOL_VERSION => self.resume(id, resume).await,
                    _ => self.join(id, version, room, name, token).await,
                };
                return (reply, Flow::Continue);
            }
            (Request::Offer { sdp, tracks }, Some(me)) => {
                let mut announced = Vec::with_capacity(tracks.len());
                for t in tracks {
                    announced.push(TrackAnnouncement {
                        mid: t.mid,
                        kind: match t.kind {
                            Kind::Audio => MediaKind::Audio,
                            Kind::Video => MediaKind::Video,
                        },
                        source: match t.source {
                            Source::Microphone => TrackSource::Microphone,
                            Source::Camera => TrackSource::Camera,
                            Source::Screen => TrackSource::Screen,
                            Source::Other => TrackSource::Other,
                        },
                        muted: t.muted,
                    });
                }
                self.ctx
                    .engine
                    .call(move |core, now| {
                        let sdp = core.engine.handle_offer(now, me, &sdp, &announced)?;
                        let tracks = core
                            .engine
                            .published_tracks(me)
                            .into_iter()
                            .map(|t| PublishedTrackJson {
                                mid: t.mid,
                                track_id: t.track.id.to_string(),
                            })
                            .collect();
                        Ok(ServerMessage::Answer { id, sdp, tracks })
                    })
                    .await
            }
            (Request::Answer { negotiation, sdp }, Some(me)) => self
                .ctx
                .engine
                .call(move |core, now| core.engine.handle_answer(now, me, negotiation, &sdp))
                .await
                .map(|r| r.map(|()| ServerMessage::Ok { id })),
            (Request::Candidate { candidate, .. }, Some(me)) => self
                .ctx
                .engine
                .call(move |core, _| {
                    let c = candidate.as_deref().filter(|c| !c.trim().is_empty());
                    core.engine.add_remote_candidate(me, c)
                })
                .await
                .map(|r| r.map(|()| ServerMessage::Ok { id })),
            (Request::Mute { track, muted }, Some(me)) => {
                let Ok(track) = TrackId::from_str(&track) else {
                    return (
                        ServerMessage::error(
                            id,
                            "unknown_track",
                            format!("`{track}` is not a track id"),
                        ),
                        Flow::Continue,
                    );
                };
                self.ctx
                    .engine
                    .call(move |core, now| core.engine.set_muted(now, me, track, muted))
                    .await
                    .map(|r| r.map(|()| ServerMessage::Ok { id }))
            }
            (Request::Chat { text }, Some(me)) => self
                .ctx
                .engine
                .call(move |core, now| core.engine.chat(now, me, &text, now_ms()))
                .await
                .map(|r| r.map(|()| ServerMessage::Ok { id })),
            (Request::Leave, Some(me)) => {
                info!("leaving");
                let _ = self
                    .ctx
                    .engine
                    .call(move |core, now| {
                        core.unregister(me);
                        core.engine.leave(now, me, LeaveReason::Left);
                    })
                    .await;
                self.me = None;
                return (ok, Flow::Close);
            }
            // Unreachable: requests without a participant returned above.
            (_, None) => Ok(Err(SignalError {
                code: tympan_rtc_engine::ErrorCode::NotJoined,
                message: "send join first".into(),
            })),
            (Request::Ping, Some(_)) => Ok(Ok(ok)),
        };
        (reply_of(id, result), Flow::Continue)
    }

    async fn join(
        &mut self,
        id: Option<u64>,
        version: u64,
        room: String,
        name: String,
        token: Option<String>,
    ) -> ServerMessage {
        if version != PROTOCOL_VERSION {
            return ServerMessage::error(
                id,
                "unsupported_version",
                format!("this server speaks version {PROTOCOL_VERSION}, not {version}"),
            );
        }
        let (name, options) = match crate::token::check_join(
            self.ctx.access.as_deref(),
            token.as_deref(),
            &room,
            name,
            unix_now(),
        ) {
            Ok(granted) => granted,
            Err(e) => {
                info!(code = e.code(), error = %e, "join refused");
                return ServerMessage::error(id, e.code(), e.to_string());
            }
        };
        let tx = self.notice_tx.clone();
        let span = tracing::Span::current();
        let result = self
            .ctx
            .engine
            .call(move |core, now| {
                let joined = core.engine.join_with(now, &room, &name, options);
                if let Ok(j) = &joined {
                    core.register(j.participant, tx);
                }
                joined
            })
            .await;
        match result {
            Ok(Ok(joined)) => {
                self.me = Some(joined.participant);
                span.record("room", field::display(&joined.room));
                span.record("participant", field::display(joined.participant));
                info!(others = joined.participants.len(), "joined");
                joined_message(id, joined, false)
            }
            other => reply_of(id, other.map(|r| r.map(|_| ServerMessage::Ok { id }))),
        }
    }

    /// `join {resume}`: take an earlier participant over (see `Engine::resume`).
    async fn resume(&mut self, id: Option<u64>, resume: String) -> ServerMessage {
        let tx = self.notice_tx.clone();
        let span = tracing::Span::current();
        let result = self
            .ctx
            .engine
            .call(move |core, now| {
                let joined = core.engine.resume(now, &resume);
                if let Ok(j) = &joined
                    && let Some(old) = core.register(j.participant, tx)
                {
                    // An older socket still held it: tell that one to go away.
                    let _ = old.send(Notice::Removed {
                        reason: LeaveReason::Disconnected,
                    });
                }
                joined
            })
            .await;
        match result {
            Ok(Ok(joined)) => {
                self.me = Some(joined.participant);
                span.record("room", field::display(&joined.room));
                span.record("participant", field::display(joined.participant));
                info!(others = joined.participants.len(), "resumed");
                joined_message(id, joined, true)
            }
            other => reply_of(id, other.map(|r| r.map(|_| ServerMessage::Ok { id }))),
        }
    }
}

fn joined_message(
    id: Option<u64>,
    joined: tympan_rtc_engine::Joined,
    resumed: bool,
) -> ServerMessage {
    ServerMessage::Joined {
        id,
        participant_id: joined.participant.to_string(),
        room: joined.room,
        participants: joined.participants.iter().map(participant_json).collect(),
        chat_history: joined
            .chat_history
            .into_iter()
            .map(|c| ChatEntryJson {
                from: c.from.to_string(),
                name: c.name,
                text: c.text,
                ts: c.timestamp_ms,
            })
            .collect(),
        resume_token: joined.resume_token,
        resumed,
        identity: joined.identity,
        can_publish: joined.can_publish,
        can_subscribe: joined.can_subscribe,
    }
}

/// Seconds since the Unix epoch (token `exp`/`nbf`).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn reply_of(
    id: Option<u64>,
    result: Result<Result<ServerMessage, SignalError>, ActorGone>,
) -> ServerMessage {
    match result {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => ServerMessage::error(id, e.code.as_str(), e.message),
        Err(ActorGone) => ServerMessage::error(id, "internal", "the server is shutting down"),
    }
}

fn track_json(t: &TrackInfo) -> TrackJson {
    TrackJson {
        id: t.id.to_string(),
        kind: match t.kind {
            MediaKind::Audio => Kind::Audio,
            _ => Kind::Video,
        },
        source: match t.source {
            TrackSource::Microphone => Source::Microphone,
            TrackSource::Camera => Source::Camera,
            TrackSource::Screen => Source::Screen,
            TrackSource::Other => Source::Other,
        },
        muted: t.muted,
    }
}

fn participant_json(p: &ParticipantInfo) -> ParticipantJson {
    ParticipantJson {
        id: p.id.to_string(),
        name: p.name.clone(),
        tracks: p.tracks.iter().map(track_json).collect(),
    }
}

/// The wall clock for chat `ts`, in ms since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn notice_to_message(notice: Notice) -> ServerMessage {
    match notice {
        Notice::ParticipantJoined(p) => ServerMessage::ParticipantJoined {
            participant: participant_json(&p),
        },
        Notice::ParticipantLeft {
            participant,
            reason,
        } => ServerMessage::ParticipantLeft {
            participant_id: participant.to_string(),
            reason: reason.as_str().to_string(),
        },
        Notice::ParticipantUpdated(p) => ServerMessage::ParticipantUpdated {
            participant: participant_json(&p),
        },
        Notice::TrackPublished { participant, track } => ServerMessage::TrackPublished {
            participant_id: participant.to_string(),
            track: track_json(&track),
        },
        Notice::TrackUnpublished { participant, track } => ServerMessage::TrackUnpublished {
            participant_id: participant.to_string(),
            track_id: track.to_string(),
        },
        Notice::Offer {
            negotiation,
            sdp,
            tracks,
        } => ServerMessage::Offer {
            negotiation,
            sdp,
            tracks: tracks
                .into_iter()
                .map(|t| OfferedTrackJson {
                    mid: t.mid,
                    slot: t.slot,
                    participant_id: t.slot.is_none().then(|| t.participant.to_string()),
                    track_id: t.slot.is_none().then(|| t.track.to_string()),
                })
                .collect(),
        },
        Notice::Speaking {
            participant,
            speaking,
        } => ServerMessage::Speaking {
            participant_id: participant.to_string(),
            speaking,
        },
        Notice::ActiveSpeakers(list) => ServerMessage::ActiveSpeakers {
            speakers: list
                .into_iter()
                .map(|(p, level)| SpeakerJson {
                    participant_id: p.to_string(),
                    level: Level::from_f32(level),
                })
                .collect(),
        },
        Notice::AudioSlots(slots) => ServerMessage::AudioSlots {
            slots: slots
                .into_iter()
                .map(|(slot, p)| AudioSlotJson {
                    slot,
                    participant_id: p.map(|p| p.to_string()),
                })
                .collect(),
        },
        Notice::Chat {
            from,
            name,
            text,
            timestamp_ms,
        } => ServerMessage::Chat {
            from: from.to_string(),
            name,
            text,
            ts: timestamp_ms,
        },
        Notice::Removed { reason } => ServerMessage::Bye {
            reason: reason.as_str().to_string(),
        },
    }
}

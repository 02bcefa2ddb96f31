//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) over HTTP: one POST with an SDP offer
//! creates a session (a publisher in the room, or an invisible viewer), `DELETE` ends it,
//! `PATCH` trickles ICE candidates, `OPTIONS` answers CORS preflights. Every response
//! carries the CORS headers.
//!
//! | request | success | client errors |
//! |---|---|---|
//! | `POST /whip/{room}?name=..` (`application/sdp`) | `201`, `Location`, `ETag`, answer | 400 bad SDP/name, 401, 406 not negotiable, 409 room full, 413, 415 |
//! | `POST /whep/{room}[?participant=p3]` | `201`, `Location`, `ETag`, answer | 400, 401, 404 no such room/participant, 406, 413, 415 |
//! | `PATCH /whip/{room}/{session}` (`application/trickle-ice-sdpfrag`) | `204` | 400 bad fragment, 404, 412 `If-Match` mismatch, 415, 422 ICE restart |
//! | `DELETE /whip/{room}/{session}` | `200` | 404 |
//! | `OPTIONS` on any of them | `204` | |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tracing::{debug, info};
use tympan_rtc_engine::whip::{SessionKind, TrickleFragment, summarize_offer};
use tympan_rtc_engine::{ErrorCode, ParticipantId, SignalError};

use crate::actor::EngineHandle;
use crate::token::{self, Claims, Verifier};

/// Largest SDP offer accepted (bytes).
const MAX_SDP_BYTES: usize = 64 * 1024;
/// Display name of a WHIP publisher that gave none.
const DEFAULT_PUBLISHER_NAME: &str = "WHIP publisher";
const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// One WHIP/WHEP resource (`/whip/{room}/{session}`).
#[derive(Debug, Clone)]
struct Resource {
    participant: ParticipantId,
    kind: SessionKind,
    room: String,
    /// Strong entity tag of the ICE session (quoted).
    etag: String,
    /// The client's ICE ufrag from its offer (a different one in a PATCH = ICE restart).
    ice_ufrag: Option<String>,
}

type Table = Arc<Mutex<HashMap<String, Resource>>>;

#[derive(Clone)]
struct WhipState {
    engine: EngineHandle,
    resources: Table,
    /// The token verifier in gated mode.
    access: Option<Arc<Verifier>>,
}

/// The WHIP and WHEP routes, with their own state; merged into the main router.
pub(crate) fn router(engine: EngineHandle, access: Option<Arc<Verifier>>) -> Router {
    let state = WhipState {
        engine,
        resources: Arc::new(Mutex::new(HashMap::new())),
        access,
    };
    Router::new()
        .route("/whip/{room}", post(whip_post).options(endpoint_options))
        .route("/whep/{room}", post(whep_post).options(endpoint_options))
        .route(
            "/whip/{room}/{session}",
            axum::routing::delete(whip_delete)
                .patch(whip_patch)
                .options(resource_options),
        )
        .route(
            "/whep/{room}/{session}",
            axum::routing::delete(whep_delete)
                .patch(whep_patch)
                .options(resource_options),
        )
        .layer(DefaultBodyLimit::max(MAX_SDP_BYTES))
        .layer(axum::middleware::map_response(add_cors))
        .with_state(state)
}

/// CORS (Fetch standard) on every WHIP/WHEP response, errors and 405s included.
async fn add_cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, ETag, Accept-Patch, Accept-Post"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

async fn endpoint_options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "POST, OPTIONS"),
            (header::HeaderName::from_static("accept-post"), SDP),
        ],
    )
        .into_response()
}

async fn resource_options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "PATCH, DELETE, OPTIONS"),
            (header::HeaderName::from_static("accept-patch"), SDPFRAG),
        ],
    )
        .into_response()
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The HTTP status of an engine refusal (never 5xx for client input).
fn status_of(e: &SignalError) -> StatusCode {
    match e.code {
        ErrorCode::BadName | ErrorCode::BadSdp | ErrorCode::BadMessage | ErrorCode::TooLarge => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::NegotiationFailed => StatusCode::NOT_ACCEPTABLE,
        ErrorCode::RoomFull => StatusCode::CONFLICT,
        ErrorCode::NotJoined => StatusCode::NOT_FOUND,
        ErrorCode::Internal => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn refusal(e: &SignalError) -> Response {
    text(status_of(e), e.to_string())
}

fn engine_stopped() -> Response {
    text(StatusCode::SERVICE_UNAVAILABLE, "engine stopped")
}

/// Whether the request's `Content-Type` is `expected` (parameters ignored).
fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

fn wrong_content_type(expected: &str) -> Response {
    text(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Content-Type must be {expected}"),
    )
}

/// The access check of a WHIP/WHEP `POST` (`Authorization: Bearer <JWT>`, see
/// [`crate::token`]). Open mode (`verifier` is `None`): any bearer token or none is accepted
/// and `Ok(None)` returned. Gated mode: the token must be valid for `room` now and grant
/// publishing (WHIP, `publish`) or subscribing (WHEP): `401` with `WWW-Authenticate: Bearer`
/// when it is missing, malformed, badly signed or expired, `403` for another room or a
/// missing grant; the body never says anything about the room. Another scheme than Bearer
/// is a `401` in both modes. The session URL that `201` returns is the capability for its
/// `PATCH`/`DELETE` (unguessable), as in RFC 9725 §4.1.
fn authorize_request(
    verifier: Option<&Verifier>,
    headers: &HeaderMap,
    room: &str,
    publish: bool,
    now_unix: u64,
) -> Result<Option<Claims>, Box<Response>> {
    let unauthorized = |message: &str| {
        let mut r = text(StatusCode::UNAUTHORIZED, message.to_owned());
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Box::new(r)
    };
    let token = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(token::bearer_token) {
            Some(t) => Some(t),
            None => return Err(unauthorized("Authorization must be \"Bearer <token>\"")),
        },
    };
    let claims = match token::authorize(verifier, token, room, now_unix) {
        Ok(c) => c,
        Err(e) if e.code() == "forbidden" => {
            return Err(Box::new(text(
                StatusCode::FORBIDDEN,
                format!("forbidden: {e}"),
            )));
        }
        Err(e) => return Err(unauthorized(&format!("unauthorized: {e}"))),
    };
    if let Some(c) = &claims {
        let (allowed, what) = if publish {
            (c.can_publish, "publishing")
        } else {
            (c.can_subscribe, "subscribing")
        };
        if !allowed {
            return Err(Box::new(text(
                StatusCode::FORBIDDEN,
                format!("forbidden: the token does not allow {what}"),
            )));
        }
    }
    Ok(claims)
}

/// Seconds since the Unix epoch (token `exp`/`nbf`).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Decodes `%XX` escapes and `+` (as in HTML forms). None for bad escapes or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string (decoded); Err(()) when it does not decode.
fn query_param(query: Option<&str>, key: &str) -> Result<Option<String>, ()> {
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(k).as_deref() == Some(key) {
            return percent_decode(v).map(Some).ok_or(());
        }
    }
    Ok(None)
}

/// 128 random bits as hex.
fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn body_text(body: &Bytes) -> Result<&str, Box<Response>> {
    std::str::from_utf8(body)
        .map_err(|_| Box::new(text(StatusCode::BAD_REQUEST, "the body is not UTF-8")))
}

async fn whip_post(
    State(st): State<WhipState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = match query_param(query.as_deref(), "name") {
        Ok(n) => n.unwrap_or_else(|| DEFAULT_PUBLISHER_NAME.to_owned()),
        Err(()) => {
            return text(
                StatusCode::BAD_REQUEST,
                "the name parameter does not decode",
            );
        }
    };
    create(
        st,
        SessionKind::WhipPublisher,
        room,
        name,
        None,
        &headers,
        body,
    )
    .await
}

async fn whep_post(
    State(st): State<WhipState>,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let only = match query_param(query.as_deref(), "participant") {
        Ok(None) => None,
        Ok(Some(p)) => match p.parse::<ParticipantId>() {
            Ok(p) => Some(p),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("participant: {e}")),
        },
        Err(()) => {
            return text(
                StatusCode::BAD_REQUEST,
                "the participant parameter does not decode",
            );
        }
    };
    create(
        st,
        SessionKind::WhepViewer,
        room,
        String::new(),
        only,
        &headers,
        body,
    )
    .await
}

/// POST: the offer becomes a WHIP publisher or WHEP viewer; 201 with the answer.
async fn create(
    st: WhipState,
    kind: SessionKind,
    room: String,
    name: String,
    only: Option<ParticipantId>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if !has_content_type(headers, SDP) {
        return wrong_content_type(SDP);
    }
    let publish = kind == SessionKind::WhipPublisher;
    let claims = match authorize_request(st.access.as_deref(), headers, &room, publish, unix_now())
    {
        Ok(c) => c,
        Err(r) => return *r,
    };
    // A token's display name (else its identity) names the publisher.
    let name = match claims {
        Some(c) => c.name.filter(|n| !n.trim().is_empty()).unwrap_or(c.sub),
        None => name,
    };
    let offer = match body_text(&body) {
        Ok(t) => t.to_owned(),
        Err(r) => return *r,
    };
    let ice_ufrag = match summarize_offer(&offer) {
        Ok(s) => s.ice_ufrag,
        Err(e) => return refusal(&e),
    };
    let session = random_id();
    let etag = format!("\"{}\"", random_id());
    let resources = st.resources.clone();
    let resource = Resource {
        participant: ParticipantId(0),
        kind,
        room: room.clone(),
        etag: etag.clone(),
        ice_ufrag,
    };
    let key = session.clone();
    let location_room = room.clone();
    let result = st
        .engine
        .call(move |core, now| {
            let created = match kind {
                SessionKind::WhipPublisher => core.engine.whip_publish(now, &room, &name, &offer),
                SessionKind::WhepViewer => core.engine.whep_subscribe(now, &room, only, &offer),
            };
            let (participant, answer) = created?;
            // Registered on the actor, so a DELETE can never see the engine's session
            // without its resource; resources whose session ended (lost media path) go.
            if let Ok(mut table) = resources.lock() {
                table.retain(|_, r| core.engine.whip_session(r.participant).is_some());
                table.insert(
                    key,
                    Resource {
                        participant,
                        ..resource
                    },
                );
            }
            Ok::<_, SignalError>((participant, answer))
        })
        .await;
    let (participant, answer) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            debug!(error = %e, "WHIP/WHEP offer refused");
            return refusal(&e);
        }
        Err(_) => return engine_stopped(),
    };
    let prefix = prefix_of(kind);
    // (The engine validated the room name: A-Z a-z 0-9 - _ . only, URL-safe.)
    let location = format!("/{prefix}/{location_room}/{session}");
    info!(%participant, %location, "{prefix} session created");
    (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, SDP.to_owned()),
            (header::LOCATION, location),
            (header::ETAG, etag),
            (
                header::HeaderName::from_static("accept-patch"),
                SDPFRAG.to_owned(),
            ),
        ],
        answer,
    )
        .into_response()
}

fn prefix_of(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::WhipPublisher => "whip",
        SessionKind::WhepViewer => "whep",
    }
}

/// The resource at `/{kind}/{room}/{session}`, or a 404 response.
fn find(
    st: &WhipState,
    kind: SessionKind,
    room: &str,
    session: &str,
) -> Result<Resource, Box<Response>> {
    st.resources
        .lock()
        .ok()
        .and_then(|t| t.get(session).cloned())
        .filter(|r| r.kind == kind && r.room == room)
        .ok_or_else(|| Box::new(text(StatusCode::NOT_FOUND, "no such session")))
}

async fn whip_delete(st: State<WhipState>, p: Path<(String, String)>) -> Response {
    delete(st, p, SessionKind::WhipPublisher).await
}

async fn whep_delete(st: State<WhipState>, p: Path<(String, String)>) -> Response {
    delete(st, p, SessionKind::WhepViewer).await
}

/// DELETE: the session ends (a publisher leaves the room).
async fn delete(
    State(st): State<WhipState>,
    Path((room, session)): Path<(String, String)>,
    kind: SessionKind,
) -> Response {
    let resource = match find(&st, kind, &room, &session) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if let Ok(mut t) = st.resources.lock() {
        t.remove(&session);
    }
    let participant = resource.participant;
    let ended = st
        .engine
        .call(move |core, now| {
            let alive = core.engine.whip_session(participant).is_some();
            core.engine.end_session(now, participant);
            alive
        })
        .await;
    match ended {
        Ok(true) => {
            info!(%participant, "{} session deleted", prefix_of(kind));
            text(StatusCode::OK, "session ended")
        }
        Ok(false) => text(StatusCode::NOT_FOUND, "the session had already ended"),
        Err(_) => engine_stopped(),
    }
}

async fn whip_patch(
    st: State<WhipState>,
    p: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    patch(st, p, headers, body, SessionKind::WhipPublisher).await
}

async fn whep_patch(
    st: State<WhipState>,
    p: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    patch(st, p, headers, body, SessionKind::WhepViewer).await
}

/// PATCH: trickled candidates (204). ICE restarts are not supported: 422 (RFC 9725 §4.3.1
/// for a session that does trickle but not restarts).
async fn patch(
    State(st): State<WhipState>,
    Path((room, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    kind: SessionKind,
) -> Response {
    let resource = match find(&st, kind, &room, &session) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if !has_content_type(&headers, SDPFRAG) {
        return wrong_content_type(SDPFRAG);
    }
    let restart_refused = || {
        text(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ICE restarts are not supported: DELETE this session and POST a new offer",
        )
    };
    if let Some(if_match) = headers.get(header::IF_MATCH) {
        let if_match = if_match.to_str().unwrap_or_default().trim();
        if if_match == "*" {
            return restart_refused();
        }
        if !if_match.split(',').any(|t| t.trim() == resource.etag) {
            return text(
                StatusCode::PRECONDITION_FAILED,
                "If-Match does not match the session's ETag",
            );
        }
    }
    let fragment = match TrickleFragment::parse_bytes(&body) {
        Ok(f) => f,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad sdpfrag: {e}")),
    };
    if fragment.is_ice_restart(resource.ice_ufrag.as_deref()) {
        return restart_refused();
    }
    let participant = resource.participant;
    let result = st
        .engine
        .call(move |core, _| {
            if core.engine.whip_session(participant).is_none() {
                return Err(SignalError::new(
                    ErrorCode::NotJoined,
                    "the session has ended",
                ));
            }
            for c in &fragment.candidates {
                core.engine.add_remote_candidate(participant, Some(c))?;
            }
            if fragment.end_of_candidates {
                core.engine.add_remote_candidate(participant, None)?;
            }
            Ok(fragment.candidates.len())
        })
        .await;
    match result {
        Ok(Ok(n)) => {
            debug!(%participant, candidates = n, "trickle PATCH");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(e)) => refusal(&e),
        Err(_) => engine_stopped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_percent_decoded() {
        assert_eq!(
            query_param(Some("a=1&name=Ana%20L%C3%B3pez"), "name"),
            Ok(Some("Ana López".into()))
        );
        assert_eq!(
            query_param(Some("name=A+B"), "name"),
            Ok(Some("A B".into()))
        );
        assert_eq!(query_param(None, "name"), Ok(None));
        assert_eq!(query_param(Some("name=%zz"), "name"), Err(()));
        assert_eq!(query_param(Some("name=%ff"), "name"), Err(()));
    }

    #[test]
    fn open_mode_accepts_any_bearer_token_and_refuses_other_schemes() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            authorize_request(None, &h, "r", true, 0),
            Ok(None)
        ));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(matches!(
            authorize_request(None, &h, "r", true, 0),
            Ok(None)
        ));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Zm9v"),
        );
        let r = authorize_request(None, &h, "r", true, 0).unwrap_err();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn gated_mode_checks_token_room_and_grants() {
        let v = Verifier::new("key", "secret");
        let now = 1_000_000;
        let bearer = |c: &Claims| {
            let mut h = HeaderMap::new();
            let value = format!("Bearer {}", v.sign(c));
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&value).unwrap(),
            );
            h
        };
        let status = |r: Result<Option<Claims>, Box<Response>>| r.unwrap_err().status();
        // No token, a forged one, an expired one: 401.
        let none = HeaderMap::new();
        assert_eq!(
            status(authorize_request(Some(&v), &none, "r", true, now)),
            StatusCode::UNAUTHORIZED
        );
        let other = Verifier::new("key", "another secret");
        let forged = Claims::new("key", "ana", "r", now + 60);
        let mut h = HeaderMap::new();
        let value = format!("Bearer {}", other.sign(&forged));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).unwrap(),
        );
        assert_eq!(
            status(authorize_request(Some(&v), &h, "r", true, now)),
            StatusCode::UNAUTHORIZED
        );
        let expired = Claims::new("key", "ana", "r", now - 1);
        assert_eq!(
            status(authorize_request(
                Some(&v),
                &bearer(&expired),
                "r",
                true,
                now
            )),
            StatusCode::UNAUTHORIZED
        );
        // Another room: 403.
        let good = Claims::new("key", "ana", "r", now + 60);
        assert_eq!(
            status(authorize_request(
                Some(&v),
                &bearer(&good),
                "elsewhere",
                true,
                now
            )),
            StatusCode::FORBIDDEN
        );
        // Valid: the claims come back; a missing grant is 403.
        let ok = authorize_request(Some(&v), &bearer(&good), "r", true, now).unwrap();
        assert_eq!(ok.map(|c| c.sub), Some("ana".to_owned()));
        let mut viewer_only = good.clone();
        viewer_only.can_publish = false;
        assert_eq!(
            status(authorize_request(
                Some(&v),
                &bearer(&viewer_only),
                "r",
                true,
                now
            )),
            StatusCode::FORBIDDEN
        );
        assert!(authorize_request(Some(&v), &bearer(&viewer_only), "r", false, now).is_ok());
        let mut publisher_only = good.clone();
        publisher_only.can_subscribe = false;
        assert_eq!(
            status(authorize_request(
                Some(&v),
                &bearer(&publisher_only),
                "r",
                false,
                now
            )),
            StatusCode::FORBIDDEN
        );
    }
}

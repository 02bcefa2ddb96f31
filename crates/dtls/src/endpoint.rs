//! The sans-IO DTLS endpoint over OpenSSL.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::ssl::{
    ErrorCode, SslContext, SslMethod, SslOptions, SslSessionCacheMode, SslStream, SslVerifyMode,
    SslVersion,
};

use crate::DtlsRole;
use crate::cert::{DtlsCertificate, Fingerprint};
use crate::srtp::{EXPORTER_LABEL, KeyingMaterial, SrtpProfile};

/// Cipher suites browsers use for DTLS 1.2 with ECDSA certificates.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384";
/// Key exchange groups offered (browsers send X25519 and P-256).
const GROUPS: &str = "X25519:P-256";
/// `use_srtp` profiles, in the server's preference order.
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80";
/// DTLS 1.2 record overhead with AES-GCM: 13-byte header, 8-byte explicit nonce, 16-byte tag.
const GCM_RECORD_OVERHEAD: usize = 13 + 8 + 16;
/// Largest datagram we accept from the caller and largest plaintext OpenSSL can return.
const MAX_RECORD: usize = 16384 + 2048;
/// OpenSSL's initial DTLS retransmission timeout (RFC 6347 §4.2.4.1), and ours.
const INITIAL_RETRANSMIT: Duration = Duration::from_secs(1);
/// OpenSSL's maximum DTLS retransmission timeout, and ours.
const MAX_RETRANSMIT: Duration = Duration::from_secs(60);
/// Added to our retransmission deadline so that OpenSSL's own (wall-clock) timer, started a
/// moment after the caller read its `now`, has expired when we call in.
const RETRANSMIT_SLACK: Duration = Duration::from_millis(5);
/// First re-check interval when OpenSSL did not consider its timer expired yet.
const RECHECK: Duration = Duration::from_millis(5);
/// Buffers kept for reuse (outgoing datagrams, received application data).
const POOL_LIMIT: usize = 64;

/// Settings of a [`DtlsContext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtlsConfig {
    /// Largest datagram (DTLS records incl. headers, excluding UDP/IP) ever produced.
    /// Must be within 256..=16384. Default 1200.
    pub mtu: usize,
    /// The handshake fails with [`DtlsError::HandshakeTimeout`] if it has not completed this
    /// long after it started (the client's start, or the server's first datagram).
    /// Default 30 s (retransmissions at 1, 3, 7, 15 s after the first flight).
    pub handshake_timeout: Duration,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        Self {
            mtu: 1200,
            handshake_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the connection failed (in [`DtlsEvent::Failed`]) or could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsError {
    /// OpenSSL rejected the configuration (certificate, ciphers, MTU out of range …).
    Setup(String),
    /// The peer's certificate does not have the fingerprint the remote SDP announced.
    FingerprintMismatch {
        /// The fingerprint from the remote SDP's `a=fingerprint`.
        expected: Fingerprint,
        /// The fingerprint of the certificate the peer presented.
        actual: Fingerprint,
    },
    /// The peer completed the handshake without presenting a certificate.
    NoPeerCertificate,
    /// The handshake failed inside OpenSSL (protocol error, no shared cipher, alert from the
    /// peer …); carries OpenSSL's reason.
    Handshake(String),
    /// The handshake did not complete within [`DtlsConfig::handshake_timeout`].
    HandshakeTimeout(Duration),
    /// A fatal error after the connection was established (e.g. a fatal alert from the peer).
    Connection(String),
}

impl fmt::Display for DtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setup(e) => write!(f, "DTLS setup failed: {e}"),
            Self::FingerprintMismatch { expected, actual } => write!(
                f,
                "peer certificate fingerprint {actual} does not match the SDP fingerprint {expected}"
            ),
            Self::NoPeerCertificate => write!(f, "peer presented no certificate"),
            Self::Handshake(e) => write!(f, "DTLS handshake failed: {e}"),
            Self::HandshakeTimeout(t) => write!(f, "DTLS handshake did not complete within {t:?}"),
            Self::Connection(e) => write!(f, "DTLS connection failed: {e}"),
        }
    }
}

impl std::error::Error for DtlsError {}

/// Why [`DtlsEndpoint::send_application_data`] refused the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The handshake has not completed yet.
    NotConnected,
    /// The connection was closed or has failed.
    Closed,
    /// The payload does not fit one record within the MTU.
    TooLarge {
        /// Payload length given.
        len: usize,
        /// Largest payload that fits ([`DtlsEndpoint::max_application_data_len`]).
        max: usize,
    },
    /// OpenSSL refused to write the record.
    Write(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected => write!(f, "DTLS handshake has not completed"),
            Self::Closed => write!(f, "DTLS connection is closed"),
            Self::TooLarge { len, max } => {
                write!(f, "{len} bytes do not fit one DTLS record (max {max})")
            }
            Self::Write(e) => write!(f, "DTLS write failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// What happened, as returned by [`DtlsEndpoint::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent<'a> {
    /// The handshake completed and the peer's certificate matched the expected fingerprint.
    Connected {
        /// The SRTP profile negotiated with `use_srtp`, `None` if the peer did not offer one
        /// we support (then there is no SRTP keying material, data channels still work).
        srtp_profile: Option<SrtpProfile>,
        /// The DTLS-SRTP keys (RFC 5764 §4.2 layout), present with `srtp_profile`.
        keying_material: Option<KeyingMaterial>,
        /// The SHA-256 fingerprint of the peer's certificate.
        peer_fingerprint: Fingerprint,
        /// The peer's certificate in DER.
        peer_certificate: Vec<u8>,
    },
    /// One received application-data record (borrowed until the next `poll_event`).
    ApplicationData(&'a [u8]),
    /// The connection closed: the peer sent close_notify, or [`DtlsEndpoint::close`] was called.
    Closed,
    /// The connection failed; the endpoint ignores further input.
    Failed(DtlsError),
}

/// Owned form of a queued event.
enum Queued {
    Connected(Box<DtlsEvent<'static>>),
    ApplicationData(Vec<u8>),
    Closed,
    Failed(DtlsError),
}

/// Certificate, key and OpenSSL settings shared by all endpoints using the same identity.
pub struct DtlsContext {
    ctx: SslContext,
    certificate: DtlsCertificate,
    config: DtlsConfig,
}

impl fmt::Debug for DtlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsContext")
            .field("certificate", &self.certificate)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DtlsContext {
    /// Configures OpenSSL for WebRTC DTLS 1.2: ECDHE-ECDSA with AES-GCM, X25519/P-256,
    /// `use_srtp` (AEAD_AES_128_GCM, AEAD_AES_256_GCM, AES_CM_128_HMAC_SHA1_80 in that server
    /// preference), mutual certificate authentication by fingerprint, no session resumption,
    /// no renegotiation.
    pub fn new(certificate: DtlsCertificate, config: DtlsConfig) -> Result<Self, DtlsError> {
        if !(256..=16384).contains(&config.mtu) {
            return Err(DtlsError::Setup(format!(
                "MTU {} outside 256..=16384",
                config.mtu
            )));
        }
        let build = || -> Result<SslContext, openssl::error::ErrorStack> {
            let mut b = SslContext::builder(SslMethod::dtls())?;
            b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
            b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
            b.set_cipher_list(CIPHERS)?;
            b.set_groups_list(GROUPS)?;
            b.set_tlsext_use_srtp(SRTP_PROFILES)?;
            b.set_certificate(certificate.x509())?;
            b.set_private_key(certificate.key())?;
            b.check_private_key()?;
            // NO_QUERY_MTU: the MTU is ours (set per connection), never asked of the BIO.
            b.set_options(
                SslOptions::NO_QUERY_MTU
                    | SslOptions::NO_TICKET
                    | SslOptions::NO_RENEGOTIATION
                    | SslOptions::CIPHER_SERVER_PREFERENCE,
            );
            b.set_session_cache_mode(SslSessionCacheMode::OFF);
            Ok(b.build())
        };
        let ctx = build().map_err(|e| DtlsError::Setup(e.to_string()))?;
        Ok(Self {
            ctx,
            certificate,
            config,
        })
    }

    /// Our certificate's fingerprint, for the local SDP's `a=fingerprint`.
    pub fn fingerprint(&self) -> &Fingerprint {
        self.certificate.fingerprint()
    }

    /// The certificate this context presents.
    pub fn certificate(&self) -> &DtlsCertificate {
        &self.certificate
    }

    /// The settings.
    pub fn config(&self) -> &DtlsConfig {
        &self.config
    }
}

/// The in-memory "socket" OpenSSL reads from and writes to: at most one received datagram, a
/// queue of datagrams to send, and a pool of reusable buffers.
struct Pipe {
    incoming: Vec<u8>,
    has_incoming: bool,
    outgoing: VecDeque<Vec<u8>>,
    written: u64,
    pool: Vec<Vec<u8>>,
}

impl Pipe {
    fn new() -> Self {
        Self {
            incoming: Vec::with_capacity(2048),
            has_incoming: false,
            outgoing: VecDeque::with_capacity(16),
            written: 0,
            pool: Vec::new(),
        }
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_LIMIT && buf.capacity() > 0 {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.has_incoming {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.has_incoming = false;
        // One datagram per read; a datagram larger than OpenSSL's buffer is truncated, which
        // DTLS treats like any corrupt datagram.
        let n = self.incoming.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.incoming.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // OpenSSL writes one datagram per call.
        let mut datagram = self.take_buffer();
        datagram.extend_from_slice(buf);
        self.outgoing.push_back(datagram);
        self.written += 1;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Created; the handshake begins with the first call that carries a `now`.
    Idle,
    Handshaking,
    Connected,
    Closed,
    Failed,
}

/// One DTLS 1.2 connection, sans-IO: feed it datagrams and time, poll it for datagrams to send,
/// events and its next timeout. See the crate documentation for an example.
pub struct DtlsEndpoint {
    stream: SslStream<Pipe>,
    role: DtlsRole,
    state: State,
    mtu: usize,
    handshake_timeout: Duration,
    expected: Fingerprint,
    /// Set by the verify callback when the peer's certificate has another fingerprint.
    mismatch: Arc<Mutex<Option<Fingerprint>>>,
    events: VecDeque<Queued>,
    /// The datagram handed out by the last `poll_transmit` (its buffer is reused).
    current_transmit: Vec<u8>,
    /// The record handed out by the last `poll_event` (its buffer is reused).
    current_data: Vec<u8>,
    scratch: Vec<u8>,
    handshake_deadline: Option<Instant>,
    retransmit_at: Option<Instant>,
    backoff: Duration,
    recheck: Duration,
    retransmissions: u32,
}

impl fmt::Debug for DtlsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsEndpoint")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("mtu", &self.mtu)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl DtlsEndpoint {
    /// A new connection in `role` that will only accept a peer whose certificate has the
    /// fingerprint `expected` (from the remote SDP's `a=fingerprint`).
    pub fn new(
        context: &DtlsContext,
        role: DtlsRole,
        expected: Fingerprint,
    ) -> Result<Self, DtlsError> {
        let mismatch = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&mismatch);
        let setup = |e: openssl::error::ErrorStack| DtlsError::Setup(e.to_string());
        let mut ssl = openssl::ssl::Ssl::new(&context.ctx).map_err(setup)?;
        let mtu = u32::try_from(context.config.mtu).unwrap_or(1200);
        ssl.set_mtu(mtu).map_err(setup)?;
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |_preverified, store| {
                // Browsers' certificates are self-signed: authenticity comes from the SDP
                // fingerprint of the leaf, so chain errors are ignored and the leaf is pinned.
                if store.error_depth() != 0 {
                    return true;
                }
                let Some(actual) = store
                    .current_cert()
                    .and_then(|c| Fingerprint::of_x509(c).ok())
                else {
                    return false;
                };
                if actual == expected {
                    return true;
                }
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(actual);
                }
                false
            },
        );
        match role {
            DtlsRole::Client => ssl.set_connect_state(),
            DtlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, Pipe::new()).map_err(setup)?;
        Ok(Self {
            stream,
            role,
            state: State::Idle,
            mtu: context.config.mtu,
            handshake_timeout: context.config.handshake_timeout,
            expected,
            mismatch,
            events: VecDeque::new(),
            current_transmit: Vec::new(),
            current_data: Vec::new(),
            scratch: vec![0; MAX_RECORD],
            handshake_deadline: None,
            retransmit_at: None,
            backoff: INITIAL_RETRANSMIT,
            recheck: RECHECK,
            retransmissions: 0,
        })
    }

    /// Our role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// True once [`DtlsEvent::Connected`] has been queued and until the connection closes.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// True once the connection has closed or failed.
    pub fn is_terminated(&self) -> bool {
        matches!(self.state, State::Closed | State::Failed)
    }

    /// How many timer-driven handshake retransmissions happened so far.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// The largest payload [`DtlsEndpoint::send_application_data`] accepts: one AES-GCM record
    /// within the MTU.
    pub fn max_application_data_len(&self) -> usize {
        self.mtu.saturating_sub(GCM_RECORD_OVERHEAD)
    }

    /// Starts the handshake: a client queues its ClientHello, a server waits for one.
    /// Calling it again has no effect. [`DtlsEndpoint::handle_timeout`] and
    /// [`DtlsEndpoint::handle_datagram`] start an idle endpoint themselves.
    pub fn start(&mut self, now: Instant) {
        if self.state != State::Idle {
            return;
        }
        self.state = State::Handshaking;
        if self.role == DtlsRole::Client {
            self.handshake_deadline = Some(now + self.handshake_timeout);
            let written = self.drive_handshake();
            self.after_progress(now, written);
        }
    }

    /// Feeds one received datagram (one or more DTLS records) at time `now`.
    ///
    /// Malformed, replayed or out-of-epoch records are dropped silently as DTLS requires;
    /// only fatal protocol errors end the connection (as [`DtlsEvent::Failed`]).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.start(now);
        if matches!(self.state, State::Closed | State::Failed) || datagram.is_empty() {
            return;
        }
        let pipe = self.stream.get_mut();
        pipe.incoming.clear();
        let len = datagram.len().min(MAX_RECORD);
        pipe.incoming
            .extend_from_slice(datagram.get(..len).unwrap_or_default());
        pipe.has_incoming = true;
        match self.state {
            State::Handshaking => {
                if self.handshake_deadline.is_none() {
                    self.handshake_deadline = Some(now + self.handshake_timeout);
                }
                let written = self.drive_handshake();
                self.after_progress(now, written);
            }
            State::Connected => self.read_records(),
            _ => {}
        }
        self.stream.get_mut().has_incoming = false;
    }

    /// Drives timers at time `now`: handshake retransmission and the handshake timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.start(now);
        if self.state != State::Handshaking {
            return;
        }
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            self.fail(DtlsError::HandshakeTimeout(self.handshake_timeout));
            return;
        }
        let Some(at) = self.retransmit_at else {
            return;
        };
        if now < at {
            return;
        }
        // Let OpenSSL check its own retransmission timer; it resends its last flight (with
        // fresh record sequence numbers) if that timer has expired on the wall clock.
        let written = self.drive_handshake();
        if self.state != State::Handshaking {
            self.after_progress(now, written);
            return;
        }
        if written > 0 {
            self.retransmissions += 1;
            self.backoff = (self.backoff * 2).min(MAX_RETRANSMIT);
            self.recheck = RECHECK;
            self.retransmit_at = Some(now + self.backoff + RETRANSMIT_SLACK);
        } else {
            // OpenSSL's wall clock says "not yet": look again shortly, backing off.
            self.retransmit_at = Some(now + self.recheck);
            self.recheck = (self.recheck * 2).min(self.backoff);
        }
    }

    /// When [`DtlsEndpoint::handle_timeout`] wants to be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Handshaking {
            return None;
        }
        match (self.retransmit_at, self.handshake_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram to send, never larger than the MTU. The slice is valid until the
    /// next call.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        let pipe = self.stream.get_mut();
        let next = pipe.outgoing.pop_front()?;
        let previous = std::mem::replace(&mut self.current_transmit, next);
        pipe.recycle(previous);
        Some(&self.current_transmit)
    }

    /// The next event. Application data is borrowed until the next call.
    pub fn poll_event(&mut self) -> Option<DtlsEvent<'_>> {
        match self.events.pop_front()? {
            Queued::Connected(event) => Some(*event),
            Queued::ApplicationData(data) => {
                let previous = std::mem::replace(&mut self.current_data, data);
                self.stream.get_mut().recycle(previous);
                Some(DtlsEvent::ApplicationData(&self.current_data))
            }
            Queued::Closed => Some(DtlsEvent::Closed),
            Queued::Failed(e) => Some(DtlsEvent::Failed(e)),
        }
    }

    /// Encrypts `data` as one application-data record (queued for [`poll_transmit`]).
    /// An empty slice sends nothing.
    ///
    /// [`poll_transmit`]: DtlsEndpoint::poll_transmit
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), SendError> {
        match self.state {
            State::Connected => {}
            State::Idle | State::Handshaking => return Err(SendError::NotConnected),
            State::Closed | State::Failed => return Err(SendError::Closed),
        }
        let max = self.max_application_data_len();
        if data.len() > max {
            return Err(SendError::TooLarge {
                len: data.len(),
                max,
            });
        }
        if data.is_empty() {
            return Ok(());
        }
        match self.stream.ssl_write(data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(n) => Err(SendError::Write(format!(
                "short write {n} of {}",
                data.len()
            ))),
            Err(e) => Err(SendError::Write(e.to_string())),
        }
    }

    /// Closes the connection: sends close_notify if connected, and queues
    /// [`DtlsEvent::Closed`]. Further input is ignored.
    pub fn close(&mut self) {
        match self.state {
            State::Connected => {
                // Queues the close_notify alert; we do not wait for the peer's.
                let _ = self.stream.shutdown();
            }
            State::Idle | State::Handshaking => {}
            State::Closed | State::Failed => return,
        }
        self.state = State::Closed;
        self.retransmit_at = None;
        self.events.push_back(Queued::Closed);
    }

    /// Runs OpenSSL's handshake on whatever is in the pipe; returns how many datagrams it
    /// wrote. Moves to Connected or Failed as appropriate.
    fn drive_handshake(&mut self) -> u64 {
        let before = self.stream.get_ref().written;
        match self.stream.do_handshake() {
            Ok(()) => self.on_connected(),
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {}
            Err(e) => {
                let mismatch = self.mismatch.lock().ok().and_then(|mut s| s.take());
                let error = match mismatch {
                    Some(actual) => DtlsError::FingerprintMismatch {
                        expected: self.expected,
                        actual,
                    },
                    None => DtlsError::Handshake(e.to_string()),
                };
                self.fail(error);
            }
        }
        self.stream.get_ref().written - before
    }

    /// Re-arms the retransmission timer after input or a start: a new flight restarts the
    /// schedule at 1 s, as OpenSSL does.
    fn after_progress(&mut self, now: Instant, written: u64) {
        if self.state != State::Handshaking {
            self.retransmit_at = None;
            return;
        }
        if written > 0 {
            self.backoff = INITIAL_RETRANSMIT;
            self.recheck = RECHECK;
            self.retransmit_at = Some(now + self.backoff + RETRANSMIT_SLACK);
        }
    }

    fn on_connected(&mut self) {
        let ssl = self.stream.ssl();
        let Some(peer) = ssl.peer_certificate() else {
            self.fail(DtlsError::NoPeerCertificate);
            return;
        };
        let (Ok(actual), Ok(der)) = (Fingerprint::of_x509(&peer), peer.to_der()) else {
            self.fail(DtlsError::NoPeerCertificate);
            return;
        };
        if actual != self.expected {
            // The verify callback already refuses this; kept as a second line of defence.
            let _ = self.stream.shutdown();
            self.fail(DtlsError::FingerprintMismatch {
                expected: self.expected,
                actual,
            });
            return;
        }
        let srtp_profile = ssl
            .selected_srtp_profile()
            .and_then(|p| u16::try_from(p.id().as_raw()).ok())
            .and_then(SrtpProfile::from_iana_id);
        let keying_material = srtp_profile.and_then(|profile| {
            let mut bytes = vec![0u8; profile.keying_material_len()];
            ssl.export_keying_material(&mut bytes, EXPORTER_LABEL, None)
                .ok()?;
            KeyingMaterial::new(profile, self.role, bytes)
        });
        self.state = State::Connected;
        self.retransmit_at = None;
        self.handshake_deadline = None;
        self.events
            .push_back(Queued::Connected(Box::new(DtlsEvent::Connected {
                srtp_profile,
                keying_material,
                peer_fingerprint: actual,
                peer_certificate: der,
            })));
        // Records that arrived in the same datagram as the peer's Finished.
        self.read_records();
    }

    /// Decrypts every record in the pipe into ApplicationData events.
    fn read_records(&mut self) {
        loop {
            match self.stream.ssl_read(&mut self.scratch) {
                Ok(0) => break,
                Ok(n) => {
                    let pipe = self.stream.get_mut();
                    let mut data = pipe.take_buffer();
                    data.extend_from_slice(self.scratch.get(..n).unwrap_or_default());
                    self.events.push_back(Queued::ApplicationData(data));
                }
                Err(e) => {
                    match e.code() {
                        ErrorCode::WANT_READ | ErrorCode::WANT_WRITE => {}
                        ErrorCode::ZERO_RETURN => {
                            // The peer's close_notify: answer it and close.
                            let _ = self.stream.shutdown();
                            self.state = State::Closed;
                            self.events.push_back(Queued::Closed);
                        }
                        _ => self.fail(DtlsError::Connection(e.to_string())),
                    }
                    break;
                }
            }
        }
    }

    fn fail(&mut self, error: DtlsError) {
        self.state = State::Failed;
        self.retransmit_at = None;
        self.handshake_deadline = None;
        self.events.push_back(Queued::Failed(error));
    }
}

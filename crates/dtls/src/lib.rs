//! tympan-dtls: DTLS 1.2 on OpenSSL with DTLS-SRTP keying, sans-IO.
//!
//! A [`DtlsEndpoint`] is one DTLS connection over an ICE-connected path. It never touches a
//! socket: feed it received datagrams with [`DtlsEndpoint::handle_datagram`], drive its timer
//! with [`DtlsEndpoint::handle_timeout`] at [`DtlsEndpoint::poll_timeout`], send what
//! [`DtlsEndpoint::poll_transmit`] returns, and act on [`DtlsEndpoint::poll_event`]:
//! [`DtlsEvent::Connected`] (negotiated [`SrtpProfile`], exported [`KeyingMaterial`] in the
//! RFC 5764 §4.2 layout, the peer's certificate and fingerprint), application data, closed,
//! failed.
//!
//! * Roles come from SDP `a=setup` ([`Setup::role`], [`Setup::answer_for`]).
//! * Identity: an ECDSA P-256 self-signed certificate ([`DtlsCertificate::generate`]) or a
//!   given key and certificate ([`DtlsCertificate::from_pem`]); its [`Fingerprint`] formats as
//!   the SDP value `sha-256 AB:CD:…`.
//! * The peer's certificate must have the fingerprint of the remote SDP's `a=fingerprint`;
//!   otherwise the handshake is aborted and [`DtlsError::FingerprintMismatch`] reported.
//! * Ciphers ECDHE-ECDSA-AES128-GCM-SHA256 and ECDHE-ECDSA-AES256-GCM-SHA384 only; `use_srtp`
//!   with SRTP_AEAD_AES_128_GCM, SRTP_AEAD_AES_256_GCM, SRTP_AES128_CM_SHA1_80 (the server's
//!   preference order). No resumption, no renegotiation.
//! * Every datagram is at most [`DtlsConfig::mtu`] bytes (OpenSSL fragments the handshake to
//!   it; application data larger than one record is refused with [`SendError::TooLarge`]).
//! * [`DtlsEndpoint::close`] sends close_notify.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tympan_dtls::{
//!     DtlsCertificate, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsEvent, Setup,
//! };
//!
//! // Each side has an identity and puts its fingerprint into its SDP.
//! let offerer = DtlsContext::new(DtlsCertificate::generate()?, DtlsConfig::default())?;
//! let answerer = DtlsContext::new(DtlsCertificate::generate()?, DtlsConfig::default())?;
//! let offer_fp = offerer.fingerprint().to_string(); // "sha-256 AB:CD:…"
//! let answer_fp = answerer.fingerprint().to_string();
//!
//! // The offer says actpass, the answer active: the answerer is the DTLS client.
//! let answer_setup = Setup::answer_for(Setup::ActPass);
//! let mut a = DtlsEndpoint::new(
//!     &offerer,
//!     Setup::role(Setup::ActPass, answer_setup)?,
//!     answer_fp.parse()?,
//! )?;
//! let mut b = DtlsEndpoint::new(
//!     &answerer,
//!     Setup::role(answer_setup, Setup::ActPass)?,
//!     offer_fp.parse()?,
//! )?;
//!
//! // A lossless in-memory link; a real caller passes Instant::now() and UDP datagrams.
//! let now = Instant::now();
//! b.handle_timeout(now); // the client starts the handshake
//! a.handle_timeout(now);
//! for _ in 0..10 {
//!     while let Some(d) = a.poll_transmit().map(<[u8]>::to_vec) {
//!         b.handle_datagram(now, &d);
//!     }
//!     while let Some(d) = b.poll_transmit().map(<[u8]>::to_vec) {
//!         a.handle_datagram(now, &d);
//!     }
//! }
//! let mut keys = Vec::new();
//! for ep in [&mut a, &mut b] {
//!     while let Some(event) = ep.poll_event() {
//!         if let DtlsEvent::Connected { keying_material, .. } = event {
//!             keys.push(keying_material.expect("use_srtp negotiated"));
//!         }
//!     }
//! }
//! assert_eq!(keys.len(), 2);
//! assert_eq!(keys[0].as_bytes(), keys[1].as_bytes());
//! assert_eq!(keys[0].local_master_key(), keys[1].remote_master_key());
//!
//! a.send_application_data(b"hello")?;
//! let record = a.poll_transmit().expect("one record").to_vec();
//! b.handle_datagram(now + Duration::from_millis(1), &record);
//! assert_eq!(b.poll_event(), Some(DtlsEvent::ApplicationData(b"hello")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Time, and where the wall clock still leaks in
//!
//! The crate never reads a clock: every `now` comes from the caller, and the retransmission
//! schedule (1 s after a flight, doubling up to 60 s, reset by each new flight), the
//! handshake timeout ([`DtlsConfig::handshake_timeout`]) and [`DtlsEndpoint::poll_timeout`]
//! are computed from it. OpenSSL however keeps its own DTLS retransmission timer and the
//! `openssl` crate exposes no safe way to read or drive it (`DTLSv1_get_timeout`,
//! `DTLSv1_handle_timeout` and `DTLS_set_timer_cb` are not wrapped, and this workspace forbids
//! `unsafe`). So:
//!
//! 1. **Whether a retransmission happens is decided by OpenSSL's wall clock.** When our
//!    timer fires, [`DtlsEndpoint::handle_timeout`] calls into OpenSSL, which resends its last
//!    flight only if *its* timer (started with `gettimeofday` when the flight was written, same
//!    1 s / doubling / 60 s schedule) has expired. If it has not (the caller's `now` runs ahead
//!    of the wall clock, e.g. simulated time), nothing is sent and we look again after
//!    5 ms, 10 ms, 20 ms … (at most the current backoff), until the handshake timeout.
//!    With a caller passing `Instant::now()` the two schedules coincide (we add 5 ms slack).
//!    Resending the buffered flight ourselves is not an option: identical records carry the
//!    old record sequence numbers and a peer that already saw them drops them as replays
//!    (the lost-last-flight case would then never recover).
//! 2. **OpenSSL may also retransmit on any other call during the handshake**
//!    (`handle_datagram`, `handle_timeout`), whenever its wall-clock timer has expired.
//! 3. **A stepped system clock** shifts OpenSSL's timer: stepped back, retransmissions wait
//!    until the wall clock catches up (bounded by our handshake timeout); stepped forward,
//!    they happen at the next call.
//!
//! Nothing else depends on the wall clock: certificates get fixed validity dates (2020-01-01 to
//! 2099-12-31) instead of "now"; OpenSSL's chain verification compares the peer certificate's
//! dates with the current time, but its verdict is overridden (the SDP fingerprint
//! authenticates); the Hello randoms carry no time (OpenSSL's default); OpenSSL stamps its
//! internal session object with `time()`, which has no effect because sessions are neither
//! cached nor resumed.
//! Tests of retransmission therefore run on the wall clock (`tests/retransmit_wallclock.rs`);
//! everything else is tested with simulated time.

mod cert;
mod endpoint;
mod role;
mod srtp;

pub use cert::{CertificateError, DtlsCertificate, Fingerprint, FingerprintParseError};
pub use endpoint::{DtlsConfig, DtlsContext, DtlsEndpoint, DtlsError, DtlsEvent, SendError};
pub use role::{DtlsRole, Setup, SetupError};
pub use srtp::{EXPORTER_LABEL, KeyingMaterial, SrtpProfile};

/// Fuzzing entry point (target `dtls_input`): feeds `data` to a server-side endpoint as a
/// sequence of datagrams, each prefixed by a 2-byte big-endian length, advancing simulated
/// time from `base` by 100 ms per datagram and firing due timers. Returns how many datagrams
/// were fed and how many the server sent. It must never panic.
#[doc(hidden)]
pub fn fuzz_server_input(base: std::time::Instant, data: &[u8]) -> (usize, usize) {
    use std::sync::OnceLock;
    use std::time::Duration;
    static CONTEXT: OnceLock<Option<DtlsContext>> = OnceLock::new();
    let Some(context) = CONTEXT.get_or_init(|| {
        DtlsCertificate::generate()
            .ok()
            .and_then(|c| DtlsContext::new(c, DtlsConfig::default()).ok())
    }) else {
        return (0, 0);
    };
    let Ok(mut server) = DtlsEndpoint::new(
        context,
        DtlsRole::Server,
        Fingerprint::from_sha256([0x5a; 32]),
    ) else {
        return (0, 0);
    };
    let mut now = base;
    let mut rest = data;
    let mut fed = 0;
    let mut sent = 0;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (datagram, tail) = tail.split_at(len.min(tail.len()));
        server.handle_datagram(now, datagram);
        fed += 1;
        now += Duration::from_millis(100);
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        let _ = server.send_application_data(b"fuzz");
        while server.poll_transmit().is_some() {
            sent += 1;
        }
        while server.poll_event().is_some() {}
        rest = tail;
    }
    server.handle_timeout(now + Duration::from_secs(120));
    server.close();
    while server.poll_transmit().is_some() {}
    while server.poll_event().is_some() {}
    (fed, sent)
}

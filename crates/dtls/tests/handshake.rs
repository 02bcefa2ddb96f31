//! In-memory handshakes between two of our endpoints, on simulated time.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tympan_dtls::{
    DtlsCertificate, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsError, DtlsEvent, DtlsRole,
    Fingerprint, KeyingMaterial, SendError, SrtpProfile,
};

/// The fields of a Connected event.
type ConnectedInfo = (
    Option<SrtpProfile>,
    Option<KeyingMaterial>,
    Fingerprint,
    Vec<u8>,
);

/// What one endpoint reported.
#[derive(Default, Debug)]
struct Seen {
    connected: Option<ConnectedInfo>,
    data: Vec<Vec<u8>>,
    closed: bool,
    failed: Option<DtlsError>,
}

fn drain_events(ep: &mut DtlsEndpoint, seen: &mut Seen) {
    while let Some(event) = ep.poll_event() {
        match event {
            DtlsEvent::Connected {
                srtp_profile,
                keying_material,
                peer_fingerprint,
                peer_certificate,
            } => {
                assert!(seen.connected.is_none(), "Connected twice");
                seen.connected = Some((
                    srtp_profile,
                    keying_material,
                    peer_fingerprint,
                    peer_certificate,
                ));
            }
            DtlsEvent::ApplicationData(d) => seen.data.push(d.to_vec()),
            DtlsEvent::Closed => seen.closed = true,
            DtlsEvent::Failed(e) => seen.failed = Some(e),
        }
    }
}

/// Moves every queued datagram from `from` to `to`, checking the MTU; returns the count.
fn deliver(from: &mut DtlsEndpoint, to: &mut DtlsEndpoint, now: Instant, mtu: usize) -> usize {
    let mut n = 0;
    while let Some(d) = from.poll_transmit().map(<[u8]>::to_vec) {
        assert!(
            d.len() <= mtu,
            "datagram of {} bytes exceeds MTU {mtu}",
            d.len()
        );
        to.handle_datagram(now, &d);
        n += 1;
    }
    n
}

fn pump(
    a: &mut DtlsEndpoint,
    b: &mut DtlsEndpoint,
    now: Instant,
    mtu: usize,
    sa: &mut Seen,
    sb: &mut Seen,
) {
    for _ in 0..20 {
        let moved = deliver(a, b, now, mtu) + deliver(b, a, now, mtu);
        drain_events(a, sa);
        drain_events(b, sb);
        if moved == 0 {
            break;
        }
    }
}

fn context(mtu: usize) -> DtlsContext {
    let config = DtlsConfig {
        mtu,
        ..DtlsConfig::default()
    };
    DtlsContext::new(DtlsCertificate::generate().expect("certificate"), config).expect("context")
}

fn sha256_fingerprint(der: &[u8]) -> Fingerprint {
    Fingerprint::from_sha256(Sha256::digest(der).into())
}

/// Runs a full handshake with `client_ctx` as client; returns the endpoints and what they saw.
fn handshake(
    client_ctx: &DtlsContext,
    server_ctx: &DtlsContext,
    mtu: usize,
) -> (DtlsEndpoint, DtlsEndpoint, Seen, Seen, Instant) {
    let now = Instant::now();
    let mut client =
        DtlsEndpoint::new(client_ctx, DtlsRole::Client, *server_ctx.fingerprint()).expect("client");
    let mut server =
        DtlsEndpoint::new(server_ctx, DtlsRole::Server, *client_ctx.fingerprint()).expect("server");
    assert_eq!(client.poll_timeout(), None, "idle endpoints have no timer");
    client.handle_timeout(now);
    assert!(
        client.poll_timeout().is_some(),
        "a client waiting for flight 2 has a timer"
    );
    let (mut sc, mut ss) = (Seen::default(), Seen::default());
    pump(&mut client, &mut server, now, mtu, &mut sc, &mut ss);
    (client, server, sc, ss, now)
}

fn check_connected(
    client_ctx: &DtlsContext,
    server_ctx: &DtlsContext,
    client: &DtlsEndpoint,
    server: &DtlsEndpoint,
    sc: &Seen,
    ss: &Seen,
) {
    assert!(sc.failed.is_none() && ss.failed.is_none(), "{sc:?} {ss:?}");
    assert!(client.is_connected() && server.is_connected());
    assert_eq!(client.poll_timeout(), None);
    assert_eq!(server.poll_timeout(), None);
    let (c_profile, c_keys, c_peer_fp, c_peer_der) =
        sc.connected.clone().expect("client connected");
    let (s_profile, s_keys, s_peer_fp, s_peer_der) =
        ss.connected.clone().expect("server connected");
    // Peer certificates are what the other side presented, fingerprinted independently.
    assert_eq!(c_peer_der, server_ctx.certificate().certificate_der());
    assert_eq!(s_peer_der, client_ctx.certificate().certificate_der());
    assert_eq!(c_peer_fp, sha256_fingerprint(&c_peer_der));
    assert_eq!(s_peer_fp, sha256_fingerprint(&s_peer_der));
    assert_eq!(&c_peer_fp, server_ctx.fingerprint());
    // Both offer all three profiles; the server's first preference wins.
    assert_eq!(c_profile, Some(SrtpProfile::AeadAes128Gcm));
    assert_eq!(s_profile, c_profile);
    let (ck, sk) = (c_keys.expect("client keys"), s_keys.expect("server keys"));
    assert_eq!(ck.as_bytes(), sk.as_bytes());
    assert_eq!(ck.as_bytes().len(), 56);
    assert_ne!(ck.as_bytes(), &[0u8; 56][..]);
    assert_eq!(ck.local_master_key(), sk.remote_master_key());
    assert_eq!(ck.local_master_salt(), sk.remote_master_salt());
    assert_ne!(ck.local_master_key(), ck.remote_master_key());
}

#[test]
fn handshake_exports_identical_keys_and_carries_data_both_ways() {
    let (ctx_a, ctx_b) = (context(1200), context(1200));
    // Both role assignments, with the same identities.
    for (client_ctx, server_ctx) in [(&ctx_a, &ctx_b), (&ctx_b, &ctx_a)] {
        let (mut client, mut server, mut sc, mut ss, now) = handshake(client_ctx, server_ctx, 1200);
        check_connected(client_ctx, server_ctx, &client, &server, &sc, &ss);

        let max = client.max_application_data_len();
        assert_eq!(max, 1200 - 37);
        let big: Vec<u8> = (0..max).map(|i| i as u8).collect();
        client.send_application_data(b"from client").expect("send");
        client.send_application_data(&big).expect("send max");
        server.send_application_data(b"from server").expect("send");
        assert_eq!(
            server.send_application_data(&vec![0; max + 1]),
            Err(SendError::TooLarge { len: max + 1, max })
        );
        pump(&mut client, &mut server, now, 1200, &mut sc, &mut ss);
        assert_eq!(ss.data, vec![b"from client".to_vec(), big]);
        assert_eq!(sc.data, vec![b"from server".to_vec()]);
    }
}

#[test]
fn small_mtu_fragments_the_handshake_and_no_datagram_exceeds_it() {
    let (ctx_c, ctx_s) = (context(300), context(300));
    let (mut client, mut server, mut sc, mut ss, now) = handshake(&ctx_c, &ctx_s, 300);
    check_connected(&ctx_c, &ctx_s, &client, &server, &sc, &ss);
    let max = client.max_application_data_len();
    client.send_application_data(&vec![7; max]).expect("send");
    pump(&mut client, &mut server, now, 300, &mut sc, &mut ss);
    assert_eq!(ss.data, vec![vec![7; max]]);
}

#[test]
fn fingerprint_mismatch_fails_both_sides_with_a_clear_error() {
    let (ctx_c, ctx_s) = (context(1200), context(1200));
    let wrong = *context(1200).fingerprint();

    // The client expects another server certificate.
    let now = Instant::now();
    let mut client = DtlsEndpoint::new(&ctx_c, DtlsRole::Client, wrong).expect("client");
    let mut server =
        DtlsEndpoint::new(&ctx_s, DtlsRole::Server, *ctx_c.fingerprint()).expect("server");
    client.handle_timeout(now);
    let (mut sc, mut ss) = (Seen::default(), Seen::default());
    pump(&mut client, &mut server, now, 1200, &mut sc, &mut ss);
    assert_eq!(
        sc.failed,
        Some(DtlsError::FingerprintMismatch {
            expected: wrong,
            actual: *ctx_s.fingerprint(),
        })
    );
    assert!(sc.connected.is_none() && ss.connected.is_none());
    // The server learns through the client's alert.
    assert!(
        matches!(&ss.failed, Some(DtlsError::Handshake(reason)) if reason.contains("alert")),
        "{:?}",
        ss.failed
    );
    let message = sc.failed.expect("failed").to_string();
    assert!(
        message.contains(&ctx_s.fingerprint().to_string()),
        "{message}"
    );
    assert_eq!(client.send_application_data(b"x"), Err(SendError::Closed));

    // The server expects another client certificate.
    let mut client =
        DtlsEndpoint::new(&ctx_c, DtlsRole::Client, *ctx_s.fingerprint()).expect("client");
    let mut server = DtlsEndpoint::new(&ctx_s, DtlsRole::Server, wrong).expect("server");
    client.handle_timeout(now);
    let (mut sc, mut ss) = (Seen::default(), Seen::default());
    pump(&mut client, &mut server, now, 1200, &mut sc, &mut ss);
    assert_eq!(
        ss.failed,
        Some(DtlsError::FingerprintMismatch {
            expected: wrong,
            actual: *ctx_c.fingerprint(),
        })
    );
    assert!(ss.connected.is_none() && sc.connected.is_none());
    assert!(
        sc.failed.is_some(),
        "client must learn of the failure: {sc:?}"
    );
}

#[test]
fn close_sends_close_notify() {
    let (ctx_c, ctx_s) = (context(1200), context(1200));
    let (mut client, mut server, mut sc, mut ss, now) = handshake(&ctx_c, &ctx_s, 1200);
    check_connected(&ctx_c, &ctx_s, &client, &server, &sc, &ss);
    server.close();
    // close_notify is a single encrypted alert record: 13 header + 8 nonce + 2 + 16 tag.
    let alert = server.poll_transmit().expect("close_notify").to_vec();
    assert_eq!(alert[0], 21, "content type alert");
    assert_eq!(alert.len(), 13 + 8 + 2 + 16);
    client.handle_datagram(now, &alert);
    drain_events(&mut client, &mut sc);
    drain_events(&mut server, &mut ss);
    assert!(sc.closed && ss.closed);
    assert!(client.is_terminated() && server.is_terminated());
    assert_eq!(server.send_application_data(b"x"), Err(SendError::Closed));
}

/// Delivers each datagram twice, preceded by noise: an application-data record of a wrong
/// epoch and a truncated copy.
fn noisy_deliver(from: &mut DtlsEndpoint, to: &mut DtlsEndpoint, now: Instant) -> usize {
    let mut batch = Vec::new();
    while let Some(d) = from.poll_transmit() {
        batch.push(d.to_vec());
    }
    for d in &batch {
        to.handle_datagram(now, &[23, 254, 253, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        to.handle_datagram(now, &d[..d.len() / 2]);
        to.handle_datagram(now, d);
        to.handle_datagram(now, d);
    }
    batch.len()
}

#[test]
fn garbage_and_duplicates_do_not_break_the_handshake() {
    let (ctx_c, ctx_s) = (context(1200), context(1200));
    let now = Instant::now();
    let mut client =
        DtlsEndpoint::new(&ctx_c, DtlsRole::Client, *ctx_s.fingerprint()).expect("client");
    let mut server =
        DtlsEndpoint::new(&ctx_s, DtlsRole::Server, *ctx_c.fingerprint()).expect("server");
    client.handle_timeout(now);
    let (mut sc, mut ss) = (Seen::default(), Seen::default());
    for _ in 0..10 {
        let mut moved = 0;
        moved += noisy_deliver(&mut client, &mut server, now);
        moved += noisy_deliver(&mut server, &mut client, now);
        drain_events(&mut client, &mut sc);
        drain_events(&mut server, &mut ss);
        if moved == 0 {
            break;
        }
    }
    check_connected(&ctx_c, &ctx_s, &client, &server, &sc, &ss);
}

#[test]
fn unanswered_handshake_times_out_on_simulated_time() {
    let ctx_c = context(1200);
    let base = Instant::now();
    let mut client =
        DtlsEndpoint::new(&ctx_c, DtlsRole::Client, *ctx_c.fingerprint()).expect("client");
    client.handle_timeout(base);
    assert!(client.poll_transmit().is_some(), "ClientHello");
    let mut now = base;
    let mut seen = Seen::default();
    while let Some(t) = client.poll_timeout() {
        assert!(t > now, "timer must move forward");
        now = t;
        client.handle_timeout(now);
        while client.poll_transmit().is_some() {}
        drain_events(&mut client, &mut seen);
    }
    assert_eq!(
        seen.failed,
        Some(DtlsError::HandshakeTimeout(
            DtlsConfig::default().handshake_timeout
        ))
    );
    assert!(now >= base + DtlsConfig::default().handshake_timeout);
    assert!(now < base + DtlsConfig::default().handshake_timeout + Duration::from_secs(1));
}

#[test]
fn fingerprint_matches_an_independent_sha256_of_the_certificate() {
    let cert = DtlsCertificate::generate().expect("certificate");
    let der = cert.certificate_der();
    let digest = Sha256::digest(&der);
    assert_eq!(cert.fingerprint().sha256()[..], digest[..]);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(
        cert.fingerprint().to_string(),
        format!("sha-256 {}", hex.join(":"))
    );
}

#[test]
fn endpoints_and_contexts_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<DtlsEndpoint>();
    assert_send_sync::<DtlsContext>();
    // And they really work on another thread.
    let ctx = context(1200);
    let fp = *ctx.fingerprint();
    let handle = std::thread::spawn(move || {
        let mut ep = DtlsEndpoint::new(&ctx, DtlsRole::Client, fp).expect("client");
        ep.handle_timeout(Instant::now());
        ep.poll_transmit().map(<[u8]>::len)
    });
    let hello_len = handle.join().expect("thread").expect("ClientHello");
    assert!(hello_len > 13, "a record header and a handshake message");
}

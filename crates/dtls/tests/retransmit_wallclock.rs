//! Handshake retransmission when a whole flight is lost.
//!
//! These tests run on the wall clock: OpenSSL decides whether its retransmission timer has
//! expired by `gettimeofday` (see the crate docs), so `now` here is `Instant::now()` and the
//! tests sleep until the endpoint's `poll_timeout`. Each lost flight costs about one second
//! (OpenSSL's initial timeout); the tests run in parallel.
//!
//! DTLS 1.2 flights with a certificate request and no cookie exchange:
//! 1. client: ClientHello
//! 2. server: ServerHello, Certificate, ServerKeyExchange, CertificateRequest, ServerHelloDone
//! 3. client: Certificate, ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished
//! 4. server: ChangeCipherSpec, Finished (recovered only when the client resends flight 3,
//!    which makes the server resend flight 4)

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tympan_dtls::{
    DtlsCertificate, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsEvent, DtlsRole, Fingerprint,
    KeyingMaterial,
};

fn context() -> DtlsContext {
    DtlsContext::new(
        DtlsCertificate::generate().expect("certificate"),
        DtlsConfig::default(),
    )
    .expect("context")
}

fn keys(ep: &mut DtlsEndpoint) -> Option<KeyingMaterial> {
    let mut keys = None;
    while let Some(event) = ep.poll_event() {
        match event {
            DtlsEvent::Connected {
                keying_material, ..
            } => keys = keying_material,
            DtlsEvent::Failed(e) => panic!("failed: {e}"),
            _ => {}
        }
    }
    keys
}

/// Runs a handshake between two of our endpoints, dropping the first transmission of flight
/// `lost` (1-based). Returns the number of timer-driven retransmissions and the elapsed time.
fn handshake_losing_flight(lost: usize) -> (u32, Duration) {
    let (ctx_c, ctx_s) = (context(), context());
    let start = Instant::now();
    let mut client =
        DtlsEndpoint::new(&ctx_c, DtlsRole::Client, *ctx_s.fingerprint()).expect("client");
    let mut server =
        DtlsEndpoint::new(&ctx_s, DtlsRole::Server, *ctx_c.fingerprint()).expect("server");
    client.handle_timeout(start);
    let mut flight = 0;
    let (mut client_keys, mut server_keys) = (None, None);
    while client_keys.is_none() || server_keys.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no recovery from losing flight {lost}"
        );
        let mut moved = false;
        for client_to_server in [true, false] {
            let (from, to) = if client_to_server {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            let mut batch = Vec::new();
            while let Some(d) = from.poll_transmit() {
                batch.push(d.to_vec());
            }
            if batch.is_empty() {
                continue;
            }
            flight += 1;
            moved = true;
            if flight == lost {
                continue;
            }
            let now = Instant::now();
            for d in &batch {
                to.handle_datagram(now, d);
            }
        }
        client_keys = client_keys.or_else(|| keys(&mut client));
        server_keys = server_keys.or_else(|| keys(&mut server));
        if !moved {
            let next = [client.poll_timeout(), server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else {
                panic!("deadlock after losing flight {lost}: nobody has a timer");
            };
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let now = Instant::now();
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
    }
    let (ck, sk) = (client_keys.expect("client"), server_keys.expect("server"));
    assert_eq!(ck.as_bytes(), sk.as_bytes());
    (
        client.retransmissions() + server.retransmissions(),
        start.elapsed(),
    )
}

fn check(lost: usize) {
    let (retransmissions, elapsed) = handshake_losing_flight(lost);
    eprintln!("flight {lost}: {retransmissions} retransmissions, {elapsed:?}");
    assert!(
        retransmissions >= 1,
        "flight {lost}: recovered without a retransmission?"
    );
    // OpenSSL's initial timeout is one second; one retransmission (not a 2 s backoff) must do
    // (the bound leaves room for a loaded CI machine).
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "flight {lost}: took {elapsed:?}"
    );
}

#[test]
fn recovers_from_losing_flight_1_client_hello() {
    check(1);
}

#[test]
fn recovers_from_losing_flight_2_server_hello() {
    check(2);
}

#[test]
fn recovers_from_losing_flight_3_client_finished() {
    check(3);
}

#[test]
fn recovers_from_losing_flight_4_server_finished() {
    check(4);
}

/// The same for the last flight against dimpl as the server: our client must resend flight 3
/// with fresh record numbers so that dimpl resends its flight 4.
#[test]
fn recovers_from_losing_dimpls_last_flight() {
    let ctx = context();
    let ident = DtlsCertificate::generate().expect("certificate");
    let cert = dimpl::DtlsCertificate {
        certificate: ident.certificate_der(),
        private_key: ident.private_key_pkcs8_der(),
    };
    let peer_fp = Fingerprint::from_sha256(Sha256::digest(&cert.certificate).into());
    let start = Instant::now();
    let config = Arc::new(
        dimpl::Config::builder()
            .use_server_cookie(false)
            .build()
            .expect("config"),
    );
    let mut peer = dimpl::Dtls::new_12(config, cert, start);
    let mut ep = DtlsEndpoint::new(&ctx, DtlsRole::Client, peer_fp).expect("endpoint");
    ep.handle_timeout(start);
    let mut buf = vec![0u8; 4096];
    let (mut flight, mut ours, mut theirs) = (0, None, None);
    while ours.is_none() || theirs.is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "no recovery");
        let now = Instant::now();
        let mut moved = false;
        // dimpl wants its logical clock refreshed before it receives packets.
        peer.handle_timeout(now).expect("dimpl timeout");
        let mut batch = Vec::new();
        while let Some(d) = ep.poll_transmit() {
            batch.push(d.to_vec());
        }
        if !batch.is_empty() {
            flight += 1;
            moved = true;
            for d in &batch {
                peer.handle_packet(d).expect("dimpl packet");
            }
        }
        let mut batch = Vec::new();
        loop {
            match peer.poll_output(&mut buf) {
                dimpl::Output::Packet(p) => batch.push(p.to_vec()),
                dimpl::Output::Timeout(_) => break,
                dimpl::Output::KeyingMaterial(km, _) => theirs = Some(km.to_vec()),
                _ => {}
            }
        }
        if !batch.is_empty() {
            flight += 1;
            moved = true;
            // Flight 4 is dimpl's ChangeCipherSpec + Finished.
            if flight != 4 {
                for d in &batch {
                    ep.handle_datagram(now, d);
                }
            }
        }
        if ours.is_none() {
            ours = keys(&mut ep);
        }
        if !moved {
            let next = ep.poll_timeout().unwrap_or(now + Duration::from_millis(50));
            std::thread::sleep(
                next.min(now + Duration::from_millis(50))
                    .saturating_duration_since(Instant::now()),
            );
            ep.handle_timeout(Instant::now());
        }
    }
    assert_eq!(ours.expect("ours").as_bytes(), &theirs.expect("theirs")[..]);
    assert!(ep.retransmissions() >= 1);
}

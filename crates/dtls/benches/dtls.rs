//! In-memory DTLS 1.2: full handshakes per second and 1200-byte application-data records per
//! second (encrypt on one side, decrypt on the other), tympan-dtls (OpenSSL) next to `dimpl`
//! (str0m's sans-IO DTLS, RustCrypto backend) in the same run.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tympan_dtls::{DtlsCertificate, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsEvent, DtlsRole};

const MTU: usize = 1200;
/// AES-GCM record overhead: header 13 + explicit nonce 8 + tag 16; a record of this payload
/// fills a 1200-byte datagram.
const PAYLOAD: usize = MTU - 37;

struct Ours {
    client_ctx: DtlsContext,
    server_ctx: DtlsContext,
}

impl Ours {
    fn new() -> Self {
        let config = DtlsConfig {
            mtu: MTU,
            ..DtlsConfig::default()
        };
        let ctx =
            || DtlsContext::new(DtlsCertificate::generate().expect("cert"), config).expect("ctx");
        Self {
            client_ctx: ctx(),
            server_ctx: ctx(),
        }
    }

    fn handshake(&self, now: Instant) -> (DtlsEndpoint, DtlsEndpoint) {
        let mut c = DtlsEndpoint::new(
            &self.client_ctx,
            DtlsRole::Client,
            *self.server_ctx.fingerprint(),
        )
        .expect("client");
        let mut s = DtlsEndpoint::new(
            &self.server_ctx,
            DtlsRole::Server,
            *self.client_ctx.fingerprint(),
        )
        .expect("server");
        c.handle_timeout(now);
        let mut buf = Vec::with_capacity(MTU);
        while !(c.is_connected() && s.is_connected()) {
            while let Some(d) = c.poll_transmit() {
                buf.clear();
                buf.extend_from_slice(d);
                s.handle_datagram(now, &buf);
            }
            while let Some(d) = s.poll_transmit() {
                buf.clear();
                buf.extend_from_slice(d);
                c.handle_datagram(now, &buf);
            }
            assert!(!c.is_terminated() && !s.is_terminated(), "handshake failed");
        }
        while c.poll_event().is_some() {}
        while s.poll_event().is_some() {}
        (c, s)
    }
}

fn dimpl_cert() -> dimpl::DtlsCertificate {
    let ident = DtlsCertificate::generate().expect("cert");
    dimpl::DtlsCertificate {
        certificate: ident.certificate_der(),
        private_key: ident.private_key_pkcs8_der(),
    }
}

struct Dimpl {
    config: Arc<dimpl::Config>,
    client_cert: dimpl::DtlsCertificate,
    server_cert: dimpl::DtlsCertificate,
}

/// Drains `from`, delivering packets to `to`; returns (packets, connected seen, data seen).
fn dimpl_move(
    from: &mut dimpl::Dtls,
    to: &mut dimpl::Dtls,
    buf: &mut [u8],
    pending: &mut Vec<Vec<u8>>,
) -> (usize, bool, usize) {
    let (mut connected, mut data) = (false, 0);
    pending.clear();
    loop {
        match from.poll_output(buf) {
            dimpl::Output::Packet(p) => pending.push(p.to_vec()),
            dimpl::Output::Timeout(_) => break,
            dimpl::Output::Connected => connected = true,
            dimpl::Output::ApplicationData(d) => data += d.len(),
            _ => {}
        }
    }
    for p in pending.iter() {
        to.handle_packet(p).expect("dimpl packet");
    }
    (pending.len(), connected, data)
}

impl Dimpl {
    fn new() -> Self {
        let config = dimpl::Config::builder()
            .mtu(MTU)
            .use_server_cookie(false)
            // The suite our OpenSSL endpoints negotiate, for a like-for-like record cost.
            .dtls12_cipher_suites(&[
                dimpl::crypto::Dtls12CipherSuite::ECDHE_ECDSA_AES128_GCM_SHA256,
            ])
            .dtls13_cipher_suites(&[])
            .build()
            .expect("config");
        Self {
            config: Arc::new(config),
            client_cert: dimpl_cert(),
            server_cert: dimpl_cert(),
        }
    }

    fn handshake(&self, now: Instant) -> (dimpl::Dtls, dimpl::Dtls) {
        let mut c = dimpl::Dtls::new_12(Arc::clone(&self.config), self.client_cert.clone(), now);
        c.set_active(true);
        let mut s = dimpl::Dtls::new_12(Arc::clone(&self.config), self.server_cert.clone(), now);
        c.handle_timeout(now).expect("timeout");
        s.handle_timeout(now).expect("timeout");
        let mut buf = vec![0u8; 4096];
        let mut pending = Vec::new();
        let (mut cc, mut sc) = (false, false);
        for _ in 0..20 {
            let (n1, c1, _) = dimpl_move(&mut c, &mut s, &mut buf, &mut pending);
            let (n2, s1, _) = dimpl_move(&mut s, &mut c, &mut buf, &mut pending);
            cc |= c1;
            sc |= s1;
            if cc && sc && n1 + n2 == 0 {
                break;
            }
        }
        assert!(cc && sc, "dimpl handshake failed");
        (c, s)
    }
}

fn handshakes(c: &mut Criterion) {
    let ours = Ours::new();
    let theirs = Dimpl::new();
    let now = Instant::now();
    let mut group = c.benchmark_group("dtls_handshake_in_memory");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tympan_openssl", |b| {
        b.iter(|| black_box(ours.handshake(now)))
    });
    group.bench_function("dimpl_rustcrypto", |b| {
        b.iter(|| black_box(theirs.handshake(now)))
    });
    group.finish();
}

fn records(c: &mut Criterion) {
    let payload = vec![0xa5u8; PAYLOAD];
    let now = Instant::now();
    let mut group = c.benchmark_group("dtls_app_data_1200B_record");
    group.throughput(Throughput::Elements(1));

    let ours = Ours::new();
    let (mut tx, mut rx) = ours.handshake(now);
    let mut wire = Vec::with_capacity(MTU);
    group.bench_function("tympan_openssl", |b| {
        b.iter(|| {
            tx.send_application_data(&payload).expect("send");
            let d = tx.poll_transmit().expect("record");
            assert_eq!(d.len(), MTU);
            wire.clear();
            wire.extend_from_slice(d);
            rx.handle_datagram(now, &wire);
            match rx.poll_event() {
                Some(DtlsEvent::ApplicationData(d)) => black_box(d.len()),
                other => panic!("unexpected {other:?}"),
            }
        })
    });

    let theirs = Dimpl::new();
    let (mut ctx, mut crx) = theirs.handshake(now);
    let mut buf = vec![0u8; 4096];
    let mut pending = Vec::new();
    // Settle any post-handshake output first.
    dimpl_move(&mut crx, &mut ctx, &mut buf, &mut pending);
    group.bench_function("dimpl_rustcrypto", |b| {
        b.iter(|| {
            ctx.send_application_data(&payload).expect("send");
            let (n, _, _) = dimpl_move(&mut ctx, &mut crx, &mut buf, &mut pending);
            assert_eq!(n, 1);
            assert_eq!(pending[0].len(), MTU);
            let (_, _, got) = dimpl_move(&mut crx, &mut ctx, &mut buf, &mut pending);
            assert_eq!(got, PAYLOAD);
            black_box(got)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = handshakes, records
}
criterion_main!(benches);

//! The application-data path (send → poll_transmit → handle_datagram → poll_event) makes no
//! Rust heap allocation once warmed up. OpenSSL's own `malloc` is not visible to a Rust global
//! allocator; OpenSSL encrypts and decrypts in its preallocated record buffers.

use std::alloc::System;
use std::time::Instant;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tympan_dtls::{DtlsCertificate, DtlsConfig, DtlsContext, DtlsEndpoint, DtlsEvent, DtlsRole};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn round_trip(
    tx: &mut DtlsEndpoint,
    rx: &mut DtlsEndpoint,
    now: Instant,
    payload: &[u8],
    wire: &mut Vec<u8>,
) {
    tx.send_application_data(payload).expect("send");
    let d = tx.poll_transmit().expect("record");
    wire.clear();
    wire.extend_from_slice(d);
    rx.handle_datagram(now, wire);
    match rx.poll_event() {
        Some(DtlsEvent::ApplicationData(d)) => assert_eq!(d, payload),
        other => panic!("unexpected {other:?}"),
    }
}

// Run without the libtest harness (see Cargo.toml): the counter is process-wide, and the
// harness's own threads allocate now and then, which would make an exact-zero check flaky.
fn main() {
    record_path_does_not_allocate();
    println!("test record_path_does_not_allocate ... ok");
}

fn record_path_does_not_allocate() {
    let ctx = || {
        DtlsContext::new(
            DtlsCertificate::generate().expect("cert"),
            DtlsConfig::default(),
        )
        .expect("ctx")
    };
    let (cc, sc) = (ctx(), ctx());
    let now = Instant::now();
    let mut c = DtlsEndpoint::new(&cc, DtlsRole::Client, *sc.fingerprint()).expect("client");
    let mut s = DtlsEndpoint::new(&sc, DtlsRole::Server, *cc.fingerprint()).expect("server");
    c.handle_timeout(now);
    for _ in 0..10 {
        while let Some(d) = c.poll_transmit().map(<[u8]>::to_vec) {
            s.handle_datagram(now, &d);
        }
        while let Some(d) = s.poll_transmit().map(<[u8]>::to_vec) {
            c.handle_datagram(now, &d);
        }
    }
    while c.poll_event().is_some() {}
    while s.poll_event().is_some() {}
    assert!(c.is_connected() && s.is_connected());
    let payload = vec![0x42u8; c.max_application_data_len()];
    let mut wire = Vec::with_capacity(2048);
    // Warm up the buffer pools in both directions.
    for _ in 0..4 {
        round_trip(&mut c, &mut s, now, &payload, &mut wire);
        round_trip(&mut s, &mut c, now, &payload, &mut wire);
    }
    let region = Region::new(GLOBAL);
    for _ in 0..200 {
        round_trip(&mut c, &mut s, now, &payload, &mut wire);
        round_trip(&mut s, &mut c, now, &payload, &mut wire);
    }
    let stats = region.change();
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
}

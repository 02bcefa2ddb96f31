//! STUN hot paths next to `rtc-stun` (crates.io) in the same run:
//! parse + verify MESSAGE-INTEGRITY + FINGERPRINT of the RFC 5769 request, and
//! build + sign (MESSAGE-INTEGRITY + FINGERPRINT) a binding success response.
//! A counting allocator reports allocations per operation for both.

#![allow(missing_docs)] // criterion_group! generates an undocumented public fn

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use tympan_ice::stun::{Class, IntegrityKey, MessageBuilder, Method, StunMessage, TransactionId};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    GLOBAL.stats().allocations + GLOBAL.stats().reallocations
}

const PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

fn rfc5769_request() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/fuzz-seeds/stun/5.stun"
    ))
    .expect("RFC 5769 vector")
}

fn ours_parse_verify(bytes: &[u8]) -> bool {
    let m = StunMessage::parse(bytes).unwrap();
    m.verify_integrity(PASSWORD.as_bytes()).is_ok() && m.verify_fingerprint().is_ok()
}

fn ours_parse_verify_prekeyed(bytes: &[u8], key: &IntegrityKey) -> bool {
    let m = StunMessage::parse(bytes).unwrap();
    m.verify_integrity_with(key).is_ok() && m.verify_fingerprint().is_ok()
}

fn ours_build(buf: &mut [u8], addr: SocketAddr) -> usize {
    let mut b = MessageBuilder::new(buf, Method::BINDING, Class::Success, TransactionId([9; 12]));
    b.xor_mapped_address(addr)
        .message_integrity(PASSWORD.as_bytes())
        .fingerprint();
    b.finish_len().unwrap()
}

fn theirs_parse_verify(bytes: &[u8], crypto: &dyn rtc_stun::crypto::RTCCrypto) -> bool {
    use rtc_stun::fingerprint::FINGERPRINT;
    use rtc_stun::integrity::MessageIntegrity;
    let mut m = rtc_stun::message::Message::new();
    m.write(bytes).unwrap();
    MessageIntegrity::check(&mut m, PASSWORD.as_bytes(), crypto).is_ok()
        && FINGERPRINT.check(&m).is_ok()
}

fn theirs_build(addr: SocketAddr, crypto: &dyn rtc_stun::crypto::RTCCrypto) -> usize {
    use rtc_stun::fingerprint::FINGERPRINT;
    use rtc_stun::integrity::MessageIntegrity;
    use rtc_stun::message::{BINDING_SUCCESS, Message, TransactionId};
    use rtc_stun::xoraddr::XorMappedAddress;
    let mut m = Message::new();
    m.build(&[
        Box::new(TransactionId([9; 12])),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: addr.ip(),
            port: addr.port(),
        }),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            PASSWORD.to_owned(),
            crypto,
        )),
        Box::new(FINGERPRINT),
    ])
    .unwrap();
    m.raw.len()
}

fn count<T>(f: impl Fn() -> T) -> usize {
    let before = allocations();
    for _ in 0..100 {
        black_box(f());
    }
    (allocations() - before) / 100
}

fn benches(c: &mut Criterion) {
    let bytes = rfc5769_request();
    let provider = rtc_stun::crypto::default_provider().unwrap();
    let crypto = provider.crypto();
    let key = IntegrityKey::new(PASSWORD.as_bytes());
    let addr: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    assert!(ours_parse_verify(&bytes) && theirs_parse_verify(&bytes, crypto));

    let mut buf = [0u8; 256];
    let n = ours_build(&mut buf, addr);
    // Cross-check: rtc-stun accepts what we build, we accept what it builds.
    assert!(theirs_parse_verify(&buf[..n], crypto));
    {
        use rtc_stun::fingerprint::FINGERPRINT;
        use rtc_stun::integrity::MessageIntegrity;
        use rtc_stun::message::{BINDING_SUCCESS, Message, TransactionId};
        use rtc_stun::xoraddr::XorMappedAddress;
        let mut m = Message::new();
        m.build(&[
            Box::new(TransactionId([9; 12])),
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress {
                ip: addr.ip(),
                port: addr.port(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                PASSWORD.to_owned(),
                crypto,
            )),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
        assert_eq!(
            &m.raw[..],
            &buf[..n],
            "both encoders produce the same bytes"
        );
    }

    eprintln!(
        "allocations per op: parse+verify ours {} (pre-keyed {}), rtc-stun {}; build+sign ours {}, rtc-stun {}",
        count(|| ours_parse_verify(&bytes)),
        count(|| ours_parse_verify_prekeyed(&bytes, &key)),
        count(|| theirs_parse_verify(&bytes, crypto)),
        count(|| {
            let mut b = [0u8; 256];
            ours_build(&mut b, addr)
        }),
        count(|| theirs_build(addr, crypto)),
    );

    let mut g = c.benchmark_group("stun_parse_verify_rfc5769_request");
    g.bench_function("tympan", |b| {
        b.iter(|| ours_parse_verify(black_box(&bytes)))
    });
    g.bench_function("tympan_prekeyed", |b| {
        b.iter(|| ours_parse_verify_prekeyed(black_box(&bytes), &key))
    });
    g.bench_function("rtc-stun", |b| {
        b.iter(|| theirs_parse_verify(black_box(&bytes), crypto))
    });
    g.finish();

    let mut g = c.benchmark_group("stun_build_sign_binding_success");
    g.bench_function("tympan", |b| {
        b.iter(|| {
            let mut out = [0u8; 256];
            black_box(ours_build(&mut out, black_box(addr)))
        })
    });
    g.bench_function("rtc-stun", |b| {
        b.iter(|| theirs_build(black_box(addr), crypto))
    });
    g.finish();
}

criterion_group!(stun, benches);
criterion_main!(stun);

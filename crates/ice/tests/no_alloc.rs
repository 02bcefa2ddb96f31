//! The STUN hot paths do not allocate: counted with a global allocator.

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;

use tympan_ice::stun::{Class, IntegrityKey, MessageBuilder, Method, StunMessage, classify};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    GLOBAL.stats().allocations + GLOBAL.stats().reallocations
}

#[test]
fn parse_verify_and_build_sign_do_not_allocate() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/fuzz-seeds/stun/5.stun"
    ))
    .unwrap();
    let key = IntegrityKey::new(b"VOkJxbRl1RmTxUk/WvJxBt");
    let addr = "192.0.2.1:32853".parse().unwrap();
    let mut out = [0u8; 256];
    // The counter is process-wide and the test harness's own thread may allocate now and
    // then, so take the best of several rounds: a per-operation allocation would show up as
    // at least 1000 in every round.
    let mut rounds = Vec::new();
    for _ in 0..5 {
        rounds.push(round(&bytes, &key, addr, &mut out));
    }
    assert_eq!(
        rounds.iter().min(),
        Some(&0),
        "allocations per 1000-iteration round: {rounds:?}"
    );
    assert!(rounds.iter().all(|r| *r < 1000), "{rounds:?}");
}

fn round(bytes: &[u8], key: &IntegrityKey, addr: std::net::SocketAddr, out: &mut [u8]) -> usize {
    let before = allocations();
    let mut ok = 0;
    for _ in 0..1000 {
        let m = StunMessage::parse(bytes).unwrap();
        if m.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBt").is_ok()
            && m.verify_integrity_with(key).is_ok()
            && m.verify_fingerprint().is_ok()
            && m.username().is_some()
            && m.attributes().count() == 6
            && classify(bytes) == tympan_ice::stun::PacketKind::Stun
        {
            ok += 1;
        }
        let mut b = MessageBuilder::new(out, Method::BINDING, Class::Success, m.transaction_id());
        b.xor_mapped_address(addr)
            .message_integrity_with(key)
            .fingerprint();
        let n = b.finish_len().unwrap();
        assert!(n > 0);
    }
    assert_eq!(ok, 1000);
    allocations() - before
}

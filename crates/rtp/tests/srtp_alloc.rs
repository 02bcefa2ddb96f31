//! The SRTP hot path does not allocate: after a stream's first packet (which creates its state),
//! protecting and unprotecting RTP and RTCP performs no heap allocation, for every profile.
//!
//! Counted with a counting global allocator (`stats_alloc`). OpenSSL's own `malloc`s are outside
//! Rust's allocator and so not counted here; the transforms only re-initialise already keyed
//! `EVP_CIPHER_CTX`s with a new IV (see `src/srtp/crypto.rs`), which does not allocate.
//! This file holds a single test so that no other test thread allocates concurrently.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tympan_rtp::srtp::{SrtpConfig, SrtpContext, SrtpMasterKey, SrtpProfile};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn rtp(seq: u16, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0x90, 0x60]);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&[
        0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe, 0xbe, 0xde, 0, 1, 0x10, 7, 0, 0,
    ]);
    buf.extend((0..1200).map(|i| i as u8));
}

fn rtcp(buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0x80, 0xc9, 0, 7, 0xca, 0xfe, 0xba, 0xbe]);
    buf.extend_from_slice(&[0xab; 24]);
}

#[test]
fn protect_and_unprotect_do_not_allocate_per_packet() {
    for profile in SrtpProfile::ALL {
        let key = vec![9u8; profile.master_key_len()];
        let salt = vec![8u8; profile.master_salt_len()];
        let master = SrtpMasterKey::new(profile, &key, &salt).unwrap();
        let mut tx = SrtpContext::new(profile, &master, SrtpConfig::default()).unwrap();
        let mut rx = SrtpContext::new(profile, &master, SrtpConfig::default()).unwrap();
        let mut buf = Vec::with_capacity(1500);

        // First packets create the per-SSRC state (allowed to allocate).
        rtp(65_000, &mut buf);
        tx.protect_rtp(&mut buf).unwrap();
        rx.unprotect_rtp(&mut buf).unwrap();
        rtcp(&mut buf);
        tx.protect_rtcp(&mut buf).unwrap();
        rx.unprotect_rtcp(&mut buf).unwrap();

        let region = Region::new(GLOBAL);
        let mut bytes = 0usize;
        // 2000 packets: crosses the sequence-number wrap (ROC 0 -> 1).
        for i in 1..=2000u16 {
            rtp(65_000u16.wrapping_add(i), &mut buf);
            tx.protect_rtp(&mut buf).unwrap();
            let n = rx.unprotect_rtp(&mut buf).unwrap();
            bytes += n;
            if i % 10 == 0 {
                rtcp(&mut buf);
                tx.protect_rtcp(&mut buf).unwrap();
                bytes += rx.unprotect_rtcp(&mut buf).unwrap();
            }
        }
        let stats = region.change();
        assert_eq!(
            bytes,
            2000 * 1220 + 200 * 32,
            "{profile}: every packet round-tripped"
        );
        assert_eq!(rx.rtp_roc(0xcafebabe), Some(1));
        assert_eq!(
            (stats.allocations, stats.reallocations),
            (0, 0),
            "{profile}: the hot path allocated"
        );
    }
}

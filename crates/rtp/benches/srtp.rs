//! SRTP protect and unprotect of a 1200-octet payload, tympan vs `rtc-srtp`, in the same run.
//! (The libsrtp2 comparison lives in `crates/rtp/oracle/benches/libsrtp.rs`, which needs libclang.)
//!
//! Reading the GCM numbers: our protect and unprotect cost the same (callgrind: ~5.6 k
//! instructions per seal and per open); rtc-srtp's (ring's) GCM encrypt is several times faster
//! than its own decrypt, which is why the protect ratio is far below the unprotect one. On a
//! loaded machine, run the benches 2–3 times and compare within a run.
//!
//! Both sides run with a 128-packet replay window (rtc-srtp defaults to none; we enable it so that
//! both do the same work). Unprotect needs a fresh packet per iteration; a tympan sender produces
//! it in criterion's untimed setup.

#![allow(missing_docs)] // criterion_group! generates an undocumented public fn

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use tympan_rtp::srtp::{SrtpConfig, SrtpContext, SrtpMasterKey, SrtpProfile};

const PAYLOAD: usize = 1200;

/// A plain RTP packet: 12-octet header and a 1200-octet payload.
fn packet(seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(1500);
    p.extend_from_slice(&[0x80, 0x60]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x10, 0, 0xca, 0xfe, 0xba, 0xbe]);
    p.extend((0..PAYLOAD).map(|i| i as u8));
    p
}

fn master(profile: SrtpProfile) -> (Vec<u8>, Vec<u8>) {
    let key = (0..profile.master_key_len() as u8)
        .map(|i| i.wrapping_mul(31))
        .collect();
    let salt = (0..profile.master_salt_len() as u8)
        .map(|i| i.wrapping_mul(17))
        .collect();
    (key, salt)
}

fn tympan(profile: SrtpProfile) -> SrtpContext {
    let (key, salt) = master(profile);
    let master = SrtpMasterKey::new(profile, &key, &salt).unwrap();
    SrtpContext::new(profile, &master, SrtpConfig::default()).unwrap()
}

fn rtc(profile: SrtpProfile) -> Context {
    let (key, salt) = master(profile);
    let rtc_profile = match profile {
        SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        _ => ProtectionProfile::AeadAes128Gcm,
    };
    let provider = rtc_srtp::crypto::default_provider().expect("rtc-srtp's ring provider");
    Context::new(
        &key,
        &salt,
        rtc_profile,
        Some(srtp_replay_protection(128)),
        Some(srtcp_replay_protection(128)),
        provider.crypto(),
    )
    .unwrap()
}

/// An endless supply of protected packets with consecutive sequence numbers from 1.
fn feeder(profile: SrtpProfile) -> impl FnMut() -> Vec<u8> {
    let mut sender = tympan(profile);
    let mut seq = 0u16;
    move || {
        seq = seq.wrapping_add(1);
        let mut p = packet(seq);
        sender.protect_rtp(&mut p).unwrap();
        p
    }
}

fn bench(c: &mut Criterion) {
    for profile in [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AeadAes128Gcm] {
        let mut group = c.benchmark_group(format!("srtp_protect_1200/{profile}"));
        group.throughput(criterion::Throughput::Bytes(PAYLOAD as u64));
        let mut tx = tympan(profile);
        let mut buf = packet(0);
        let mut seq = 0u16;
        group.bench_function(BenchmarkId::from_parameter("tympan"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf.truncate(12 + PAYLOAD);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                tx.protect_rtp(&mut buf).unwrap();
            })
        });
        let mut rtc_tx = rtc(profile);
        let mut buf = packet(0);
        let mut seq = 0u16;
        group.bench_function(BenchmarkId::from_parameter("rtc-srtp"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                rtc_tx.encrypt_rtp(&buf).unwrap()
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("srtp_unprotect_1200/{profile}"));
        group.throughput(criterion::Throughput::Bytes(PAYLOAD as u64));
        let mut rx = tympan(profile);
        let mut next = feeder(profile);
        group.bench_function(BenchmarkId::from_parameter("tympan"), |b| {
            b.iter_batched_ref(
                &mut next,
                |p| {
                    rx.unprotect_rtp(p).unwrap();
                },
                BatchSize::SmallInput,
            )
        });
        let mut rtc_rx = rtc(profile);
        let mut next = feeder(profile);
        group.bench_function(BenchmarkId::from_parameter("rtc-srtp"), |b| {
            b.iter_batched_ref(
                &mut next,
                |p| rtc_rx.decrypt_rtp(p).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

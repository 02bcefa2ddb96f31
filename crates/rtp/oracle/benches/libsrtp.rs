//! SRTP protect/unprotect of a 1200-octet RTP payload: tympan vs raw libsrtp2, same run.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tympan_rtp::srtp::SrtpProfile;
use tympan_rtp_srtp_oracle::{libsrtp_session, random_master, tympan_context};

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

fn bench(c: &mut Criterion) {
    for profile in [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AeadAes128Gcm] {
        let (master, key_salt) = random_master(profile, &mut StdRng::seed_from_u64(1));
        let mut group = c.benchmark_group(format!("srtp_protect_1200/{profile}"));
        group.throughput(criterion::Throughput::Bytes(PAYLOAD as u64));

        let mut tx = tympan_context(profile, &master);
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
        let mut lib_tx = libsrtp_session(profile, &key_salt, true);
        let mut buf = packet(0);
        let mut seq = 0u16;
        group.bench_function(BenchmarkId::from_parameter("libsrtp2"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf.truncate(12 + PAYLOAD);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                lib_tx.protect(&mut buf).unwrap();
            })
        });
        group.finish();

        // Unprotect: every iteration needs a fresh (non-replayed) packet, protected in the
        // untimed setup by a libsrtp sender (the same bytes tympan's would produce).
        let mut group = c.benchmark_group(format!("srtp_unprotect_1200/{profile}"));
        group.throughput(criterion::Throughput::Bytes(PAYLOAD as u64));
        // Each receiver gets its own feeder, so that it sees one contiguous sequence from 1.
        let feeder = || {
            let mut sender = libsrtp_session(profile, &key_salt, true);
            let mut seq = 0u16;
            move || {
                seq = seq.wrapping_add(1);
                let mut p = packet(seq);
                sender.protect(&mut p).unwrap();
                p
            }
        };
        let mut next = feeder();
        let mut rx = tympan_context(profile, &master);
        group.bench_function(BenchmarkId::from_parameter("tympan"), |b| {
            b.iter_batched_ref(
                &mut next,
                |p| {
                    rx.unprotect_rtp(p).unwrap();
                },
                BatchSize::SmallInput,
            )
        });
        let mut lib_rx = libsrtp_session(profile, &key_salt, false);
        let mut next = feeder();
        group.bench_function(BenchmarkId::from_parameter("libsrtp2"), |b| {
            b.iter_batched_ref(
                &mut next,
                |p| {
                    lib_rx.unprotect(p).unwrap();
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

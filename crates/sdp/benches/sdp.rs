//! Parse and serialise a Chrome-style BUNDLE offer (audio, video with RTX and simulcast, data
//! channel) with tympan-sdp, rtc-sdp and webrtc-sdp in the same run.

use std::hint::black_box;
use std::io::Cursor;

use std::time::{Duration, Instant};

use criterion::Criterion;

const OFFER: &str = include_str!("../testdata/chrome-bundle-offer.sdp");

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("sdp_parse_chrome_offer");
    group.bench_function("tympan", |b| {
        b.iter(|| tympan_sdp::parse(black_box(OFFER)).expect("parse"))
    });
    group.bench_function("rtc-sdp", |b| {
        b.iter(|| {
            rtc_sdp::SessionDescription::unmarshal(&mut Cursor::new(black_box(OFFER)))
                .expect("parse")
        })
    });
    group.bench_function("webrtc-sdp", |b| {
        b.iter(|| webrtc_sdp::parse_sdp(black_box(OFFER), false).expect("parse"))
    });
    group.finish();
}

fn serialise(c: &mut Criterion) {
    let ours = tympan_sdp::parse(OFFER).expect("parse");
    let rtc = rtc_sdp::SessionDescription::unmarshal(&mut Cursor::new(OFFER)).expect("parse");
    let moz = webrtc_sdp::parse_sdp(OFFER, false).expect("parse");
    let mut group = c.benchmark_group("sdp_serialise_chrome_offer");
    group.bench_function("tympan", |b| b.iter(|| black_box(&ours).to_string()));
    group.bench_function("rtc-sdp", |b| b.iter(|| black_box(&rtc).marshal()));
    group.bench_function("webrtc-sdp", |b| b.iter(|| black_box(&moz).to_string()));
    group.finish();
}

mod group {
    use super::{parse, serialise};
    criterion::criterion_group!(benches, parse, serialise);
}
/// The machine is shared (load often above the core count), which makes back-to-back criterion
/// runs of two libraries unfair. This runs them interleaved, in short batches, and keeps each
/// library's fastest batch: the closest thing to an uncontended measurement.
fn interleaved_minimum() {
    const ROUNDS: usize = 400;
    const BATCH: u32 = 10;
    let ours = tympan_sdp::parse(OFFER).expect("parse");
    let rtc = rtc_sdp::SessionDescription::unmarshal(&mut Cursor::new(OFFER)).expect("parse");
    let moz = webrtc_sdp::parse_sdp(OFFER, false).expect("parse");
    let runs: [(&str, &dyn Fn()); 6] = [
        ("parse tympan", &|| {
            drop(black_box(tympan_sdp::parse(black_box(OFFER))))
        }),
        ("parse rtc-sdp", &|| {
            drop(black_box(rtc_sdp::SessionDescription::unmarshal(
                &mut Cursor::new(black_box(OFFER)),
            )))
        }),
        ("parse webrtc-sdp", &|| {
            drop(black_box(webrtc_sdp::parse_sdp(black_box(OFFER), false)))
        }),
        ("serialise tympan", &|| {
            drop(black_box(black_box(&ours).to_string()))
        }),
        ("serialise rtc-sdp", &|| {
            drop(black_box(black_box(&rtc).marshal()))
        }),
        ("serialise webrtc-sdp", &|| {
            drop(black_box(black_box(&moz).to_string()))
        }),
    ];
    let mut best = [Duration::MAX; 6];
    for _ in 0..ROUNDS {
        for (i, (_, run)) in runs.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..BATCH {
                run();
            }
            best[i] = best[i].min(start.elapsed() / BATCH);
        }
    }
    println!("\ninterleaved, fastest of {ROUNDS} batches of {BATCH}:");
    for (i, (name, _)) in runs.iter().enumerate() {
        let base = best[if i < 3 { 0 } else { 3 }];
        println!(
            "  {name:<22} {:>9.2} µs   ratio vs tympan {:.2}",
            best[i].as_secs_f64() * 1e6,
            best[i].as_secs_f64() / base.as_secs_f64()
        );
    }
}

fn main() {
    group::benches();
    interleaved_minimum();
    Criterion::default().configure_from_args().final_summary();
}

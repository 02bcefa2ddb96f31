//! RTP/RTCP hot-path benches, tympan-rtp next to rtc-rtp / rtc-rtcp (webrtc-rs) in the same run.
//!
//! - `rtp_parse_rewrite`: parse a 1200-byte video packet with mid, abs-send-time and
//!   transport-cc extensions, rewrite SSRC, sequence, timestamp and the transport-cc value.
//!   Ours rewrites in place; rtc-rtp unmarshals, edits the struct and marshals into a buffer
//!   (it has no in-place path).
//! - `rtcp_compound_parse`: SR + SDES + NACK + REMB + TWCC compound, reading every field.
//! - TWCC feedback, 200 packets (every 17th lost, a negative (large) delta every 50th), three
//!   views of the same feedback, each side measured in the same run:
//!   - `twcc_serialize`: the same work on both sides, serialising an already built feedback.
//!     Ours writes a parsed [`TwccFeedback`] (chunk words and delta bytes already encoded) with
//!     `RtcpWriter::transport_cc_copy`; rtc-rtcp marshals its `TransportLayerCc` (chunks and
//!     deltas already chosen, symbols/deltas still to be packed into bits/bytes).
//!   - `twcc_feedback_build`: per-packet statuses (`Option<delta ticks>`) to bytes. Ours chooses
//!     the chunks (`RtcpWriter::transport_cc`); rtc-rtcp marshals a pre-chunked struct (it has
//!     no encoder from per-packet statuses), so its chunking is NOT included here.
//!   - `twcc_records_to_bytes`: end to end, from received `(transport seq, arrival µs)` records
//!     to feedback bytes. Ours resets a long-lived [`TwccReceiver`], feeds it and calls
//!     `build_feedback`. rtc-rtcp
//!     has no feedback builder, so `theirs_records_to_bytes` is the straightforward code a user
//!     of rtc-rtcp writes (the same greedy chunk choice as webrtc-rs' interceptor): per-packet
//!     symbols and `RecvDelta`s into `Vec`s, then run-length / 1-bit / 2-bit
//!     `PacketStatusChunk`s, then `marshal_to` into the same buffer.
//!
//! A counting global allocator reports allocations per iteration for both sides before the
//! timed runs (ours must be 0).
#![allow(missing_docs)] // criterion_group! generates an undocumented public fn

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use rtc_shared::marshal::{Marshal, Unmarshal};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tympan_rtp::rtcp::{
    CompoundIter, NackPair, ReportBlock, RtcpPacket, RtcpWriter, SdesItem, SenderInfo,
    TwccFeedback, TwccHeader,
};
use tympan_rtp::rtp::{RtpPacketMut, RtpWriter};
use tympan_rtp::twcc::TwccReceiver;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Fastest of many interleaved batches, in ns per call, for each of `fs`: on a machine shared
/// with other work the minimum is what the code costs when it gets a core (criterion's medians
/// of the same run are reported next to it).
fn fastest_batches(fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    const BATCHES: usize = 400;
    const PER_BATCH: u32 = 200;
    let mut best = vec![f64::INFINITY; fs.len()];
    for _ in 0..BATCHES {
        for (f, best) in fs.iter_mut().zip(&mut best) {
            let t = Instant::now();
            for _ in 0..PER_BATCH {
                f();
            }
            *best = best.min(t.elapsed().as_nanos() as f64 / f64::from(PER_BATCH));
        }
    }
    best
}

fn allocs_per_iter(mut f: impl FnMut()) -> f64 {
    f();
    let before = GLOBAL.stats().allocations;
    for _ in 0..1000 {
        f();
    }
    (GLOBAL.stats().allocations - before) as f64 / 1000.0
}

const TWCC_ID: u8 = 3;

fn video_packet() -> Vec<u8> {
    let exts: [(u8, &[u8]); 3] = [(1, b"0"), (2, &[0x12, 0x34, 0x56]), (TWCC_ID, &[0, 1])];
    let payload = [0xABu8; 1200 - 12 - 16];
    let w = RtpWriter {
        extensions: &exts,
        marker: true,
        ..RtpWriter::new(96, 1000, 90_000, 0x1234_5678, &payload)
    };
    let mut buf = vec![0u8; w.encoded_len()];
    w.write(&mut buf).unwrap();
    buf
}

fn ours_rewrite(buf: &mut [u8], i: u32) -> u32 {
    let mut p = RtpPacketMut::parse(buf).unwrap();
    let seq = p.sequence_number();
    p.set_ssrc(0xCAFE_BABE);
    p.set_sequence_number(seq.wrapping_add(7));
    p.set_timestamp(p.timestamp().wrapping_add(3000));
    p.set_extension(TWCC_ID, &(i as u16).to_be_bytes()).unwrap();
    p.ssrc()
}

fn theirs_rewrite(raw: &Bytes, out: &mut [u8], i: u32) -> usize {
    let mut p = rtc_rtp::packet::Packet::unmarshal(&mut raw.clone()).unwrap();
    p.header.ssrc = 0xCAFE_BABE;
    p.header.sequence_number = p.header.sequence_number.wrapping_add(7);
    p.header.timestamp = p.header.timestamp.wrapping_add(3000);
    p.header
        .set_extension(TWCC_ID, Bytes::copy_from_slice(&(i as u16).to_be_bytes()))
        .unwrap();
    p.marshal_to(out).unwrap()
}

fn twcc_deltas() -> Vec<Option<i16>> {
    (0..200)
        .map(|i| {
            if i % 17 == 5 {
                None
            } else if i % 50 == 0 {
                Some(-40)
            } else {
                Some((i % 9) as i16 * 4)
            }
        })
        .collect()
}

/// Received `(transport seq, arrival time)` records matching `twcc_deltas()`.
fn twcc_records(t0: Instant) -> Vec<(u16, Instant)> {
    let mut t = 1_000_000i64;
    let mut out = Vec::new();
    for (i, d) in twcc_deltas().into_iter().enumerate() {
        if let Some(d) = d {
            t += i64::from(d) * 250;
            out.push((i as u16, t0 + Duration::from_micros(t as u64)));
        }
    }
    out
}

/// What a user of rtc-rtcp writes to turn received records into feedback bytes: rtc-rtcp only
/// provides the `TransportLayerCc` struct and its marshalling. Same greedy chunk choice as
/// ours: a run of ≥ 14 equal symbols (or the tail) becomes a run-length chunk, else 14 symbols
/// in a 1-bit vector if none is a large delta, else 7 in a 2-bit vector.
fn theirs_records_to_bytes(records: &[(u16, Instant)], base_seq: u16, out: &mut [u8]) -> usize {
    use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
        PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
        SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc,
    };
    let epoch = records[0].1;
    let ref_time = 0u64; // arrival times are taken relative to the first arrival
    let mut prev_ticks = 0i64;
    let span = records[records.len() - 1].0.wrapping_sub(base_seq) as usize + 1;
    let mut symbols = Vec::with_capacity(span);
    let mut recv_deltas = Vec::with_capacity(records.len());
    let mut seq = base_seq;
    for &(s, t) in records {
        while seq != s {
            symbols.push(SymbolTypeTcc::PacketNotReceived);
            seq = seq.wrapping_add(1);
        }
        let us = t.saturating_duration_since(epoch).as_micros() as u64;
        let ticks = (us / 250) as i64;
        let d = ticks - prev_ticks;
        let sym = if (0..=255).contains(&d) {
            SymbolTypeTcc::PacketReceivedSmallDelta
        } else {
            SymbolTypeTcc::PacketReceivedLargeDelta
        };
        symbols.push(sym);
        recv_deltas.push(RecvDelta {
            type_tcc_packet: sym,
            delta: d * 250,
        });
        prev_ticks = ticks;
        seq = seq.wrapping_add(1);
    }
    let mut packet_chunks = Vec::with_capacity(symbols.len() / 7 + 1);
    let mut i = 0;
    while i < symbols.len() {
        let rest = &symbols[i..];
        let run = rest.iter().take_while(|s| **s == rest[0]).count();
        if run >= 14 || run == rest.len() {
            packet_chunks.push(PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: rest[0],
                run_length: run as u16,
            }));
            i += run;
            continue;
        }
        let n14 = rest.len().min(14);
        let (symbol_size, n) = if rest[..n14]
            .iter()
            .all(|s| *s != SymbolTypeTcc::PacketReceivedLargeDelta)
        {
            (SymbolSizeTypeTcc::OneBit, n14)
        } else {
            (SymbolSizeTypeTcc::TwoBit, rest.len().min(7))
        };
        packet_chunks.push(PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
            type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
            symbol_size,
            symbol_list: rest[..n].to_vec(),
        }));
        i += n;
    }
    TransportLayerCc {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence_number: base_seq,
        packet_status_count: symbols.len() as u16,
        reference_time: ref_time as u32 & 0xFF_FFFF,
        fb_pkt_count: 0,
        packet_chunks,
        recv_deltas,
    }
    .marshal_to(out)
    .unwrap()
}

/// Ours end to end: a reset receiver (buffers allocated once per stream in real use), the
/// records into it, then one feedback.
fn ours_records_to_bytes(
    rx: &mut TwccReceiver,
    records: &[(u16, Instant)],
    out: &mut [u8],
) -> usize {
    rx.reset();
    for &(s, t) in records {
        rx.on_packet(s, t);
    }
    let mut w = RtcpWriter::new(out);
    rx.build_feedback(&mut w).unwrap();
    w.len()
}

fn compound() -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let mut w = RtcpWriter::new(&mut buf);
    let rb = ReportBlock {
        ssrc: 2,
        fraction_lost: 3,
        cumulative_lost: 100,
        extended_highest_seq: 70000,
        jitter: 40,
        last_sr: 5,
        delay_since_last_sr: 6,
    };
    w.sender_report(
        &SenderInfo {
            ssrc: 1,
            ntp_time: 0xE000_0000_1234_5678,
            rtp_time: 9000,
            packet_count: 100,
            octet_count: 100_000,
        },
        &[rb, rb],
    )
    .unwrap();
    w.sdes(&[(
        1,
        &[SdesItem {
            kind: 1,
            value: b"tympan-bench-cname",
        }],
    )])
    .unwrap();
    w.nack(
        1,
        2,
        &[
            NackPair {
                pid: 100,
                blp: 0x0505,
            },
            NackPair { pid: 200, blp: 0 },
        ],
    )
    .unwrap();
    w.remb(1, 2_500_000, &[2, 3]).unwrap();
    w.transport_cc(
        &TwccHeader {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_seq: 1000,
            reference_time: 5,
            fb_pkt_count: 1,
        },
        &twcc_deltas()[..60],
    )
    .unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

fn ours_compound(buf: &[u8]) -> u64 {
    let mut acc = 0u64;
    for p in CompoundIter::new(buf) {
        match p.unwrap() {
            RtcpPacket::SenderReport(sr) => {
                acc += sr.info.ntp_time + u64::from(sr.info.packet_count);
                acc += sr
                    .reports
                    .map(|r| u64::from(r.jitter) + u64::from(r.extended_highest_seq))
                    .sum::<u64>();
            }
            RtcpPacket::Sdes(s) => {
                acc += s
                    .chunks()
                    .flat_map(|c| c.items())
                    .map(|i| i.value.len() as u64)
                    .sum::<u64>()
            }
            RtcpPacket::Nack(n) => {
                acc += n.pairs().flat_map(|p| p.lost()).map(u64::from).sum::<u64>()
            }
            RtcpPacket::Remb(r) => acc += r.bitrate + r.ssrcs().map(u64::from).sum::<u64>(),
            RtcpPacket::TransportCc(t) => {
                acc += t
                    .statuses()
                    .map(|s| s.delta.unwrap_or(0) as u64)
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    acc
}

fn theirs_compound(raw: &Bytes) -> u64 {
    use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
    use rtc_rtcp::sender_report::SenderReport;
    use rtc_rtcp::source_description::SourceDescription;
    use rtc_rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
    let mut acc = 0u64;
    for p in rtc_rtcp::packet::unmarshal(&mut raw.clone()).unwrap() {
        let a = p.as_any();
        if let Some(sr) = a.downcast_ref::<SenderReport>() {
            acc += sr.ntp_time + u64::from(sr.packet_count);
            acc += sr
                .reports
                .iter()
                .map(|r| u64::from(r.jitter) + u64::from(r.last_sequence_number))
                .sum::<u64>();
        } else if let Some(s) = a.downcast_ref::<SourceDescription>() {
            acc += s
                .chunks
                .iter()
                .flat_map(|c| &c.items)
                .map(|i| i.text.len() as u64)
                .sum::<u64>();
        } else if let Some(n) = a.downcast_ref::<TransportLayerNack>() {
            acc += n
                .nacks
                .iter()
                .flat_map(|p| p.packet_list())
                .map(u64::from)
                .sum::<u64>();
        } else if let Some(r) = a.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            acc += r.bitrate as u64 + r.ssrcs.iter().map(|s| u64::from(*s)).sum::<u64>();
        } else if let Some(t) = a.downcast_ref::<TransportLayerCc>() {
            acc += t
                .recv_deltas
                .iter()
                .map(|d| (d.delta / 250) as u64)
                .sum::<u64>();
        }
    }
    acc
}

fn benches(c: &mut Criterion) {
    let pkt = video_packet();
    let raw = Bytes::from(pkt.clone());
    let comp = compound();
    let comp_raw = Bytes::from(comp.clone());
    let deltas = twcc_deltas();
    let hdr = TwccHeader {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_seq: 1000,
        reference_time: 5,
        fb_pkt_count: 1,
    };
    let mut tw = vec![0u8; 1500];
    let n = {
        let mut w = RtcpWriter::new(&mut tw);
        w.transport_cc(&hdr, &deltas).unwrap();
        w.len()
    };
    let their_tcc = {
        let ps = rtc_rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(&tw[..n])).unwrap();
        ps[0]
            .as_any()
            .downcast_ref::<rtc_rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc>()
            .unwrap()
            .clone()
    };
    let tw_bytes = tw[..n].to_vec();
    let ours_fb: TwccFeedback<'_> = match CompoundIter::new(&tw_bytes).next() {
        Some(Ok(RtcpPacket::TransportCc(t))) => t,
        _ => panic!("not TWCC"),
    };
    assert_eq!(ours_compound(&comp) > 0, theirs_compound(&comp_raw) > 0);

    // Allocation counts (printed; ours must be zero).
    let mut buf = pkt.clone();
    let mut out = vec![0u8; 1500];
    let mut i = 0u32;
    let a_ours = allocs_per_iter(|| {
        i += 1;
        black_box(ours_rewrite(&mut buf, i));
    });
    let a_theirs = allocs_per_iter(|| {
        black_box(theirs_rewrite(&raw, &mut out, 1));
    });
    let c_ours = allocs_per_iter(|| {
        black_box(ours_compound(&comp));
    });
    let c_theirs = allocs_per_iter(|| {
        black_box(theirs_compound(&comp_raw));
    });
    let t_ours = allocs_per_iter(|| {
        let mut w = RtcpWriter::new(&mut out);
        w.transport_cc(&hdr, &deltas).unwrap();
        black_box(w.len());
    });
    let t_theirs = allocs_per_iter(|| {
        black_box(their_tcc.marshal_to(&mut out).unwrap());
    });
    let s_ours = allocs_per_iter(|| {
        let mut w = RtcpWriter::new(&mut out);
        w.transport_cc_copy(&ours_fb).unwrap();
        black_box(w.len());
    });
    let records = twcc_records(Instant::now());
    let mut fbuf = vec![0u8; 1500];
    let mut rx = TwccReceiver::new(1, 2, 256);
    let r_ours = allocs_per_iter(|| {
        black_box(ours_records_to_bytes(&mut rx, &records, &mut fbuf));
    });
    let r_theirs = allocs_per_iter(|| {
        black_box(theirs_records_to_bytes(&records, 0, &mut out));
    });
    // Both end-to-end paths encode the same statuses as the reference feedback.
    {
        let n = theirs_records_to_bytes(&records, 0, &mut out);
        let theirs: Vec<_> = match CompoundIter::new(&out[..n]).next() {
            Some(Ok(RtcpPacket::TransportCc(t))) => t.statuses().map(|s| s.delta).collect(),
            _ => panic!("their feedback does not parse"),
        };
        // Index 0 is relative to the reference time, not to a previous packet.
        assert_eq!(theirs[1..], deltas[1..]);
        let n = ours_records_to_bytes(&mut rx, &records, &mut fbuf);
        let ours: Vec<_> = match CompoundIter::new(&fbuf[..n]).next() {
            Some(Ok(RtcpPacket::TransportCc(t))) => t.statuses().map(|s| s.delta).collect(),
            _ => panic!("our feedback does not parse"),
        };
        assert_eq!(ours.len(), 200);
        assert_eq!(ours[1..], deltas[1..], "same statuses");
    }
    println!(
        "allocations per op: rtp_parse_rewrite ours {a_ours} theirs {a_theirs}; rtcp_compound_parse ours {c_ours} theirs {c_theirs}; twcc_feedback_build ours {t_ours} theirs {t_theirs}; twcc_serialize ours {s_ours} theirs {t_theirs}; twcc_records_to_bytes ours {r_ours} theirs {r_theirs}"
    );
    assert_eq!(
        (a_ours, c_ours, t_ours, s_ours, r_ours),
        (0.0, 0.0, 0.0, 0.0, 0.0),
        "tympan hot paths must not allocate"
    );

    // Fastest interleaved batches of the TWCC comparisons (see `fastest_batches`).
    {
        let mut out2 = vec![0u8; 1500];
        let (mut a, mut b, mut c2, mut d) = (
            || {
                black_box(ours_records_to_bytes(
                    &mut rx,
                    black_box(&records),
                    &mut fbuf,
                ));
            },
            || {
                black_box(theirs_records_to_bytes(black_box(&records), 0, &mut out));
            },
            || {
                let mut w = RtcpWriter::new(&mut out2);
                w.transport_cc(black_box(&hdr), black_box(&deltas)).unwrap();
                black_box(w.len());
            },
            || {
                black_box(black_box(&their_tcc).marshal_to(&mut tw).unwrap());
            },
        );
        let t = fastest_batches(&mut [&mut a, &mut b, &mut c2, &mut d]);
        println!(
            "fastest batches: twcc_records_to_bytes tympan {:.0} ns, rtc-rtcp {:.0} ns, ratio {:.2}; twcc_feedback_build tympan {:.0} ns, rtc-rtcp {:.0} ns, ratio {:.2}",
            t[0],
            t[1],
            t[1] / t[0],
            t[2],
            t[3],
            t[3] / t[2]
        );
    }

    let mut g = c.benchmark_group("rtp_parse_rewrite");
    g.bench_function("tympan", |b| {
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(ours_rewrite(black_box(&mut buf), i))
        })
    });
    g.bench_function("rtc-rtp", |b| {
        b.iter(|| black_box(theirs_rewrite(black_box(&raw), &mut out, 1)))
    });
    g.finish();

    let mut g = c.benchmark_group("rtcp_compound_parse");
    g.bench_function("tympan", |b| {
        b.iter(|| black_box(ours_compound(black_box(&comp))))
    });
    g.bench_function("rtc-rtcp", |b| {
        b.iter(|| black_box(theirs_compound(black_box(&comp_raw))))
    });
    g.finish();

    let mut g = c.benchmark_group("twcc_serialize");
    g.bench_function("tympan", |b| {
        b.iter(|| {
            let mut w = RtcpWriter::new(&mut out);
            w.transport_cc_copy(black_box(&ours_fb)).unwrap();
            black_box(w.len())
        })
    });
    g.bench_function("rtc-rtcp", |b| {
        b.iter(|| black_box(black_box(&their_tcc).marshal_to(&mut out).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("twcc_records_to_bytes");
    g.bench_function("tympan", |b| {
        b.iter(|| {
            black_box(ours_records_to_bytes(
                &mut rx,
                black_box(&records),
                &mut fbuf,
            ))
        })
    });
    g.bench_function("rtc-rtcp", |b| {
        b.iter(|| black_box(theirs_records_to_bytes(black_box(&records), 0, &mut out)))
    });
    g.finish();

    let mut g = c.benchmark_group("twcc_feedback_build");
    g.bench_function("tympan", |b| {
        b.iter(|| {
            let mut w = RtcpWriter::new(&mut out);
            w.transport_cc(black_box(&hdr), black_box(&deltas)).unwrap();
            black_box(w.len())
        })
    });
    g.bench_function("rtc-rtcp", |b| {
        b.iter(|| black_box(black_box(&their_tcc).marshal_to(&mut out).unwrap()))
    });
    g.finish();
}

criterion_group!(rtp_benches, benches);
criterion_main!(rtp_benches);

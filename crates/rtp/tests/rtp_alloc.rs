//! The RTP/RTCP hot paths do not allocate per packet: RTP parse + rewrite, the forwarding
//! rewriter, RTCP compound parsing, RTCP building (incl. TWCC feedback), the TWCC receiver and
//! sender, the NACK generator and the RTX packet history — after construction/warm-up.
//! Counted with a counting global allocator (`stats_alloc`). This test binary has no libtest
//! harness (`harness = false`), so no harness thread allocates concurrently.

use std::alloc::System;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tympan_rtp::extensions::{ExtensionKind, ExtensionMap};
use tympan_rtp::nack::{NackConfig, NackGenerator, PacketHistory, RtxConfig};
use tympan_rtp::rewriter::{ForwardRewriter, RewriterConfig};
use tympan_rtp::rtcp::{CompoundIter, RtcpPacket, RtcpWriter, SdesItem, TwccHeader};
use tympan_rtp::rtp::{RtpPacket, RtpPacketMut, RtpWriter};
use tympan_rtp::stats::ReceiverStats;
use tympan_rtp::twcc::{TwccReceiver, TwccSender};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    packet_paths_do_not_allocate();
    println!("rtp_alloc: RTP/RTCP/TWCC/NACK paths made no allocation");
}

fn packet_paths_do_not_allocate() {
    let t0 = Instant::now();
    let mut map = ExtensionMap::new();
    map.insert(3, ExtensionKind::TransportCc);
    let exts: [(u8, &[u8]); 2] = [(1, b"0"), (3, &[0, 0])];
    let payload = [7u8; 1100];
    let mut pkt = [0u8; 1500];
    let mut out = [0u8; 1500];
    let mut rtcp = [0u8; 1500];
    let mut rewriter = ForwardRewriter::new(RewriterConfig {
        ssrc: 9,
        clock_rate: 90_000,
        initial_sequence: 1,
        initial_timestamp: 1,
    });
    let mut stats = ReceiverStats::new(5, 90_000);
    let mut twcc_rx = TwccReceiver::new(1, 2, 4096);
    let mut twcc_tx = TwccSender::new(4096);
    let mut nack = NackGenerator::new(NackConfig::default());
    let mut history = PacketHistory::new(
        512,
        1500,
        Some(RtxConfig {
            ssrc: 6,
            payload_type: 97,
        }),
        Duration::ZERO,
    );
    let mut nacked: Vec<u16> = Vec::with_capacity(2000);
    let mut results = Vec::with_capacity(4096);

    let mut run = |round: u64| -> usize {
        let mut work = 0;
        for i in 0..200u64 {
            let k = round * 200 + i;
            let now = t0 + Duration::from_millis(k * 5);
            let seq = k as u16;
            let w = RtpWriter {
                extensions: &exts,
                ..RtpWriter::new(96, seq, (k * 3000) as u32, 5, &payload)
            };
            let n = w.write(&mut pkt).unwrap();
            // Sender side: transport seq, history.
            let tseq = twcc_tx.on_send(n, now);
            {
                let mut p = RtpPacketMut::parse(&mut pkt[..n]).unwrap();
                p.set_extension(3, &tseq.to_be_bytes()).unwrap();
            }
            history.insert(&RtpPacket::parse(&pkt[..n]).unwrap());
            // Receiver side (every 10th packet lost).
            if k % 10 == 3 {
                continue;
            }
            let p = RtpPacket::parse(&pkt[..n]).unwrap();
            stats.on_packet(p.sequence_number(), p.timestamp(), now);
            nack.on_packet(p.sequence_number(), now);
            twcc_rx.on_packet(map.transport_cc(&p).unwrap(), now);
            let mut m = RtpPacketMut::parse(&mut pkt[..n]).unwrap();
            rewriter.rewrite(&mut m, now);
            work += 1;
        }
        let now = t0 + Duration::from_millis((round + 1) * 1000);
        nacked.clear();
        nack.poll(now, &mut nacked);
        for s in &nacked {
            if history.resend(*s, now, &mut out).unwrap().is_some() {
                work += 1;
            }
        }
        let mut w = RtcpWriter::new(&mut rtcp);
        w.receiver_report(1, &[stats.report_block(now)]).unwrap();
        w.sdes(&[(
            1,
            &[SdesItem {
                kind: 1,
                value: b"cname",
            }],
        )])
        .unwrap();
        while twcc_rx.pending() > 0 {
            twcc_rx.build_feedback(&mut w).unwrap();
        }
        let _ = w.transport_cc(&TwccHeader::default(), &[Some(1), None, Some(300)]);
        let len = w.len();
        results.clear();
        for p in CompoundIter::new(&rtcp[..len]) {
            if let RtcpPacket::TransportCc(fb) = p.unwrap() {
                twcc_tx.on_feedback(&fb, &mut results);
            }
        }
        work + results.len()
    };

    // Warm-up: first rounds may size internal buffers.
    assert!(run(0) > 0);
    let region = Region::new(GLOBAL);
    let mut work = 0;
    for round in 1..6 {
        work += run(round);
    }
    let stats = region.change();
    assert!(work > 1000, "did work: {work}");
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
}

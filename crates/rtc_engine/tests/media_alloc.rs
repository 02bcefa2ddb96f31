//! `peer/media.rs`: the per-packet paths (`on_rtp` with RTX unwrap, NACK and TWCC bookkeeping,
//! `on_send_rtp`, `on_rtcp` with RR and NACK, `poll_retransmit`, `poll_rtcp` with reports,
//! NACKs and TWCC feedback) do not allocate once warm: counted with a global allocator.
//!
//! The module is crate-private, so it is compiled into this test from its source file.

use tympan_rtc_engine::peer::{DropReason, TimeoutReason};

#[allow(dead_code)]
#[path = "../src/peer/media.rs"]
mod media;

use std::alloc::System;
use std::time::{Duration, Instant};

use media::{MediaStreams, RecvStreamConfig, SendStreamConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tympan_rtp::extensions::{ExtensionMap, URI_TRANSPORT_CC};
use tympan_rtp::rtcp::{NackPair, ReportBlock, RtcpWriter};
use tympan_rtp::rtp::RtpWriter;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    GLOBAL.stats().allocations + GLOBAL.stats().reallocations
}

struct Sim {
    m: MediaStreams,
    t0: Instant,
    step: u64,
    media_seq: u16,
    twcc_seq: u16,
    rtx_seq: u16,
    sent_seq: u16,
    work: usize,
}

impl Sim {
    fn new() -> Self {
        let t0 = Instant::now();
        let mut m = MediaStreams::new(0xAAAA, "alloc-test".into(), t0);
        let mut map = ExtensionMap::new();
        map.insert_uri(3, URI_TRANSPORT_CC);
        m.set_extensions(map);
        m.set_twcc(true);
        m.add_recv_stream(RecvStreamConfig {
            mid: "0".into(),
            ssrc: Some(0x1111),
            rtx_ssrc: Some(0x1112),
            clock_rate: 90_000,
            rtx_payload_types: vec![(97, 96)],
            nack: true,
            pli: true,
            fir: false,
        });
        m.add_send_stream(SendStreamConfig {
            mid: "1".into(),
            ssrc: 0x2222,
            rtx_ssrc: Some(0x2223),
            clock_rate: 90_000,
            rtx_payload_types: vec![(97, 96)],
            history: 512,
        });
        Sim {
            m,
            t0,
            step: 0,
            media_seq: 0,
            twcc_seq: 0,
            rtx_seq: 0,
            sent_seq: 0,
            work: 0,
        }
    }

    /// One millisecond of simulated traffic in both directions.
    fn tick(&mut self, pkt: &mut [u8; 1500], out: &mut [u8; 1500], rtcp_in: &mut [u8; 1500]) {
        self.step += 1;
        let now = self.t0 + Duration::from_millis(self.step);
        let payload = [0x42u8; 900];
        // Publisher -> us: every 7th packet lost, repaired by RTX 5 ms later.
        let seq = self.media_seq;
        self.media_seq = self.media_seq.wrapping_add(1);
        let tseq = self.twcc_seq.to_be_bytes();
        self.twcc_seq = self.twcc_seq.wrapping_add(1);
        if seq % 7 != 3 {
            let exts: [(u8, &[u8]); 1] = [(3, &tseq)];
            let w = RtpWriter {
                extensions: &exts,
                ..RtpWriter::new(96, seq, u32::from(seq) * 90, 0x1111, &payload)
            };
            let n = w.write(pkt).unwrap();
            let (_, len) = self.m.on_rtp(now, &mut pkt[..n]).unwrap();
            self.work += len;
        }
        if seq % 7 == 1 && seq > 7 {
            // RTX of the packet lost 5 packets ago.
            let osn = seq.wrapping_sub(5);
            let mut rtx_payload = [0x42u8; 902];
            rtx_payload[..2].copy_from_slice(&osn.to_be_bytes());
            let tseq = self.twcc_seq.to_be_bytes();
            self.twcc_seq = self.twcc_seq.wrapping_add(1);
            let exts: [(u8, &[u8]); 1] = [(3, &tseq)];
            let w = RtpWriter {
                extensions: &exts,
                ..RtpWriter::new(97, self.rtx_seq, u32::from(osn) * 90, 0x1112, &rtx_payload)
            };
            self.rtx_seq = self.rtx_seq.wrapping_add(1);
            let n = w.write(pkt).unwrap();
            let (_, len) = self.m.on_rtp(now, &mut pkt[..n]).unwrap();
            self.work += len;
        }
        // Us -> subscriber.
        let w = RtpWriter::new(
            96,
            self.sent_seq,
            u32::from(self.sent_seq) * 90,
            0x2222,
            &payload,
        );
        self.sent_seq = self.sent_seq.wrapping_add(1);
        let n = w.write(pkt).unwrap();
        self.m.on_send_rtp(now, "1", &pkt[..n]).unwrap();
        // Every 20 ms the subscriber sends RR + NACK for two recent packets.
        if self.step % 20 == 0 {
            let mut w = RtcpWriter::new(rtcp_in);
            let block = ReportBlock {
                ssrc: 0x2222,
                fraction_lost: 3,
                cumulative_lost: 10,
                extended_highest_seq: u32::from(self.sent_seq),
                jitter: 5,
                last_sr: 0x1234_5678,
                delay_since_last_sr: 100,
            };
            w.receiver_report(0xBEEF, &[block]).unwrap();
            let pid = self.sent_seq.wrapping_sub(10);
            w.nack(0xBEEF, 0x2222, &[NackPair { pid, blp: 0b101 }])
                .unwrap();
            let n = w.len();
            self.m.on_rtcp(now, &rtcp_in[..n]);
            while let Some(len) = self.m.poll_retransmit(out) {
                self.work += len;
            }
        }
        self.m.handle_timeout(now);
        while let Some(len) = self.m.poll_rtcp(now, out) {
            self.work += len;
        }
    }
}

#[test]
fn per_packet_paths_do_not_allocate() {
    let mut sim = Sim::new();
    let mut pkt = [0u8; 1500];
    let mut out = [0u8; 1500];
    let mut rtcp_in = [0u8; 1500];
    // Warm up: streams learned, TWCC receiver created, queues at their steady size.
    for _ in 0..3000 {
        sim.tick(&mut pkt, &mut out, &mut rtcp_in);
    }
    let c = sim.m.counters();
    assert!(c.retransmits > 0 && c.nacks_out > 0 && c.twcc_out > 0 && c.rtx_in > 0);
    assert!(c.rtcp_out > c.twcc_out / 2, "{c:?}");
    // The counter is process-wide and the harness may allocate now and then: best of rounds;
    // a per-packet allocation would show up as at least 1000 in every round.
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let before = allocations();
        for _ in 0..1000 {
            sim.tick(&mut pkt, &mut out, &mut rtcp_in);
        }
        rounds.push(allocations() - before);
    }
    assert!(sim.work > 0);
    assert_eq!(
        rounds.iter().min(),
        Some(&0),
        "allocations per 1000-tick round: {rounds:?}"
    );
    assert!(rounds.iter().all(|r| *r < 100), "{rounds:?}");
}

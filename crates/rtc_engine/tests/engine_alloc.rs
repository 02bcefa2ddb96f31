//! The forward path allocates nothing per packet once warm: a str0m 0.24 publisher's SRTP
//! datagrams are fed to the engine (unprotect -> route -> rewrite -> protect for each
//! subscriber -> transmit queue -> poll_transmit) under a counting global allocator.
//! One test per binary, so no other test thread allocates meanwhile.

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};

use tympan_rtc_engine::{Datagram, Transport};

mod engine_common;
use engine_common::{World, opus_frame, vp8_frame};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

#[test]
fn forwarding_does_not_allocate_once_warm() {
    let mut w = World::new(50);
    let a = w.join("alloc", "Ana", true);
    let _b = w.join("alloc", "Ben", false);
    let _c = w.join("alloc", "Chen", false);
    assert!(w.run_until(
        Duration::from_secs(10),
        |w| w.clients.iter().all(|c| c.connected())
            && w.clients[1].offered.len() == 2
            && w.clients[2].offered.len() == 2
    ));

    let mut slots = vec![vec![0u8; 2048]; 64];
    let mut metas = vec![(w.server, 0usize); 64];
    let mut measured_packets = 0usize;
    let mut allocations = 0usize;
    let mut forwarded_in_region = 0u64;
    for i in 0..400u64 {
        let now = w.now;
        w.clients[a].write_audio(now, i, &opus_frame((i % 50) as u8, 3));
        if i % 2 == 0 {
            let v = vp8_frame(900 + (i as usize % 7) * 100, i as u8, i == 0);
            w.clients[a].write_video(now, i / 2, &v);
        }
        // Ana's datagrams, taken by hand so that only the engine runs in the region.
        let mut out = Vec::new();
        w.clients[a]
            .rtc
            .handle_input(Input::Timeout(now))
            .expect("str0m timeout");
        loop {
            match w.clients[a].rtc.poll_output().expect("poll_output") {
                Output::Timeout(_) => break,
                Output::Transmit(t) => out.push((t.source, t.contents.to_vec())),
                Output::Event(e) => w.clients[a].events.push(e),
            }
        }
        let warm = i >= 300;
        for (source, mut d) in out {
            let rtp = is_rtp(&d);
            let before = w.engine.counters().rtp_forwarded;
            let region = Region::new(GLOBAL);
            w.engine.handle_datagram(
                now,
                Datagram {
                    local: w.server,
                    remote: source,
                    transport: Transport::Udp,
                    contents: &mut d,
                },
            );
            let mut transmitted = 0usize;
            while transmitted < slots.len() {
                let Some(meta) = w.engine.poll_transmit(&mut slots[transmitted]) else {
                    break;
                };
                metas[transmitted] = (meta.remote, meta.len);
                transmitted += 1;
            }
            let change = region.change();
            // Deliver what the engine sent (outside the region).
            for (&(remote, len), slot) in metas.iter().zip(&slots).take(transmitted) {
                if let Some(c) = w.clients.iter_mut().find(|c| c.addr == remote) {
                    let r = Receive::new(Protocol::Udp, w.server, remote, &slot[..len])
                        .expect("datagram");
                    c.rtc
                        .handle_input(Input::Receive(now, r))
                        .expect("str0m input");
                }
            }
            if warm && rtp {
                measured_packets += 1;
                allocations += change.allocations + change.reallocations;
                forwarded_in_region += w.engine.counters().rtp_forwarded - before;
                assert!(transmitted >= 2 || w.engine.counters().rtp_forwarded == before);
            }
        }
        w.advance(Duration::from_millis(10));
    }
    assert!(measured_packets > 100, "{measured_packets}");
    assert_eq!(
        forwarded_in_region as usize,
        2 * measured_packets,
        "every measured packet went to both subscribers"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {measured_packets} forwarded packets"
    );
}

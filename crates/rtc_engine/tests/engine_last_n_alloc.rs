//! The last-N forward path allocates nothing per packet once warm: a str0m 0.24 publisher
//! sends Opus with the RFC 6464 audio level (read by the engine's voice activity) and the
//! engine forwards it into the other participants' audio slots (threshold 0: every room is
//! last-N). The periodic speaking tick runs outside the measured region (it is not per packet).
//! One test per binary, so no other test thread allocates meanwhile.

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use str0m::format::Codec;
use str0m::media::MediaTime;
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};

use tympan_rtc_engine::{Datagram, Engine, EngineConfig, Notice, Transport};

mod engine_common;
use engine_common::World;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

#[test]
fn forwarding_into_slots_does_not_allocate_once_warm() {
    let mut w = World::new(50);
    let mut config =
        EngineConfig::new(tympan_dtls::DtlsCertificate::generate().expect("certificate"));
    config.udp_addrs.push(w.server);
    config.seed = 7;
    config.last_n_threshold = 0;
    w.engine = Engine::new(config, w.now).expect("engine");
    let a = w.join("alloc", "Ana", true);
    let _b = w.join("alloc", "Ben", false);
    let _c = w.join("alloc", "Chen", false);
    let slots_of = |c: &engine_common::Client| {
        c.notices
            .iter()
            .filter_map(|n| match n {
                Notice::Offer { tracks, .. } => {
                    Some(tracks.iter().filter(|t| t.slot.is_some()).count())
                }
                _ => None,
            })
            .max()
            .unwrap_or(0)
    };
    assert!(w.run_until(
        Duration::from_secs(10),
        |w| w.clients.iter().all(|c| c.connected())
            && w.clients[1..].iter().all(|c| slots_of(c) == 3)
    ));

    let mut bufs = vec![vec![0u8; 2048]; 64];
    let mut metas = vec![(w.server, 0usize); 64];
    let mut measured_packets = 0usize;
    let mut allocations = 0usize;
    let mut forwarded_in_region = 0u64;
    for i in 0..300u64 {
        let now = w.now;
        // The engine's own timers (speaking tick, RTCP) outside the region.
        if w.engine.poll_timeout().is_some_and(|(t, _)| t <= now) {
            w.engine.handle_timeout(now);
        }
        let pt = w.clients[a].pt(Codec::Opus);
        let mid = w.clients[a].audio.expect("audio mid");
        let payload: Vec<u8> = (0..60).map(|j| (j as u8) ^ (i as u8)).collect();
        w.clients[a]
            .rtc
            .writer(mid)
            .expect("writer")
            .audio_level(-15, true)
            .write(pt, now, MediaTime::from_millis(20 * i), payload)
            .expect("write");
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
        let warm = i >= 150;
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
            while transmitted < bufs.len() {
                let Some(meta) = w.engine.poll_transmit(&mut bufs[transmitted]) else {
                    break;
                };
                metas[transmitted] = (meta.remote, meta.len);
                transmitted += 1;
            }
            let change = region.change();
            for (&(remote, len), buf) in metas.iter().zip(&bufs).take(transmitted) {
                if let Some(c) = w.clients.iter_mut().find(|c| c.addr == remote) {
                    let r = Receive::new(Protocol::Udp, w.server, remote, &buf[..len])
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
            }
        }
        // Notices and the others' datagrams, outside the region.
        w.advance(Duration::from_millis(20));
    }
    assert!(measured_packets > 100, "{measured_packets}");
    assert_eq!(
        forwarded_in_region as usize,
        2 * measured_packets,
        "every measured packet went into a slot of both subscribers"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {measured_packets} forwarded packets"
    );
}

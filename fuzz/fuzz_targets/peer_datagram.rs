#![no_main]
//! Feeds arbitrary datagrams (2-byte length prefixed) to a tympan-rtc-engine `Peer` that has
//! answered an offer (ICE-lite, DTLS server, SRTP/SCTP pending); it must never panic, and
//! nothing the fuzzer writes may come out as decrypted media.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let media = tympan_rtc_engine::peer::fuzz_peer_input(std::time::Instant::now(), data);
    assert_eq!(media, 0, "unauthenticated input delivered as media");
});

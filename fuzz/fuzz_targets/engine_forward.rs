#![no_main]
//! Feeds arbitrary bytes as a publisher RTP packet through the engine's forwarding rewrite
//! (payload-type map, header-extension id remap/blanking, SSRC/sequence/timestamp rewrite,
//! keyframe gate); it must never panic and what it sends must stay valid RTP.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_rtc_engine::fuzz_forward(std::time::Instant::now(), data);
});

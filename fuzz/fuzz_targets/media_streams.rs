#![no_main]
//! Drives tympan-rtc-engine's media machinery (`peer/media.rs`: RTP/RTX in, RTCP in, RTP out,
//! keyframe requests, timeouts) with arbitrary records; it must never panic and everything it
//! writes (RTCP compounds, retransmissions) must be well-formed. The module is crate-private,
//! so it is compiled in from its source file (as its tests do).

use libfuzzer_sys::fuzz_target;
#[allow(unused_imports)]
use tympan_rtc_engine::peer::{DropReason, TimeoutReason};

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/rtc_engine/src/peer/media.rs"]
mod media;

fuzz_target!(|data: &[u8]| {
    media::fuzz_media_input(std::time::Instant::now(), data);
});

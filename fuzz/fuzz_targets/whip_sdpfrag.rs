#![no_main]
//! Feeds arbitrary bytes as the `application/trickle-ice-sdpfrag` body of a WHIP/WHEP PATCH
//! through `tympan_rtc_engine::whip::TrickleFragment`; it must never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_rtc_engine::whip::fuzz_sdpfrag(data);
});

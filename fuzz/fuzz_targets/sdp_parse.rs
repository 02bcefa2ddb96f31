#![no_main]
//! Parses arbitrary bytes as SDP; a successful parse must round-trip.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_sdp::fuzz_parse(data);
});

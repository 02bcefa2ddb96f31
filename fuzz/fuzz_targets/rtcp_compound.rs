//! RTCP compound parsing, walking every nested iterator (report blocks, SDES items, NACK pairs,
//! TWCC statuses, XR blocks). See `tympan_rtp::rtcp::fuzz_rtcp_compound`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_rtp::rtcp::fuzz_rtcp_compound(data);
});

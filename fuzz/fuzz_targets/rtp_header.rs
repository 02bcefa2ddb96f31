//! RTP header view, extensions (typed with every known kind) and in-place rewrite on arbitrary
//! bytes. See `tympan_rtp::rtp::fuzz_rtp_header`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_rtp::rtp::fuzz_rtp_header(data);
});

//! SRTP/SRTCP unprotect on arbitrary bytes, plus a protect/unprotect round trip with replay and
//! forgery rejection. See `tympan_rtp::srtp::fuzz_unprotect` for the input layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_rtp::srtp::fuzz_unprotect(data);
});

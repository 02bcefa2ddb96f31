#![no_main]
//! Treats arbitrary bytes as a remote offer: answering it, and applying the answer back to it,
//! must never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_sdp::jsep::fuzz_negotiate(data);
});

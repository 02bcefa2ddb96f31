#![no_main]
//! Arbitrary SCTP packets (as DTLS application data) into an established association through
//! tympan-sctp's glue; records are split at 0xfe bytes and get a valid CRC32c.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tympan_sctp::fuzz_sctp_input(std::time::Instant::now(), data);
});

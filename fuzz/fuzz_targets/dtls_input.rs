#![no_main]
//! Feeds arbitrary datagrams (2-byte length prefixed) to a server-side DTLS endpoint; it must
//! never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_dtls::fuzz_server_input(std::time::Instant::now(), data);
});

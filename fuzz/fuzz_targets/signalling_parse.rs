#![no_main]
//! Feeds arbitrary text to the sfu's signalling parser (`docs/signalling.md`): every input
//! must give a message or a typed protocol error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tympan_sfu::protocol::parse_client_message(text);
    }
});

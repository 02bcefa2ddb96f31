#![no_main]
//! Feeds arbitrary data-channel messages (first byte: binary flag) to the room-data envelope
//! parser of tympan-rtc-engine: every input must be relayed (with the server's `from` and the
//! payload unchanged) or refused with a typed error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tympan_rtc_engine::fuzz_room_data(data);
});

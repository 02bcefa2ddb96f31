#![no_main]
//! Feeds arbitrary text to the sfu's access-token check (JWT HS256, `tympan_sfu::token`):
//! every input must be accepted or refused with a typed error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tympan_sfu::token::fuzz_token(data);
});

#![no_main]
//! DCEP (RFC 8832) decoder: never panics; whatever decodes re-encodes to the same bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tympan_sctp::fuzz_dcep_decode(data);
});

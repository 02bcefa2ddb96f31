//! VP8, VP9, H.264, AV1 and Opus payload descriptor parsing on arbitrary bytes. See
//! `tympan_rtp::codecs::fuzz_codec_descriptors`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tympan_rtp::codecs::fuzz_codec_descriptors(data);
});

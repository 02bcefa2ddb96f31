#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Time only matters relative to this base.
    let base = std::time::Instant::now();
    let _ = tympan_ice::agent::fuzz_agent_input(base, data);
});

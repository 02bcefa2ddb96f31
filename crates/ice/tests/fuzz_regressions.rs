//! Replays every file in `fuzz/regressions/<target>/` through the same entry points as the
//! fuzz targets `stun_decode` and `ice_agent_input`.

use std::path::PathBuf;
use std::time::Instant;

fn files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions"
    ))
    .join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn stun_decode_regressions() {
    let f = files("stun_decode");
    assert!(!f.is_empty(), "no stun_decode regressions found");
    for (path, data) in &f {
        // Each of these is malformed: the decoder must reject it, not panic.
        assert!(
            !tympan_ice::stun::fuzz_decode(data),
            "{} parsed",
            path.display()
        );
    }
}

#[test]
fn ice_agent_input_regressions() {
    let f = files("ice_agent_input");
    assert!(!f.is_empty(), "no ice_agent_input regressions found");
    let base = Instant::now();
    for (path, data) in &f {
        // None carries valid integrity for the agent's credentials: no answer may go out.
        let answers = tympan_ice::agent::fuzz_agent_input(base, data);
        assert_eq!(answers, 0, "{} was answered", path.display());
    }
}

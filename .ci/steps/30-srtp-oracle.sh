#!/usr/bin/env bash
# Differential oracle: tympan-rtp's SRTP/SRTCP against libsrtp2 (the `srtp` crate, whose
# bindings need libclang-dev, listed in .ci/apt-packages.txt). The oracle is a workspace of its
# own (excluded from the root one) so that `cargo test --workspace` needs no libclang.
set -euo pipefail
cd "$(dirname "$0")/../.."
manifest=crates/rtp/oracle/Cargo.toml
cargo fmt --manifest-path "$manifest" --check
cargo clippy --manifest-path "$manifest" --all-targets -- -D warnings
cargo test --manifest-path "$manifest"

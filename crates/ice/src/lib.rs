//! tympan-ice: STUN codec, ICE agent (full and lite) and TURN client, sans-IO.
//!
//! This crate is being built; see the workspace issues for its scope.

//! tympan-sctp: WebRTC data channels: SCTP (sctp-proto) with DCEP, sans-IO.
//!
//! This crate is being built; see the workspace issues for its scope.

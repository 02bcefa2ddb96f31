//! tympan-sdp: SDP model, parser and serializer, and JSEP offer/answer negotiation for WebRTC.
//!
//! This crate is being built; see the workspace issues for its scope.

//! tympan-rtp: RTP/RTCP packets, header extensions, TWCC, NACK/RTX and SRTP, sans-IO.
//!
//! This crate is being built; see the workspace issues for its scope.

//! tympan-dtls: DTLS 1.2 on OpenSSL with DTLS-SRTP keying, sans-IO.
//!
//! This crate is being built; see the workspace issues for its scope.

//! Access tokens: JSON Web Tokens (RFC 7519) signed with HMAC-SHA256 (JWS `HS256`, RFC 7515
//! and RFC 7518 §3.2) with the server's API secret.
//!
//! A token is `base64url(header) . base64url(claims) . base64url(signature)` (unpadded
//! base64url, RFC 7515 §2). The header must say `"alg": "HS256"` exactly (`none` and every
//! other algorithm are refused, and so is a `crit` header); the signature is HMAC-SHA256 of
//! the first two parts with the secret, checked in constant time. The claims:
//!
//! | claim | type | meaning |
//! |---|---|---|
//! | `iss` | string, required | the API key; must be the server's |
//! | `sub` | string, required | the identity (stable user id) |
//! | `name` | string, optional | the display name (else the `join`'s `name`) |
//! | `room` | string, required | the only room the token opens |
//! | `can_publish` | bool, default true | may publish tracks |
//! | `can_subscribe` | bool, default true | receives the others' tracks |
//! | `exp` | NumericDate, required | expiry (seconds since the Unix epoch) |
//! | `nbf` | NumericDate, optional | not valid before |
//!
//! Wall time is the caller's: [`Verifier::verify`] takes the current Unix time.
//!
//! ```
//! use tympan_sfu::token::{Claims, TokenError, Verifier};
//!
//! let verifier = Verifier::new("APIdemo", "a secret of at least 32 bytes, ideally random");
//! let now = 1_700_000_000; // seconds since the Unix epoch, from the caller's clock
//! let claims = Claims::new("APIdemo", "user-1", "demo", now + 600).with_name("Ana");
//! let token = verifier.sign(&claims);
//! assert_eq!(verifier.verify_for_room(&token, "demo", now), Ok(claims));
//! assert_eq!(verifier.verify_for_room(&token, "other", now), Err(TokenError::WrongRoom));
//! assert!(matches!(verifier.verify(&token, now + 601), Err(TokenError::Expired { .. })));
//! ```

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The three parts of a token, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPart {
    /// The JOSE header.
    Header,
    /// The claims set.
    Claims,
    /// The signature.
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenPart::Header => "header",
            TokenPart::Claims => "claims",
            TokenPart::Signature => "signature",
        })
    }
}

/// Why a token was refused. Every variant but [`TokenError::WrongRoom`] maps to the
/// signalling error `unauthorized`; `WrongRoom` to `forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The server is token-gated and no token was given.
    Missing,
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLong,
    /// Not three dot-separated parts.
    NotThreeParts,
    /// A part is not unpadded base64url: the character offset within the part.
    BadBase64 {
        /// Which part.
        part: TokenPart,
        /// Offset of the offending character (or the part length for a bad length).
        offset: usize,
    },
    /// A part is not the JSON it should be.
    BadJson {
        /// Which part.
        part: TokenPart,
        /// What the JSON parser said.
        detail: String,
    },
    /// `alg` is not `HS256` (e.g. `none`).
    UnsupportedAlgorithm(String),
    /// The header has a `crit` parameter (no extension is understood).
    CriticalHeader,
    /// The signature does not match (tampered, or signed with another secret).
    BadSignature,
    /// `iss` is not this server's API key.
    WrongIssuer,
    /// The token expired at `exp` (it is `now`).
    Expired {
        /// The `exp` claim.
        exp: u64,
        /// The verification time.
        now: u64,
    },
    /// The token is not valid before `nbf` (it is `now`).
    NotYetValid {
        /// The `nbf` claim.
        nbf: u64,
        /// The verification time.
        now: u64,
    },
    /// A valid token for another room.
    WrongRoom,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Missing => f.write_str("this server needs an access token"),
            TokenError::TooLong => write!(f, "token longer than {MAX_TOKEN_BYTES} bytes"),
            TokenError::NotThreeParts => {
                f.write_str("token is not three base64url parts separated by dots")
            }
            TokenError::BadBase64 { part, offset } => {
                write!(
                    f,
                    "token {part} is not unpadded base64url (at offset {offset})"
                )
            }
            TokenError::BadJson { part, detail } => write!(f, "token {part}: {detail}"),
            TokenError::UnsupportedAlgorithm(alg) => {
                write!(f, "token algorithm {alg:?} is not accepted (HS256 only)")
            }
            TokenError::CriticalHeader => {
                f.write_str("token header has a crit parameter (no extension is supported)")
            }
            TokenError::BadSignature => f.write_str("token signature does not verify"),
            TokenError::WrongIssuer => {
                f.write_str("token issuer (iss) is not this server's API key")
            }
            TokenError::Expired { exp, now } => {
                write!(f, "token expired (exp {exp}, now {now})")
            }
            TokenError::NotYetValid { nbf, now } => {
                write!(f, "token not valid yet (nbf {nbf}, now {now})")
            }
            TokenError::WrongRoom => f.write_str("token does not allow this room"),
        }
    }
}

impl std::error::Error for TokenError {}

impl TokenError {
    /// The signalling error code: `forbidden` for [`TokenError::WrongRoom`], else
    /// `unauthorized`.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::WrongRoom => "forbidden",
            _ => "unauthorized",
        }
    }
}

fn default_true() -> bool {
    true
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the API key.
    pub iss: String,
    /// Subject: the identity.
    pub sub: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The room the token opens.
    pub room: String,
    /// May publish (default true).
    #[serde(default = "default_true")]
    pub can_publish: bool,
    /// May subscribe (default true).
    #[serde(default = "default_true")]
    pub can_subscribe: bool,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl Claims {
    /// Claims with both grants, no name, no `nbf`.
    pub fn new(api_key: &str, identity: &str, room: &str, exp: u64) -> Self {
        Claims {
            iss: api_key.to_owned(),
            sub: identity.to_owned(),
            name: None,
            room: room.to_owned(),
            can_publish: true,
            can_subscribe: true,
            exp,
            nbf: None,
        }
    }

    /// With a display name.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The API secret: never printed (its `Debug` says `<redacted>`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Checks (and mints) tokens for one API key and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    api_key: String,
    secret: Secret,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("api_key", &self.api_key)
            .field("secret", &self.secret)
            .finish()
    }
}

impl Verifier {
    /// A verifier for tokens issued by `api_key` and signed with `secret`.
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Verifier {
            api_key: api_key.into(),
            secret: Secret::new(secret),
        }
    }

    /// The API key (the `iss` of valid tokens).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        match HmacSha256::new_from_slice(self.secret.bytes()) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts every key length"),
        }
    }

    /// A signed token for `claims` (header `{"alg":"HS256","typ":"JWT"}`).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = format!("{header}.{}", encode(&body));
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let sig = mac.finalize().into_bytes();
        token.push('.');
        token.push_str(&encode(&sig));
        token
    }

    /// Checks a token at `now` (seconds since the Unix epoch): structure, header, signature
    /// (before the claims are even parsed), issuer, `exp` (must be after `now`) and `nbf`
    /// (must not be after `now`).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotThreeParts);
        };
        let header_bytes = decode(h).map_err(|offset| TokenError::BadBase64 {
            part: TokenPart::Header,
            offset,
        })?;
        let header: Header =
            serde_json::from_slice(&header_bytes).map_err(|e| TokenError::BadJson {
                part: TokenPart::Header,
                detail: e.to_string(),
            })?;
        if header.alg != "HS256" {
            return Err(TokenError::UnsupportedAlgorithm(header.alg));
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let signature = decode(s).map_err(|offset| TokenError::BadBase64 {
            part: TokenPart::Signature,
            offset,
        })?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(c.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims_bytes = decode(c).map_err(|offset| TokenError::BadBase64 {
            part: TokenPart::Claims,
            offset,
        })?;
        let claims: Claims =
            serde_json::from_slice(&claims_bytes).map_err(|e| TokenError::BadJson {
                part: TokenPart::Claims,
                detail: e.to_string(),
            })?;
        if claims.iss != self.api_key {
            return Err(TokenError::WrongIssuer);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if let Some(nbf) = claims.nbf
            && now < nbf
        {
            return Err(TokenError::NotYetValid { nbf, now });
        }
        Ok(claims)
    }

    /// [`Verifier::verify`], then the room: [`TokenError::WrongRoom`] if the token is for
    /// another room.
    pub fn verify_for_room(&self, token: &str, room: &str, now: u64) -> Result<Claims, TokenError> {
        let claims = self.verify(token, now)?;
        if claims.room != room {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
    }
}

impl Claims {
    /// The engine's join options for these claims: identity `sub`, the two grants.
    pub fn join_options(&self) -> tympan_rtc_engine::JoinOptions {
        tympan_rtc_engine::JoinOptions {
            identity: Some(self.sub.clone()),
            can_publish: self.can_publish,
            can_subscribe: self.can_subscribe,
        }
    }
}

/// The access check of every way into a room (WebSocket `join`, WHIP/WHEP `Authorization:
/// Bearer`): in open mode (`verifier` is `None`) everyone may enter and this returns
/// `Ok(None)` whatever the token; in gated mode the token must be present and valid for
/// `room` at `now` (seconds since the Unix epoch). Errors map to `unauthorized` /
/// `forbidden` with [`TokenError::code`]; their messages say nothing about the room.
pub fn authorize(
    verifier: Option<&Verifier>,
    token: Option<&str>,
    room: &str,
    now: u64,
) -> Result<Option<Claims>, TokenError> {
    let Some(verifier) = verifier else {
        return Ok(None);
    };
    let token = token.ok_or(TokenError::Missing)?;
    verifier.verify_for_room(token, room, now).map(Some)
}

/// [`authorize`] for a WebSocket `join`: the display name (the token's `name` when it has
/// one, else the request's) and the engine's join options.
pub(crate) fn check_join(
    verifier: Option<&Verifier>,
    token: Option<&str>,
    room: &str,
    name: String,
    now: u64,
) -> Result<(String, tympan_rtc_engine::JoinOptions), TokenError> {
    Ok(match authorize(verifier, token, room, now)? {
        None => (name, tympan_rtc_engine::JoinOptions::default()),
        Some(claims) => {
            let options = claims.join_options();
            (claims.name.unwrap_or(name), options)
        }
    })
}

/// The token of an HTTP `Authorization: Bearer <token>` header value (RFC 6750 §2.1; the
/// scheme is case-insensitive), for the HTTP endpoints (WHIP/WHEP).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// The entry point of the `token_verify` fuzz target: `data` (as text) is checked as a
/// token of API key `fuzz-key` / secret `fuzz-secret` for room `fuzz` at time 1 000 000 000.
/// Returns whether it was accepted (only a correctly signed token can be). Panics are bugs.
#[doc(hidden)]
pub fn fuzz_token(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let verifier = Verifier::new("fuzz-key", "fuzz-secret");
    let _ = bearer_token(text);
    let _ = decode(text);
    authorize(Some(&verifier), Some(text.trim()), "fuzz", 1_000_000_000).is_ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (RFC 4648 §5) of `data`.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

fn value_of(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    }))
}

/// Strict unpadded base64url decoding: only the url-safe alphabet, no `=` padding, no
/// whitespace, a length that is not 1 mod 4, and zero unused bits in the last character
/// (so every byte string has exactly one accepted encoding). The error is the offset of the
/// offending character (the length for a bad length).
pub fn decode(text: &str) -> Result<Vec<u8>, usize> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return Err(bytes.len());
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value_of(c).ok_or(ci * 4 + i)?;
            n |= v << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        let unused_mask = match chunk.len() {
            2 => 0xFFFF,
            3 => 0xFF,
            _ => 0,
        };
        if n & unused_mask != 0 {
            return Err(ci * 4 + chunk.len() - 1);
        }
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_test_vectors() {
        // RFC 4648 §10 (the base64 and base64url alphabets agree on these), unpadded.
        let vectors = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).as_deref(), Ok(plain.as_bytes()));
        }
        // The url-safe characters: 0xfb 0xff -> "-_8" (base64 would say "+/8").
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8"), Ok(vec![0xfb, 0xff]));
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(decode("Zg=="), Err(2), "padding");
        assert_eq!(decode("+_8"), Err(0), "base64 alphabet");
        assert_eq!(decode("Zm9 vg"), Err(3), "whitespace");
        assert_eq!(decode("Zm9vY"), Err(5), "length 1 mod 4");
        assert_eq!(decode("Zh"), Err(1), "non-zero unused bits");
        assert_eq!(decode("Zm9"), Err(2), "non-zero unused bits");
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..70usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert_eq!(decode(&encode(&data)), Ok(data));
        }
    }

    #[test]
    fn rfc7515_appendix_a1_hs256_example() {
        // RFC 7515 Appendix A.1: the JWS Signing Input, the key (JWK "k") and the signature.
        let header = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
        let payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let k = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
        let signature = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let key = decode(k).expect("the example key is base64url");
        // The signature bytes of the RFC, recomputed with its key.
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        assert_eq!(encode(&mac.finalize().into_bytes()), signature);
        // The decoded header and payload (the RFC's own text, with CRLFs).
        assert_eq!(
            decode(header).unwrap(),
            b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}"
        );
        assert!(
            String::from_utf8(decode(payload).unwrap())
                .unwrap()
                .contains("\"exp\":1300819380")
        );
        // A one-bit change in the signature is caught by verify_slice.
        let mut bad = decode(signature).unwrap();
        bad[0] ^= 1;
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        assert!(mac.verify_slice(&bad).is_err());
    }

    #[test]
    fn bearer_header_values() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer  x "), Some("x"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn secret_is_never_printed() {
        let v = Verifier::new("key", "hunter2-hunter2");
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}

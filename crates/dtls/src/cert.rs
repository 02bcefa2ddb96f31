//! Certificates (ECDSA P-256, self-signed or loaded from PEM) and SHA-256 fingerprints as used
//! in SDP `a=fingerprint` (RFC 8122).

use std::fmt;
use std::str::FromStr;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509NameBuilder, X509Ref};

/// Validity start of generated certificates. Fixed (not "now") so that generating a certificate
/// does not read the wall clock; WebRTC peers authenticate the certificate by its fingerprint
/// from SDP, not by its dates.
const NOT_BEFORE: &str = "20200101000000Z";
/// Validity end of generated certificates (see [`NOT_BEFORE`]).
const NOT_AFTER: &str = "20991231235959Z";

/// Why a certificate could not be generated or loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateError {
    /// OpenSSL failed while generating the key or building/signing the certificate.
    Generate(String),
    /// The private key PEM could not be parsed.
    KeyPem(String),
    /// The certificate PEM could not be parsed.
    CertificatePem(String),
    /// The key is not an ECDSA P-256 key (the only key type browsers' DTLS ciphers accept here).
    NotEcdsaP256,
    /// The private key does not belong to the certificate.
    KeyMismatch,
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Generate(e) => write!(f, "certificate generation failed: {e}"),
            Self::KeyPem(e) => write!(f, "private key PEM is invalid: {e}"),
            Self::CertificatePem(e) => write!(f, "certificate PEM is invalid: {e}"),
            Self::NotEcdsaP256 => write!(f, "private key is not an ECDSA P-256 key"),
            Self::KeyMismatch => write!(f, "private key does not match the certificate"),
        }
    }
}

impl std::error::Error for CertificateError {}

/// A DTLS identity: an ECDSA P-256 private key and its X.509 certificate.
///
/// Cheap to clone (OpenSSL reference counts both objects).
#[derive(Clone)]
pub struct DtlsCertificate {
    key: PKey<Private>,
    cert: X509,
    fingerprint: Fingerprint,
}

impl fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DtlsCertificate {
    /// Generates a fresh ECDSA P-256 key and a self-signed certificate (subject `CN=WebRTC`,
    /// random 64-bit serial, SHA-256 signature, validity 2020-01-01 to 2099-12-31).
    pub fn generate() -> Result<Self, CertificateError> {
        let generate = || -> Result<(PKey<Private>, X509), openssl::error::ErrorStack> {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
            let mut name = X509NameBuilder::new()?;
            name.append_entry_by_nid(Nid::COMMONNAME, "WebRTC")?;
            let name = name.build();
            let mut serial = BigNum::new()?;
            serial.rand(63, MsbOption::MAYBE_ZERO, false)?;
            let mut builder = X509::builder()?;
            builder.set_version(2)?;
            let serial = serial.to_asn1_integer()?;
            builder.set_serial_number(&serial)?;
            builder.set_subject_name(&name)?;
            builder.set_issuer_name(&name)?;
            let not_before = Asn1Time::from_str(NOT_BEFORE)?;
            let not_after = Asn1Time::from_str(NOT_AFTER)?;
            builder.set_not_before(&not_before)?;
            builder.set_not_after(&not_after)?;
            builder.set_pubkey(&key)?;
            builder.sign(&key, MessageDigest::sha256())?;
            Ok((key, builder.build()))
        };
        let (key, cert) = generate().map_err(|e| CertificateError::Generate(e.to_string()))?;
        Self::from_parts(key, cert)
    }

    /// Loads a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY") and a PEM certificate.
    /// The key must be ECDSA P-256 and must match the certificate.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, CertificateError> {
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| CertificateError::KeyPem(e.to_string()))?;
        let cert = X509::from_pem(cert_pem)
            .map_err(|e| CertificateError::CertificatePem(e.to_string()))?;
        Self::from_parts(key, cert)
    }

    fn from_parts(key: PKey<Private>, cert: X509) -> Result<Self, CertificateError> {
        let is_p256 = key
            .ec_key()
            .ok()
            .and_then(|ec| ec.group().curve_name())
            .is_some_and(|nid| nid == Nid::X9_62_PRIME256V1);
        if !is_p256 {
            return Err(CertificateError::NotEcdsaP256);
        }
        let public = cert
            .public_key()
            .map_err(|e| CertificateError::CertificatePem(e.to_string()))?;
        if !key.public_eq(&public) {
            return Err(CertificateError::KeyMismatch);
        }
        let fingerprint =
            Fingerprint::of_x509(&cert).map_err(|e| CertificateError::Generate(e.to_string()))?;
        Ok(Self {
            key,
            cert,
            fingerprint,
        })
    }

    /// The SHA-256 fingerprint of the certificate, for the local SDP's `a=fingerprint`.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The certificate in DER.
    pub fn certificate_der(&self) -> Vec<u8> {
        // A certificate that OpenSSL built or parsed always re-encodes.
        self.cert.to_der().unwrap_or_default()
    }

    /// The private key as PKCS#8 DER (for handing the same identity to another DTLS stack).
    pub fn private_key_pkcs8_der(&self) -> Vec<u8> {
        self.key.private_key_to_pkcs8().unwrap_or_default()
    }

    /// The private key as PKCS#8 PEM (loadable again with [`DtlsCertificate::from_pem`]).
    pub fn private_key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().unwrap_or_default()
    }

    /// The certificate as PEM (loadable again with [`DtlsCertificate::from_pem`]).
    pub fn certificate_pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap_or_default()
    }

    pub(crate) fn key(&self) -> &PKey<Private> {
        &self.key
    }

    pub(crate) fn x509(&self) -> &X509 {
        &self.cert
    }
}

/// Why an SDP fingerprint value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FingerprintParseError {
    /// The value has no space between hash function and fingerprint.
    MissingHashFunction,
    /// The hash function is not `sha-256` (the only one supported); carries what was found.
    UnsupportedHash(String),
    /// A byte at this index (0-based) of the colon separated list is not two hex digits.
    InvalidByte {
        /// Index of the offending byte in the list.
        index: usize,
    },
    /// The fingerprint has this many bytes instead of 32.
    WrongLength(usize),
}

impl fmt::Display for FingerprintParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHashFunction => write!(f, "expected `<hash-function> <hex:hex:...>`"),
            Self::UnsupportedHash(h) => write!(f, "unsupported fingerprint hash function {h:?}"),
            Self::InvalidByte { index } => {
                write!(f, "fingerprint byte {index} is not two hex digits")
            }
            Self::WrongLength(n) => write!(f, "sha-256 fingerprint has {n} bytes, expected 32"),
        }
    }
}

impl std::error::Error for FingerprintParseError {}

/// A SHA-256 certificate fingerprint (RFC 8122).
///
/// `Display` gives the SDP attribute value `sha-256 AB:CD:…` (upper-case hex), and `FromStr`
/// parses it back (hash name case-insensitive, hex digits in either case).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    sha256: [u8; 32],
}

impl Fingerprint {
    /// Wraps raw SHA-256 digest bytes.
    pub fn from_sha256(sha256: [u8; 32]) -> Self {
        Self { sha256 }
    }

    /// The fingerprint of a DER encoded certificate.
    pub fn of_der(cert_der: &[u8]) -> Result<Self, CertificateError> {
        let digest = openssl::hash::hash(MessageDigest::sha256(), cert_der)
            .map_err(|e| CertificateError::Generate(e.to_string()))?;
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&digest);
        Ok(Self { sha256 })
    }

    pub(crate) fn of_x509(cert: &X509Ref) -> Result<Self, openssl::error::ErrorStack> {
        let digest = cert.digest(MessageDigest::sha256())?;
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&digest);
        Ok(Self { sha256 })
    }

    /// The raw digest bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The SDP hash function token, `sha-256`.
    pub fn hash_function(&self) -> &'static str {
        "sha-256"
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha-256 ")?;
        for (i, byte) in self.sha256.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (hash, hex) = s
            .split_once(' ')
            .ok_or(FingerprintParseError::MissingHashFunction)?;
        if !hash.eq_ignore_ascii_case("sha-256") {
            return Err(FingerprintParseError::UnsupportedHash(hash.to_string()));
        }
        let mut sha256 = [0u8; 32];
        let mut count = 0usize;
        for (index, part) in hex.trim().split(':').enumerate() {
            let valid = part.len() == 2 && part.bytes().all(|b| b.is_ascii_hexdigit());
            let byte = u8::from_str_radix(part, 16)
                .ok()
                .filter(|_| valid)
                .ok_or(FingerprintParseError::InvalidByte { index })?;
            if let Some(slot) = sha256.get_mut(index) {
                *slot = byte;
            }
            count = index + 1;
        }
        if count != 32 {
            return Err(FingerprintParseError::WrongLength(count));
        }
        Ok(Self { sha256 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parse_errors_say_what_is_wrong() {
        assert_eq!(
            "sha-256".parse::<Fingerprint>(),
            Err(FingerprintParseError::MissingHashFunction)
        );
        assert_eq!(
            "sha-1 AB:CD".parse::<Fingerprint>(),
            Err(FingerprintParseError::UnsupportedHash("sha-1".into()))
        );
        assert_eq!(
            "sha-256 AB:XY".parse::<Fingerprint>(),
            Err(FingerprintParseError::InvalidByte { index: 1 })
        );
        assert_eq!(
            "sha-256 AB:+C".parse::<Fingerprint>(),
            Err(FingerprintParseError::InvalidByte { index: 1 })
        );
        assert_eq!(
            "sha-256 AB:CD".parse::<Fingerprint>(),
            Err(FingerprintParseError::WrongLength(2))
        );
        let long = format!("sha-256 {}", ["00"; 33].join(":"));
        assert_eq!(
            long.parse::<Fingerprint>(),
            Err(FingerprintParseError::WrongLength(33))
        );
    }

    #[test]
    fn generated_certificate_round_trips_through_pem() {
        let cert = DtlsCertificate::generate().expect("generate");
        let again = DtlsCertificate::from_pem(&cert.private_key_pem(), &cert.certificate_pem())
            .expect("load");
        assert_eq!(cert.fingerprint(), again.fingerprint());
        let other = DtlsCertificate::generate().expect("generate");
        assert_ne!(cert.fingerprint(), other.fingerprint());
        assert_eq!(
            DtlsCertificate::from_pem(&other.private_key_pem(), &cert.certificate_pem())
                .unwrap_err(),
            CertificateError::KeyMismatch
        );
        // Round trip of the SDP form, including lower-case input.
        let text = cert.fingerprint().to_string();
        assert_eq!(text.parse::<Fingerprint>().as_ref(), Ok(cert.fingerprint()));
        let lower = text.to_ascii_lowercase();
        assert_eq!(
            lower.parse::<Fingerprint>().as_ref(),
            Ok(cert.fingerprint())
        );
    }

    #[test]
    fn rejects_non_p256_keys() {
        let group = EcGroup::from_curve_name(Nid::SECP384R1).expect("group");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let pem = key.private_key_to_pem_pkcs8().expect("pem");
        let cert = DtlsCertificate::generate().expect("generate");
        assert_eq!(
            DtlsCertificate::from_pem(&pem, &cert.certificate_pem()).unwrap_err(),
            CertificateError::NotEcdsaP256
        );
    }
}

//! DTLS-SRTP: the negotiated protection profile and the exported keying material (RFC 5764).

use std::fmt;

use crate::DtlsRole;

/// The exporter label of RFC 5764 §4.2.
pub const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// An SRTP protection profile negotiated with the `use_srtp` extension.
///
/// The discriminants are the IANA "DTLS-SRTP Protection Profiles" identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (RFC 5764), id 0x0001: 16-byte key, 14-byte salt.
    Aes128CmHmacSha1_80 = 0x0001,
    /// `SRTP_AEAD_AES_128_GCM` (RFC 7714), id 0x0007: 16-byte key, 12-byte salt.
    AeadAes128Gcm = 0x0007,
    /// `SRTP_AEAD_AES_256_GCM` (RFC 7714), id 0x0008: 32-byte key, 12-byte salt.
    AeadAes256Gcm = 0x0008,
}

impl SrtpProfile {
    /// Every profile we offer, in our (server) preference order.
    pub const ALL: [SrtpProfile; 3] = [
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
        SrtpProfile::Aes128CmHmacSha1_80,
    ];

    /// The IANA identifier carried in the `use_srtp` extension.
    pub fn iana_id(self) -> u16 {
        self as u16
    }

    /// The profile with this IANA identifier, if we support it.
    pub fn from_iana_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.iana_id() == id)
    }

    /// The OpenSSL / RFC name, e.g. `SRTP_AEAD_AES_128_GCM`.
    pub fn name(self) -> &'static str {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
            SrtpProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            SrtpProfile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// Master key length in bytes.
    pub fn master_key_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 | SrtpProfile::AeadAes128Gcm => 16,
            SrtpProfile::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes.
    pub fn master_salt_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 => 14,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 12,
        }
    }

    /// Bytes exported from the DTLS session: `2 * (key + salt)`.
    pub fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Keying material exported with the label `EXTRACTOR-dtls_srtp` and no context
/// (RFC 5764 §4.2), `2 * (key_len + salt_len)` bytes laid out as
///
/// ```text
/// client_write_SRTP_master_key[key_len]
/// server_write_SRTP_master_key[key_len]
/// client_write_SRTP_master_salt[salt_len]
/// server_write_SRTP_master_salt[salt_len]
/// ```
///
/// The client's key and salt protect what the DTLS client sends; the server's what the DTLS
/// server sends. [`KeyingMaterial::local_master_key`] and friends pick the right half for the
/// role this endpoint played.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyingMaterial {
    profile: SrtpProfile,
    role: DtlsRole,
    bytes: Vec<u8>,
}

impl fmt::Debug for KeyingMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        f.debug_struct("KeyingMaterial")
            .field("profile", &self.profile)
            .field("role", &self.role)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl KeyingMaterial {
    /// Wraps exported bytes; `None` if the length does not match the profile.
    pub fn new(profile: SrtpProfile, role: DtlsRole, bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() == profile.keying_material_len()).then_some(Self {
            profile,
            role,
            bytes,
        })
    }

    /// The profile the material was exported for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The role this endpoint played in the handshake.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// The raw exported bytes in the RFC 5764 §4.2 layout.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn part(&self, index: usize) -> &[u8] {
        let k = self.profile.master_key_len();
        let s = self.profile.master_salt_len();
        let (start, len) = match index {
            0 => (0, k),
            1 => (k, k),
            2 => (2 * k, s),
            _ => (2 * k + s, s),
        };
        self.bytes.get(start..start + len).unwrap_or(&[])
    }

    /// `client_write_SRTP_master_key`.
    pub fn client_master_key(&self) -> &[u8] {
        self.part(0)
    }

    /// `server_write_SRTP_master_key`.
    pub fn server_master_key(&self) -> &[u8] {
        self.part(1)
    }

    /// `client_write_SRTP_master_salt`.
    pub fn client_master_salt(&self) -> &[u8] {
        self.part(2)
    }

    /// `server_write_SRTP_master_salt`.
    pub fn server_master_salt(&self) -> &[u8] {
        self.part(3)
    }

    /// Master key protecting what this endpoint sends.
    pub fn local_master_key(&self) -> &[u8] {
        match self.role {
            DtlsRole::Client => self.client_master_key(),
            DtlsRole::Server => self.server_master_key(),
        }
    }

    /// Master salt for what this endpoint sends.
    pub fn local_master_salt(&self) -> &[u8] {
        match self.role {
            DtlsRole::Client => self.client_master_salt(),
            DtlsRole::Server => self.server_master_salt(),
        }
    }

    /// Master key protecting what the peer sends.
    pub fn remote_master_key(&self) -> &[u8] {
        match self.role {
            DtlsRole::Client => self.server_master_key(),
            DtlsRole::Server => self.client_master_key(),
        }
    }

    /// Master salt for what the peer sends.
    pub fn remote_master_salt(&self) -> &[u8] {
        match self.role {
            DtlsRole::Client => self.server_master_salt(),
            DtlsRole::Server => self.client_master_salt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_rfc_5764_and_7714() {
        // RFC 5764 §4.1.2: AES128_CM_HMAC_SHA1_80 has a 128-bit key and 112-bit salt.
        assert_eq!(SrtpProfile::Aes128CmHmacSha1_80.keying_material_len(), 60);
        // RFC 7714 §12: AEAD_AES_128_GCM 128-bit key, AEAD_AES_256_GCM 256-bit key, 96-bit salt.
        assert_eq!(SrtpProfile::AeadAes128Gcm.keying_material_len(), 56);
        assert_eq!(SrtpProfile::AeadAes256Gcm.keying_material_len(), 88);
        assert_eq!(
            SrtpProfile::from_iana_id(7),
            Some(SrtpProfile::AeadAes128Gcm)
        );
        assert_eq!(SrtpProfile::from_iana_id(2), None);
    }

    #[test]
    fn halves_are_split_in_rfc_order() {
        let bytes: Vec<u8> = (0..56).collect();
        let km = KeyingMaterial::new(SrtpProfile::AeadAes128Gcm, DtlsRole::Server, bytes.clone())
            .expect("length");
        assert_eq!(km.client_master_key(), &bytes[0..16]);
        assert_eq!(km.server_master_key(), &bytes[16..32]);
        assert_eq!(km.client_master_salt(), &bytes[32..44]);
        assert_eq!(km.server_master_salt(), &bytes[44..56]);
        assert_eq!(km.local_master_key(), km.server_master_key());
        assert_eq!(km.remote_master_salt(), km.client_master_salt());
        assert!(
            KeyingMaterial::new(SrtpProfile::AeadAes128Gcm, DtlsRole::Server, vec![0; 55])
                .is_none()
        );
    }
}

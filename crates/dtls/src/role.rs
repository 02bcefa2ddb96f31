//! DTLS roles from the SDP `a=setup` attribute (RFC 4145, RFC 5763 §5, RFC 8842 §5).

use std::fmt;
use std::str::FromStr;

/// Which side of the DTLS handshake this endpoint plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// Sends the ClientHello (SDP `setup:active`).
    Client,
    /// Waits for the ClientHello (SDP `setup:passive`).
    Server,
}

/// The value of an SDP `a=setup` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// `actpass`: the offerer lets the answerer choose (offers must use this, RFC 8842 §5.2).
    ActPass,
    /// `active`: this side initiates the DTLS handshake (it is the client).
    Active,
    /// `passive`: this side waits for the handshake (it is the server).
    Passive,
}

/// Why a pair of `a=setup` values does not determine a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// The attribute value is none of `actpass`, `active`, `passive` (`holdconn` is not usable
    /// for DTLS).
    Unknown,
    /// Both sides said the same thing (`active`/`active`, `passive`/`passive`) or both said
    /// `actpass`: an answer must pick `active` or `passive`.
    Conflict {
        /// Our value.
        local: Setup,
        /// The peer's value.
        remote: Setup,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => write!(f, "a=setup must be actpass, active or passive"),
            Self::Conflict { local, remote } => write!(
                f,
                "a=setup {local} (local) and {remote} (remote) do not decide a DTLS role"
            ),
        }
    }
}

impl std::error::Error for SetupError {}

impl Setup {
    /// The value an answer should carry for this offered value: `actpass` → `active` (RFC 8842
    /// §5.3 recommends the answerer be active), `active` → `passive`, `passive` → `active`.
    pub fn answer_for(offer: Setup) -> Setup {
        match offer {
            Setup::ActPass | Setup::Passive => Setup::Active,
            Setup::Active => Setup::Passive,
        }
    }

    /// The DTLS role that follows from our and the peer's `a=setup` values, whichever of
    /// them was the offer.
    pub fn role(local: Setup, remote: Setup) -> Result<DtlsRole, SetupError> {
        match (local, remote) {
            (Setup::Active, Setup::Passive | Setup::ActPass) | (Setup::ActPass, Setup::Passive) => {
                Ok(DtlsRole::Client)
            }
            (Setup::Passive, Setup::Active | Setup::ActPass) | (Setup::ActPass, Setup::Active) => {
                Ok(DtlsRole::Server)
            }
            _ => Err(SetupError::Conflict { local, remote }),
        }
    }

    /// The SDP token.
    pub fn as_str(&self) -> &'static str {
        match self {
            Setup::ActPass => "actpass",
            Setup::Active => "active",
            Setup::Passive => "passive",
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Setup {
    type Err = SetupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            v if v.eq_ignore_ascii_case("actpass") => Ok(Setup::ActPass),
            v if v.eq_ignore_ascii_case("active") => Ok(Setup::Active),
            v if v.eq_ignore_ascii_case("passive") => Ok(Setup::Passive),
            _ => Err(SetupError::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_answer_pairs_give_opposite_roles() {
        for offer in [Setup::ActPass, Setup::Active, Setup::Passive] {
            let answer = Setup::answer_for(offer);
            let offerer = Setup::role(offer, answer).expect("offerer role");
            let answerer = Setup::role(answer, offer).expect("answerer role");
            assert_ne!(offerer, answerer, "{offer} / {answer}");
        }
        // RFC 8842 §5.3: answering actpass with active makes the answerer the client.
        assert_eq!(
            Setup::role(Setup::Active, Setup::ActPass),
            Ok(DtlsRole::Client)
        );
        assert_eq!(
            Setup::role(Setup::ActPass, Setup::Active),
            Ok(DtlsRole::Server)
        );
    }

    #[test]
    fn conflicts_and_unknown_values_are_errors() {
        for same in [Setup::ActPass, Setup::Active, Setup::Passive] {
            assert!(matches!(
                Setup::role(same, same),
                Err(SetupError::Conflict { .. })
            ));
        }
        assert_eq!("holdconn".parse::<Setup>(), Err(SetupError::Unknown));
        assert_eq!("ACTPASS".parse::<Setup>(), Ok(Setup::ActPass));
    }
}

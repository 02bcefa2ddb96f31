//! The Data Channel Establishment Protocol (DCEP, RFC 8832).
//!
//! DCEP messages travel on the data channel's own SCTP stream with PPID 50. There are two:
//! `DATA_CHANNEL_OPEN` (message type `0x03`), sent by the side that opens a channel, and
//! `DATA_CHANNEL_ACK` (message type `0x02`), the answer. [`DcepMessage::decode`] borrows the
//! label and protocol from the input (no allocation); [`DcepMessage::encode`] appends to a
//! caller-owned buffer.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Message Type |  Channel Type |            Priority           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Reliability Parameter                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Label Length          |       Protocol Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                             Label                             |
//! |                           Protocol                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::fmt;

/// DCEP message type of `DATA_CHANNEL_OPEN`.
pub const MESSAGE_TYPE_OPEN: u8 = 0x03;
/// DCEP message type of `DATA_CHANNEL_ACK`.
pub const MESSAGE_TYPE_ACK: u8 = 0x02;
/// Length of the fixed part of `DATA_CHANNEL_OPEN` (before label and protocol).
pub const OPEN_HEADER_LEN: usize = 12;

/// Bit of the channel type byte that marks unordered delivery.
const UNORDERED_BIT: u8 = 0x80;

/// How many times, or for how long, a message is retransmitted (RFC 8832 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reliability {
    /// Retransmitted until acknowledged (`DATA_CHANNEL_RELIABLE`).
    Reliable,
    /// Retransmitted at most this many times (`DATA_CHANNEL_PARTIAL_RELIABLE_REXMIT`).
    MaxRetransmits(u32),
    /// Retransmitted only within this many milliseconds after the first transmission
    /// (`DATA_CHANNEL_PARTIAL_RELIABLE_TIMED`).
    MaxLifetimeMs(u32),
}

impl Reliability {
    /// The low bits of the channel type byte and the reliability parameter on the wire.
    fn to_wire(self) -> (u8, u32) {
        match self {
            Reliability::Reliable => (0x00, 0),
            Reliability::MaxRetransmits(n) => (0x01, n),
            Reliability::MaxLifetimeMs(ms) => (0x02, ms),
        }
    }
}

/// The channel type of a `DATA_CHANNEL_OPEN`: ordering plus reliability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelType {
    /// Whether messages are delivered in the order they were sent.
    pub ordered: bool,
    /// Retransmission policy.
    pub reliability: Reliability,
}

impl ChannelType {
    /// Reliable and ordered, the default of a WebRTC data channel.
    pub const RELIABLE_ORDERED: ChannelType = ChannelType {
        ordered: true,
        reliability: Reliability::Reliable,
    };

    /// The channel type byte and reliability parameter as sent on the wire.
    pub fn to_wire(self) -> (u8, u32) {
        let (low, parameter) = self.reliability.to_wire();
        let unordered = if self.ordered { 0 } else { UNORDERED_BIT };
        (low | unordered, parameter)
    }

    /// Interprets a channel type byte and reliability parameter; `None` for an unknown type.
    pub fn from_wire(channel_type: u8, parameter: u32) -> Option<ChannelType> {
        let reliability = match channel_type & !UNORDERED_BIT {
            0x00 => Reliability::Reliable,
            0x01 => Reliability::MaxRetransmits(parameter),
            0x02 => Reliability::MaxLifetimeMs(parameter),
            _ => return None,
        };
        Some(ChannelType {
            ordered: channel_type & UNORDERED_BIT == 0,
            reliability,
        })
    }
}

/// A decoded `DATA_CHANNEL_OPEN`, borrowing label and protocol from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannelOpen<'a> {
    /// Ordering and reliability of the channel.
    pub channel_type: ChannelType,
    /// Priority (RFC 8831 section 6.4: 128 below normal, 256 normal, 512 high, 1024 extra high).
    pub priority: u16,
    /// The channel's label (may be empty).
    pub label: &'a str,
    /// The sub-protocol (may be empty).
    pub protocol: &'a str,
}

/// One DCEP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcepMessage<'a> {
    /// `DATA_CHANNEL_OPEN`.
    Open(DataChannelOpen<'a>),
    /// `DATA_CHANNEL_ACK`.
    Ack,
}

/// Which field of a DCEP message a [`DcepError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcepField {
    /// The message type byte.
    MessageType,
    /// The fixed 12-byte header of `DATA_CHANNEL_OPEN`.
    OpenHeader,
    /// The label.
    Label,
    /// The protocol.
    Protocol,
}

impl fmt::Display for DcepField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DcepField::MessageType => "message type",
            DcepField::OpenHeader => "DATA_CHANNEL_OPEN header",
            DcepField::Label => "label",
            DcepField::Protocol => "protocol",
        })
    }
}

/// Why a DCEP message could not be decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcepError {
    /// The input ended inside `field`, which starts at `offset` and needs `needed` bytes.
    Truncated {
        /// The field that is cut short.
        field: DcepField,
        /// Offset of the field in the message.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the input at `offset`.
        available: usize,
    },
    /// The message type (offset 0) is neither OPEN (`0x03`) nor ACK (`0x02`).
    UnknownMessageType(u8),
    /// The channel type (offset 1) is not one of the six RFC 8832 values.
    UnknownChannelType(u8),
    /// The label or protocol at `offset` is not UTF-8.
    InvalidUtf8 {
        /// The field.
        field: DcepField,
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// Bytes follow the end of the message at `offset`.
    TrailingBytes {
        /// Where the message ends.
        offset: usize,
    },
    /// The label or protocol is longer than the 16-bit length field allows (encoding only).
    FieldTooLong {
        /// The field.
        field: DcepField,
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for DcepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DcepError::Truncated {
                field,
                offset,
                needed,
                available,
            } => write!(
                f,
                "DCEP {field} at offset {offset} needs {needed} bytes, only {available} left"
            ),
            DcepError::UnknownMessageType(t) => {
                write!(f, "unknown DCEP message type {t:#04x} at offset 0")
            }
            DcepError::UnknownChannelType(t) => {
                write!(f, "unknown DCEP channel type {t:#04x} at offset 1")
            }
            DcepError::InvalidUtf8 { field, offset } => {
                write!(f, "DCEP {field} is not UTF-8 (offset {offset})")
            }
            DcepError::TrailingBytes { offset } => {
                write!(
                    f,
                    "trailing bytes after the DCEP message, from offset {offset}"
                )
            }
            DcepError::FieldTooLong { field, len } => {
                write!(f, "DCEP {field} of {len} bytes exceeds 65535")
            }
        }
    }
}

impl std::error::Error for DcepError {}

fn take(input: &[u8], offset: usize, len: usize, field: DcepField) -> Result<&[u8], DcepError> {
    let rest = input.get(offset..).unwrap_or(&[]);
    rest.get(..len).ok_or(DcepError::Truncated {
        field,
        offset,
        needed: len,
        available: rest.len(),
    })
}

fn utf8(bytes: &[u8], field: DcepField, offset: usize) -> Result<&str, DcepError> {
    core::str::from_utf8(bytes).map_err(|e| DcepError::InvalidUtf8 {
        field,
        offset: offset + e.valid_up_to(),
    })
}

impl<'a> DcepMessage<'a> {
    /// Decodes one DCEP message (the whole SCTP user message with PPID 50).
    pub fn decode(input: &'a [u8]) -> Result<DcepMessage<'a>, DcepError> {
        let message_type = take(input, 0, 1, DcepField::MessageType)?[0];
        match message_type {
            MESSAGE_TYPE_ACK => {
                if input.len() > 1 {
                    return Err(DcepError::TrailingBytes { offset: 1 });
                }
                Ok(DcepMessage::Ack)
            }
            MESSAGE_TYPE_OPEN => {
                let h = take(input, 0, OPEN_HEADER_LEN, DcepField::OpenHeader)?;
                let raw_channel_type = h[1];
                let priority = u16::from_be_bytes([h[2], h[3]]);
                let parameter = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                let label_len = usize::from(u16::from_be_bytes([h[8], h[9]]));
                let protocol_len = usize::from(u16::from_be_bytes([h[10], h[11]]));
                let channel_type = ChannelType::from_wire(raw_channel_type, parameter)
                    .ok_or(DcepError::UnknownChannelType(raw_channel_type))?;
                let label_at = OPEN_HEADER_LEN;
                let label = take(input, label_at, label_len, DcepField::Label)?;
                let protocol_at = label_at + label_len;
                let protocol = take(input, protocol_at, protocol_len, DcepField::Protocol)?;
                let end = protocol_at + protocol_len;
                if input.len() > end {
                    return Err(DcepError::TrailingBytes { offset: end });
                }
                Ok(DcepMessage::Open(DataChannelOpen {
                    channel_type,
                    priority,
                    label: utf8(label, DcepField::Label, label_at)?,
                    protocol: utf8(protocol, DcepField::Protocol, protocol_at)?,
                }))
            }
            other => Err(DcepError::UnknownMessageType(other)),
        }
    }

    /// Number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            DcepMessage::Ack => 1,
            DcepMessage::Open(open) => OPEN_HEADER_LEN + open.label.len() + open.protocol.len(),
        }
    }

    /// Appends the message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), DcepError> {
        match self {
            DcepMessage::Ack => out.push(MESSAGE_TYPE_ACK),
            DcepMessage::Open(open) => {
                let label_len =
                    u16::try_from(open.label.len()).map_err(|_| DcepError::FieldTooLong {
                        field: DcepField::Label,
                        len: open.label.len(),
                    })?;
                let protocol_len =
                    u16::try_from(open.protocol.len()).map_err(|_| DcepError::FieldTooLong {
                        field: DcepField::Protocol,
                        len: open.protocol.len(),
                    })?;
                let (channel_type, parameter) = open.channel_type.to_wire();
                out.reserve(self.encoded_len());
                out.push(MESSAGE_TYPE_OPEN);
                out.push(channel_type);
                out.extend_from_slice(&open.priority.to_be_bytes());
                out.extend_from_slice(&parameter.to_be_bytes());
                out.extend_from_slice(&label_len.to_be_bytes());
                out.extend_from_slice(&protocol_len.to_be_bytes());
                out.extend_from_slice(open.label.as_bytes());
                out.extend_from_slice(open.protocol.as_bytes());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 8832 section 5.1 layout written out by hand: reliable unordered, priority 256,
    /// label "chat", protocol "x".
    #[test]
    fn decodes_handwritten_open() {
        let wire = [
            0x03, 0x80, 0x01, 0x00, 0, 0, 0, 0, 0, 4, 0, 1, b'c', b'h', b'a', b't', b'x',
        ];
        let msg = DcepMessage::decode(&wire).unwrap();
        assert_eq!(
            msg,
            DcepMessage::Open(DataChannelOpen {
                channel_type: ChannelType {
                    ordered: false,
                    reliability: Reliability::Reliable
                },
                priority: 256,
                label: "chat",
                protocol: "x",
            })
        );
        let mut out = Vec::new();
        msg.encode(&mut out).unwrap();
        assert_eq!(out, wire);
    }

    #[test]
    fn channel_type_values_of_rfc_8832() {
        // Section 8.2.2 registry.
        let table = [
            (0x00, true, Reliability::Reliable),
            (0x80, false, Reliability::Reliable),
            (0x01, true, Reliability::MaxRetransmits(7)),
            (0x81, false, Reliability::MaxRetransmits(7)),
            (0x02, true, Reliability::MaxLifetimeMs(7)),
            (0x82, false, Reliability::MaxLifetimeMs(7)),
        ];
        for (byte, ordered, reliability) in table {
            let t = ChannelType::from_wire(byte, 7).unwrap();
            assert_eq!(t.ordered, ordered);
            assert_eq!(t.reliability, reliability);
            assert_eq!(t.to_wire().0, byte);
        }
        assert!(ChannelType::from_wire(0x03, 0).is_none());
        assert!(ChannelType::from_wire(0x7f, 0).is_none());
    }

    #[test]
    fn typed_errors() {
        assert_eq!(
            DcepMessage::decode(&[]),
            Err(DcepError::Truncated {
                field: DcepField::MessageType,
                offset: 0,
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            DcepMessage::decode(&[0x04]),
            Err(DcepError::UnknownMessageType(4))
        );
        assert_eq!(
            DcepMessage::decode(&[0x02, 0]),
            Err(DcepError::TrailingBytes { offset: 1 })
        );
        assert_eq!(
            DcepMessage::decode(&[0x03, 0, 0]),
            Err(DcepError::Truncated {
                field: DcepField::OpenHeader,
                offset: 0,
                needed: 12,
                available: 3
            })
        );
        assert_eq!(
            DcepMessage::decode(&[0x03, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DcepError::UnknownChannelType(5))
        );
        assert_eq!(
            DcepMessage::decode(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, b'a']),
            Err(DcepError::Truncated {
                field: DcepField::Label,
                offset: 12,
                needed: 3,
                available: 1
            })
        );
        assert_eq!(
            DcepMessage::decode(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, b'a', b'b', 0xff]),
            Err(DcepError::InvalidUtf8 {
                field: DcepField::Protocol,
                offset: 14
            })
        );
        assert_eq!(
            DcepMessage::decode(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            Err(DcepError::TrailingBytes { offset: 12 })
        );
        // Error messages name the field and the offset.
        let text = DcepMessage::decode(&[0x03, 0, 0]).unwrap_err().to_string();
        assert!(
            text.contains("offset 0") && text.contains("header"),
            "{text}"
        );
    }

    fn channel_type() -> impl Strategy<Value = ChannelType> {
        (
            any::<bool>(),
            prop_oneof![
                Just(Reliability::Reliable),
                any::<u32>().prop_map(Reliability::MaxRetransmits),
                any::<u32>().prop_map(Reliability::MaxLifetimeMs),
            ],
        )
            .prop_map(|(ordered, reliability)| ChannelType {
                ordered,
                reliability,
            })
    }

    proptest! {
        #[test]
        fn open_round_trips(
            channel_type in channel_type(),
            priority in any::<u16>(),
            label in ".{0,40}",
            protocol in ".{0,40}",
        ) {
            let msg = DcepMessage::Open(DataChannelOpen { channel_type, priority, label: &label, protocol: &protocol });
            let mut out = Vec::new();
            msg.encode(&mut out).unwrap();
            prop_assert_eq!(out.len(), msg.encoded_len());
            prop_assert_eq!(DcepMessage::decode(&out).unwrap(), msg);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(msg) = DcepMessage::decode(&bytes) {
                let mut out = Vec::new();
                msg.encode(&mut out).unwrap();
                prop_assert_eq!(DcepMessage::decode(&out).unwrap(), msg);
            }
        }
    }
}

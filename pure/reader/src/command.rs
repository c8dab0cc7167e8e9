//! Reader commands: the application messages carried in (chained) I-blocks.
//!
//! This command set is our own profile (no standard defines an mPOS reader's command set):
//!
//! ```text
//! request  = CLASS(1) ID(1) DATA CRC32(4)       response = CLASS(1) ID(1) STATUS(1) DATA CRC32(4)
//! ```
//!
//! CRC32 ([`super::frame::crc32`], big-endian) covers the whole message. It is there because
//! the per-frame EDC is not enough on a link that duplicates chunks: an LRC misses a
//! duplicated chunk spliced into a frame about once in 256 cases. A message that fails the
//! check is never used: the reader answers [`ReaderStatus::INTEGRITY`] without executing, the
//! terminal resynchronises and sends the command again (answered from the reader's memory if
//! it did run).
//!
//! | class | command                 | request data              | response data (status 00)  |
//! |-------|-------------------------|---------------------------|----------------------------|
//! | 0x00  | APDU to the card        | C-APDU                    | R-APDU (data + SW1 SW2)    |
//! | 0x10  | poll / activate card    | —                         | ATQA(2) SAK(1) UID(4/7/10) |
//! | 0x11  | remove / deactivate     | —                         | —                          |
//! | 0x20  | firmware version        | —                         | UTF-8 text                 |
//! | 0x21  | battery level           | —                         | percent (1 byte, 0..=100)  |
//! | 0x22  | display text            | UTF-8, ≤ 32 characters    | —                          |
//! | 0x23  | beep                    | duration ms (2 bytes, BE) | —                          |
//! | 0x24  | cancel                  | —                         | —                          |
//!
//! ID is a per-command number chosen by the terminal (wrapping, first value injected). The
//! reader remembers the ID, request and response of the last command it executed: when the
//! terminal re-sends a command after a RESYNCH (the block layer lost track of whether it got
//! through), the reader answers from that memory instead of running it again, so a card
//! command (GENERATE AC, say) executes once. The terminal also drops a response whose class or
//! ID does not match the command in flight.
//!
//! Status bytes are an open set ([`ReaderStatus`]): unknown values are kept and reported as
//! [`super::LinkError::ReaderError`].

use super::LinkError;
use super::frame::crc32;

/// Command class byte (first byte of every request and response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandClass(pub u8);

impl CommandClass {
    /// APDU to the card in the field.
    pub const APDU: CommandClass = CommandClass(0x00);
    /// Poll for and activate a card.
    pub const POLL_CARD: CommandClass = CommandClass(0x10);
    /// Deactivate the card (field off, "remove card").
    pub const DEACTIVATE: CommandClass = CommandClass(0x11);
    /// Firmware version text.
    pub const FIRMWARE_VERSION: CommandClass = CommandClass(0x20);
    /// Battery level in percent.
    pub const BATTERY: CommandClass = CommandClass(0x21);
    /// Show a line of text on the reader display.
    pub const DISPLAY_TEXT: CommandClass = CommandClass(0x22);
    /// Beep.
    pub const BEEP: CommandClass = CommandClass(0x23);
    /// Cancel what the reader is doing on its own (prompt, card wait).
    pub const CANCEL: CommandClass = CommandClass(0x24);
}

/// Status byte of a reader response (an open set: unknown values are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReaderStatus(pub u8);

impl ReaderStatus {
    /// Success.
    pub const OK: ReaderStatus = ReaderStatus(0x00);
    /// No card in the field (poll) or no activated card (APDU).
    pub const NO_CARD: ReaderStatus = ReaderStatus(0x01);
    /// The card stopped answering (left the field) during an APDU.
    pub const CARD_REMOVED: ReaderStatus = ReaderStatus(0x02);
    /// Unknown command class.
    pub const UNKNOWN_COMMAND: ReaderStatus = ReaderStatus(0x03);
    /// Bad request data (text too long or not UTF-8, wrong length).
    pub const BAD_PARAMETER: ReaderStatus = ReaderStatus(0x04);
    /// The operation was cancelled on the reader.
    pub const CANCELLED: ReaderStatus = ReaderStatus(0x05);
    /// The request failed its message CRC: not executed, send it again.
    pub const INTEGRITY: ReaderStatus = ReaderStatus(0x06);
}

/// Longest display text, in characters.
pub const MAX_DISPLAY_CHARS: usize = 32;

/// A command for the reader.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReaderCommand {
    /// Send a C-APDU to the activated card.
    Apdu(Vec<u8>),
    /// Poll for a card and activate it.
    PollCard,
    /// Deactivate the card.
    Deactivate,
    /// Ask for the firmware version.
    FirmwareVersion,
    /// Ask for the battery level.
    BatteryLevel,
    /// Show text (UTF-8, at most 32 characters).
    DisplayText(String),
    /// Beep for the given duration.
    Beep {
        /// Duration in milliseconds.
        duration_ms: u16,
    },
    /// Cancel the reader's own activity.
    Cancel,
}

impl std::fmt::Debug for ReaderCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // C-APDUs may carry PIN blocks or card data: length only.
            ReaderCommand::Apdu(c) => write!(f, "Apdu(len={})", c.len()),
            ReaderCommand::PollCard => f.write_str("PollCard"),
            ReaderCommand::Deactivate => f.write_str("Deactivate"),
            ReaderCommand::FirmwareVersion => f.write_str("FirmwareVersion"),
            ReaderCommand::BatteryLevel => f.write_str("BatteryLevel"),
            ReaderCommand::DisplayText(t) => write!(f, "DisplayText({t:?})"),
            ReaderCommand::Beep { duration_ms } => write!(f, "Beep({duration_ms} ms)"),
            ReaderCommand::Cancel => f.write_str("Cancel"),
        }
    }
}

impl ReaderCommand {
    /// The class byte of this command.
    pub fn class(&self) -> CommandClass {
        match self {
            ReaderCommand::Apdu(_) => CommandClass::APDU,
            ReaderCommand::PollCard => CommandClass::POLL_CARD,
            ReaderCommand::Deactivate => CommandClass::DEACTIVATE,
            ReaderCommand::FirmwareVersion => CommandClass::FIRMWARE_VERSION,
            ReaderCommand::BatteryLevel => CommandClass::BATTERY,
            ReaderCommand::DisplayText(_) => CommandClass::DISPLAY_TEXT,
            ReaderCommand::Beep { .. } => CommandClass::BEEP,
            ReaderCommand::Cancel => CommandClass::CANCEL,
        }
    }

    /// Checks the command's own limits (display text length, non-empty APDU).
    pub fn validate(&self) -> Result<(), LinkError> {
        match self {
            ReaderCommand::Apdu(c) if c.len() < 4 => Err(LinkError::InvalidCommand {
                what: "a C-APDU has at least 4 bytes",
            }),
            ReaderCommand::DisplayText(t) if t.chars().count() > MAX_DISPLAY_CHARS => {
                Err(LinkError::InvalidCommand {
                    what: "display text longer than 32 characters",
                })
            }
            _ => Ok(()),
        }
    }

    /// The request message: class, ID, data.
    pub fn encode(&self, id: u8) -> Vec<u8> {
        let mut out = vec![self.class().0, id];
        match self {
            ReaderCommand::Apdu(c) => out.extend_from_slice(c),
            ReaderCommand::DisplayText(t) => out.extend_from_slice(t.as_bytes()),
            ReaderCommand::Beep { duration_ms } => {
                out.extend_from_slice(&duration_ms.to_be_bytes())
            }
            _ => {}
        }
        seal(out)
    }
}

/// What the poll command reports about an activated card (ISO/IEC 14443-3 type A values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivatedCard {
    /// Answer to request, type A.
    pub atqa: [u8; 2],
    /// Select acknowledge.
    pub sak: u8,
    /// UID (4, 7 or 10 bytes; payment cards usually give a random 4-byte UID).
    pub uid: Vec<u8>,
}

impl ActivatedCard {
    /// Encodes as the poll response data: ATQA, SAK, UID.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.atqa.to_vec();
        out.push(self.sak);
        out.extend_from_slice(&self.uid);
        out
    }

    /// Decodes poll response data.
    pub fn decode(data: &[u8]) -> Option<ActivatedCard> {
        match data {
            [a0, a1, sak, uid @ ..] if matches!(uid.len(), 4 | 7 | 10) => Some(ActivatedCard {
                atqa: [*a0, *a1],
                sak: *sak,
                uid: uid.to_vec(),
            }),
            _ => None,
        }
    }
}

/// What the link reports to the app. Every command accepted by the engine produces exactly
/// one event, in command order.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReaderEvent {
    /// The card's R-APDU (data and status word) for an APDU command.
    ApduResponse(Vec<u8>),
    /// A card was found and activated.
    CardPresent(ActivatedCard),
    /// No card in the field (poll).
    NoCard,
    /// The card left the field (or was never activated) during an APDU command.
    CardRemoved,
    /// Firmware version text.
    FirmwareVersion(String),
    /// Battery level in percent.
    Battery(u8),
    /// A command without data (deactivate, display, beep, cancel) completed.
    Done(CommandClass),
    /// The command failed.
    Error(LinkError),
}

impl std::fmt::Debug for ReaderEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // R-APDUs hold PAN, track 2, names: length only.
            ReaderEvent::ApduResponse(r) => write!(f, "ApduResponse(len={})", r.len()),
            ReaderEvent::CardPresent(c) => f.debug_tuple("CardPresent").field(c).finish(),
            ReaderEvent::NoCard => f.write_str("NoCard"),
            ReaderEvent::CardRemoved => f.write_str("CardRemoved"),
            ReaderEvent::FirmwareVersion(v) => f.debug_tuple("FirmwareVersion").field(v).finish(),
            ReaderEvent::Battery(b) => f.debug_tuple("Battery").field(b).finish(),
            ReaderEvent::Done(c) => f.debug_tuple("Done").field(c).finish(),
            ReaderEvent::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

/// Length of the message CRC.
pub const MESSAGE_CRC_LEN: usize = 4;

fn seal(mut message: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&message);
    message.extend_from_slice(&crc.to_be_bytes());
    message
}

/// The message without its CRC, if the CRC is right.
fn unseal(message: &[u8]) -> Option<&[u8]> {
    let body_len = message.len().checked_sub(MESSAGE_CRC_LEN)?;
    let (body, crc) = message.split_at(body_len);
    (crc32(body).to_be_bytes() == crc).then_some(body)
}

/// Splits a request message into class, ID and data; `None` if it is too short or fails its
/// CRC.
pub fn split_request(message: &[u8]) -> Option<(CommandClass, u8, &[u8])> {
    match unseal(message)? {
        [class, id, data @ ..] => Some((CommandClass(*class), *id, data)),
        _ => None,
    }
}

/// Splits a response message into class, ID, status and data; `None` if it is too short or
/// fails its CRC.
pub fn split_response(message: &[u8]) -> Option<(CommandClass, u8, ReaderStatus, &[u8])> {
    match unseal(message)? {
        [class, id, status, data @ ..] => {
            Some((CommandClass(*class), *id, ReaderStatus(*status), data))
        }
        _ => None,
    }
}

/// Builds a response message (with its CRC).
pub fn encode_response(class: CommandClass, id: u8, status: ReaderStatus, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + data.len() + MESSAGE_CRC_LEN);
    out.extend_from_slice(&[class.0, id, status.0]);
    out.extend_from_slice(data);
    seal(out)
}

/// Turns the status and data of a response to `class` into the event for the app.
pub fn response_event(class: CommandClass, status: ReaderStatus, data: &[u8]) -> ReaderEvent {
    match (class, status) {
        (CommandClass::APDU, ReaderStatus::OK) => {
            if data.len() < 2 {
                ReaderEvent::Error(LinkError::ProtocolViolation {
                    what: "R-APDU without status word",
                })
            } else {
                ReaderEvent::ApduResponse(data.to_vec())
            }
        }
        (CommandClass::APDU, ReaderStatus::NO_CARD | ReaderStatus::CARD_REMOVED) => {
            ReaderEvent::CardRemoved
        }
        (CommandClass::POLL_CARD, ReaderStatus::OK) => match ActivatedCard::decode(data) {
            Some(card) => ReaderEvent::CardPresent(card),
            None => ReaderEvent::Error(LinkError::ProtocolViolation {
                what: "malformed poll response",
            }),
        },
        (CommandClass::POLL_CARD, ReaderStatus::NO_CARD) => ReaderEvent::NoCard,
        (CommandClass::FIRMWARE_VERSION, ReaderStatus::OK) => match std::str::from_utf8(data) {
            Ok(text) => ReaderEvent::FirmwareVersion(text.to_owned()),
            Err(_) => ReaderEvent::Error(LinkError::ProtocolViolation {
                what: "firmware version is not UTF-8",
            }),
        },
        (CommandClass::BATTERY, ReaderStatus::OK) => match data {
            [level] if *level <= 100 => ReaderEvent::Battery(*level),
            _ => ReaderEvent::Error(LinkError::ProtocolViolation {
                what: "malformed battery level",
            }),
        },
        (_, ReaderStatus::OK) => ReaderEvent::Done(class),
        (_, ReaderStatus::CANCELLED) => ReaderEvent::Error(LinkError::Aborted),
        (_, ReaderStatus(code)) => ReaderEvent::Error(LinkError::ReaderError { code }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(message: &[u8]) -> &[u8] {
        let (body, crc) = message.split_at(message.len() - 4);
        assert_eq!(crc, crc32(body).to_be_bytes());
        body
    }

    #[test]
    fn requests_encode_class_id_data_crc() {
        let apdu = ReaderCommand::Apdu(vec![0x00, 0xB2, 0x01, 0x0C]).encode(7);
        assert_eq!(body(&apdu), [0x00, 7, 0x00, 0xB2, 0x01, 0x0C]);
        assert_eq!(
            split_request(&apdu),
            Some((CommandClass::APDU, 7, &[0x00, 0xB2, 0x01, 0x0C][..]))
        );
        assert_eq!(body(&ReaderCommand::PollCard.encode(1)), [0x10, 1]);
        assert_eq!(
            body(&ReaderCommand::Beep { duration_ms: 300 }.encode(2)),
            [0x23, 2, 0x01, 0x2C]
        );
        assert_eq!(
            body(&ReaderCommand::DisplayText("OK".into()).encode(3)),
            [0x22, 3, b'O', b'K']
        );
    }

    #[test]
    fn damaged_messages_are_refused() {
        let mut apdu = ReaderCommand::Apdu(vec![0x00, 0xB2, 0x01, 0x0C]).encode(7);
        apdu[3] ^= 0x40;
        assert_eq!(split_request(&apdu), None);
        let mut resp = encode_response(CommandClass::APDU, 1, ReaderStatus::OK, &[0x90, 0]);
        assert!(split_response(&resp).is_some());
        let last = resp.len() - 1;
        resp[last] ^= 1;
        assert_eq!(split_response(&resp), None);
        assert_eq!(split_response(&[1, 2, 3]), None);
        assert_eq!(split_request(&[]), None);
    }

    #[test]
    fn display_text_limit_counts_characters() {
        assert!(
            ReaderCommand::DisplayText("é".repeat(32))
                .validate()
                .is_ok()
        );
        assert_eq!(
            ReaderCommand::DisplayText("x".repeat(33)).validate(),
            Err(LinkError::InvalidCommand {
                what: "display text longer than 32 characters"
            })
        );
        assert!(ReaderCommand::Apdu(vec![0; 3]).validate().is_err());
    }

    #[test]
    fn responses_map_to_events() {
        assert_eq!(
            response_event(CommandClass::APDU, ReaderStatus::OK, &[0x90, 0x00]),
            ReaderEvent::ApduResponse(vec![0x90, 0x00])
        );
        assert_eq!(
            response_event(CommandClass::APDU, ReaderStatus::CARD_REMOVED, &[]),
            ReaderEvent::CardRemoved
        );
        assert_eq!(
            response_event(CommandClass::POLL_CARD, ReaderStatus::NO_CARD, &[]),
            ReaderEvent::NoCard
        );
        let card = ActivatedCard {
            atqa: [0x00, 0x04],
            sak: 0x20,
            uid: vec![0x08, 1, 2, 3],
        };
        assert_eq!(
            response_event(CommandClass::POLL_CARD, ReaderStatus::OK, &card.encode()),
            ReaderEvent::CardPresent(card)
        );
        assert_eq!(
            response_event(CommandClass::BATTERY, ReaderStatus::OK, &[101]),
            ReaderEvent::Error(LinkError::ProtocolViolation {
                what: "malformed battery level"
            })
        );
        assert_eq!(
            response_event(CommandClass::BEEP, ReaderStatus(0x7E), &[]),
            ReaderEvent::Error(LinkError::ReaderError { code: 0x7E })
        );
        assert_eq!(
            response_event(CommandClass::DISPLAY_TEXT, ReaderStatus::OK, &[]),
            ReaderEvent::Done(CommandClass::DISPLAY_TEXT)
        );
    }

    #[test]
    fn debug_never_shows_apdu_bytes() {
        let shown = format!(
            "{:?} {:?}",
            ReaderCommand::Apdu(b"4761739001010010".to_vec()),
            ReaderEvent::ApduResponse(b"4761739001010010".to_vec())
        );
        assert_eq!(shown, "Apdu(len=16) ApduResponse(len=16)");
    }
}

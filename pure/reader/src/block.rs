//! The three block kinds of the reader link, coded in the PCB as in ISO/IEC 7816-3:2006
//! §11.3.2.2 (T=1), plus this profile's exchange tag in two bits ISO leaves RFU:
//!
//! ```text
//! I-block  0 N(S) M t2 t1 t0 0 0   N(S): send sequence number, M: more data (chaining)
//! R-block  1 0 t2 N(R) t1 t0 e e   N(R): N(S) of the expected I-block; ee: 00 ok,
//!                                  01 EDC/parity error, 10 other error
//! S-block  1 1 r t2 t1 t0 k k      r: 0 request / 1 response; kk: 00 RESYNCH, 01 IFS,
//!                                  10 ABORT, 11 WTX
//! ```
//!
//! `t2 t1 t0` is the **exchange tag** ([`Tag`]), a profile deviation from ISO/IEC 7816-3,
//! where these bits are RFU (zero): b4..b3 in every block, plus b5 in I- and S-blocks or b6
//! in R-blocks (whose b5 is N(R)). The terminal stamps every block it sends with a counter
//! modulo 8, one step per transmission (retransmissions included); the reader stamps every
//! block with the tag of the last terminal block it received, i.e. the transmission it
//! answers. Why: T=1 assumes a line that loses and damages but never duplicates. Over BLE
//! chunks a duplicated R-block is ambiguous at any sequence-number modulus, because
//! "acknowledged piece k" and "send me piece k + 1" are the same R-block; what a duplicate
//! breaks is the pairing of an answer with the block it answers, and the tag restores exactly
//! that pairing (see [`super::engine`] and the reader in `smartpos-sim` for the rules built
//! on it). Modulo 8 because the link is stop-and-wait on an in-order channel: a stale answer
//! would have to sit in the channel through eight terminal transmissions (several block
//! waiting times) to pass for a fresh one, and the reader would have to miss seven terminal
//! blocks in a row to take a new block for a duplicate (which costs a retransmission, not
//! correctness). Modulo 4 (b4..b3 only) was measured too short: at 10 % loss and damage per
//! chunk, three lost transmissions in a row happen in most 200-exchange runs.
//!
//! IFS and WTX S-blocks carry one INF byte (the IFS value 1..=254, the BWT multiplier
//! 1..=255); the others carry none. The remaining RFU bits must be zero: a block that breaks
//! any of these rules is refused with a [`BlockError`] and handled as an invalid block
//! (§11.6.3).

use super::frame::{Frame, MAX_INF};
use thiserror::Error;

/// A one-bit sequence number: N(S) of an I-block, N(R) of an R-block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Seq {
    /// Sequence number 0 (the value after reset or RESYNCH).
    #[default]
    Zero,
    /// Sequence number 1.
    One,
}

impl Seq {
    /// The other value (sequence numbers count modulo 2).
    pub fn next(self) -> Seq {
        match self {
            Seq::Zero => Seq::One,
            Seq::One => Seq::Zero,
        }
    }

    fn from_bit(set: bool) -> Seq {
        if set { Seq::One } else { Seq::Zero }
    }

    fn is_one(self) -> bool {
        self == Seq::One
    }
}

/// The exchange tag of this profile: three PCB bits that pair every reader block with the
/// terminal transmission it answers (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Tag(u8);

impl Tag {
    /// Number of distinct tags.
    pub const MODULUS: u8 = 8;

    /// The tag with value `value` modulo 8.
    pub fn new(value: u8) -> Tag {
        Tag(value % Tag::MODULUS)
    }

    /// The tag's value, 0..=7.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The following tag (counting modulo 8).
    pub fn next(self) -> Tag {
        Tag::new(self.0.wrapping_add(1))
    }

    /// The PCB bits holding the tag in a block with this PCB (the block kind is read from
    /// b8..b7): b5 b4 b3 for I- and S-blocks, b6 b4 b3 for R-blocks.
    pub fn mask(pcb: u8) -> u8 {
        if pcb & 0xC0 == PCB_R { 0x2C } else { 0x1C }
    }

    /// The tag carried by a PCB.
    pub fn of_pcb(pcb: u8) -> Tag {
        let high = pcb & (Tag::mask(pcb) & 0x30) != 0;
        Tag::new((u8::from(high) << 2) | ((pcb >> 2) & 0x03))
    }

    /// The PCB bits of this tag for a block with this PCB.
    fn pcb_bits(self, pcb: u8) -> u8 {
        let high = if self.0 & 0x04 == 0 {
            0
        } else {
            Tag::mask(pcb) & 0x30
        };
        high | ((self.0 & 0x03) << 2)
    }
}

/// The error indication of an R-block (PCB bits b2..b1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RError {
    /// Error-free acknowledgement (chaining) or plain retransmission request (timeout).
    None,
    /// The last block received had a wrong EDC (or parity).
    Edc,
    /// The last block received was invalid for another reason.
    Other,
}

/// Supervisory block contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SBlock {
    /// S(RESYNCH request): reset sequence numbers and IFS; only the terminal sends it.
    ResynchRequest,
    /// S(RESYNCH response).
    ResynchResponse,
    /// S(IFS request) announcing the largest INF the sender accepts (1..=254).
    IfsRequest(u8),
    /// S(IFS response), echoing the value.
    IfsResponse(u8),
    /// S(ABORT request): abandon the chain or operation in progress.
    AbortRequest,
    /// S(ABORT response).
    AbortResponse,
    /// S(WTX request): the reader asks for `n` × BWT for its next block (1..=255).
    WtxRequest(u8),
    /// S(WTX response), echoing the multiplier.
    WtxResponse(u8),
}

impl SBlock {
    /// True for the request half of a pair.
    pub fn is_request(self) -> bool {
        matches!(
            self,
            SBlock::ResynchRequest
                | SBlock::IfsRequest(_)
                | SBlock::AbortRequest
                | SBlock::WtxRequest(_)
        )
    }
}

/// One block of the link protocol.
#[derive(Clone, PartialEq, Eq)]
pub enum Block {
    /// Information block: a piece of a command or response message.
    I {
        /// Send sequence number N(S).
        seq: Seq,
        /// More-data bit M: further pieces of the same message follow.
        more: bool,
        /// The piece (at most IFSC/IFSD bytes; may hold card data, never printed).
        data: Vec<u8>,
    },
    /// Receive-ready block: acknowledgement of a chained piece or retransmission request.
    R {
        /// N(S) of the I-block the sender expects next.
        seq: Seq,
        /// Error indication.
        error: RError,
    },
    /// Supervisory block.
    S(SBlock),
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Pieces of APDUs may hold a PAN or track 2: length only.
            Block::I { seq, more, data } => f
                .debug_struct("I")
                .field("seq", seq)
                .field("more", more)
                .field("len", &data.len())
                .finish(),
            Block::R { seq, error } => f
                .debug_struct("R")
                .field("seq", seq)
                .field("error", error)
                .finish(),
            Block::S(s) => f.debug_tuple("S").field(s).finish(),
        }
    }
}

/// Why a frame is not a valid block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Reserved (RFU) PCB bits are set or the S-block type is unknown.
    #[error("invalid PCB {pcb:#04X}")]
    InvalidPcb {
        /// The PCB received.
        pcb: u8,
    },
    /// The INF length does not fit the block kind (R: none; S: none or one byte).
    #[error("information field of {len} bytes not allowed for PCB {pcb:#04X}")]
    BadInfLength {
        /// The PCB received.
        pcb: u8,
        /// The INF length received.
        len: usize,
    },
    /// An IFS value of 0 or 255, or a WTX multiplier of 0.
    #[error("invalid S-block parameter {value} for PCB {pcb:#04X}")]
    BadParameter {
        /// The PCB received.
        pcb: u8,
        /// The parameter byte received.
        value: u8,
    },
    /// An I-block piece longer than a frame can carry.
    #[error("information block of {len} bytes exceeds {max}")]
    TooLong {
        /// Largest INF length.
        max: usize,
        /// Length given.
        len: usize,
    },
}

const PCB_R: u8 = 0x80;
const PCB_S: u8 = 0xC0;
const I_SEQ: u8 = 0x40;
const I_MORE: u8 = 0x20;
const R_SEQ: u8 = 0x10;
const S_RESPONSE: u8 = 0x20;

impl Block {
    /// The protocol control byte of this block.
    pub fn pcb(&self) -> u8 {
        match self {
            Block::I { seq, more, .. } => {
                (if seq.is_one() { I_SEQ } else { 0 }) | (if *more { I_MORE } else { 0 })
            }
            Block::R { seq, error } => {
                PCB_R
                    | (if seq.is_one() { R_SEQ } else { 0 })
                    | match error {
                        RError::None => 0,
                        RError::Edc => 1,
                        RError::Other => 2,
                    }
            }
            Block::S(s) => {
                let (kind, response) = match s {
                    SBlock::ResynchRequest => (0, false),
                    SBlock::ResynchResponse => (0, true),
                    SBlock::IfsRequest(_) => (1, false),
                    SBlock::IfsResponse(_) => (1, true),
                    SBlock::AbortRequest => (2, false),
                    SBlock::AbortResponse => (2, true),
                    SBlock::WtxRequest(_) => (3, false),
                    SBlock::WtxResponse(_) => (3, true),
                };
                PCB_S | kind | if response { S_RESPONSE } else { 0 }
            }
        }
    }

    /// Builds the frame carrying this block, addressed with `nad`, with exchange tag 0.
    pub fn to_frame(&self, nad: u8) -> Result<Frame, BlockError> {
        self.to_tagged_frame(nad, Tag::default())
    }

    /// Builds the frame carrying this block, addressed with `nad` and stamped with `tag`.
    pub fn to_tagged_frame(&self, nad: u8, tag: Tag) -> Result<Frame, BlockError> {
        let inf = match self {
            Block::I { data, .. } => {
                if data.len() > MAX_INF {
                    return Err(BlockError::TooLong {
                        max: MAX_INF,
                        len: data.len(),
                    });
                }
                data.clone()
            }
            Block::R { .. } => Vec::new(),
            Block::S(
                SBlock::IfsRequest(v)
                | SBlock::IfsResponse(v)
                | SBlock::WtxRequest(v)
                | SBlock::WtxResponse(v),
            ) => vec![*v],
            Block::S(_) => Vec::new(),
        };
        Ok(Frame {
            nad,
            pcb: self.pcb() | tag.pcb_bits(self.pcb()),
            inf,
        })
    }

    /// True when `pcb` is a well-formed PCB of any block kind (RFU bits clear; the tag bits
    /// may hold anything). Used by the reassembler to find frame starts in a damaged stream.
    pub fn pcb_is_valid(pcb: u8) -> bool {
        let pcb = pcb & !Tag::mask(pcb);
        match pcb & 0xC0 {
            0x00 | 0x40 => pcb & 0x1F == 0,
            PCB_R => pcb & 0x2C == 0 && pcb & 0x03 != 0x03,
            _ => pcb & 0x1C == 0,
        }
    }

    /// Interprets a received frame (the NAD has already been checked by the caller). The
    /// exchange tag is not part of the block: read it with [`Tag::of_pcb`].
    pub fn from_frame(frame: &Frame) -> Result<Block, BlockError> {
        let pcb = frame.pcb;
        if !Block::pcb_is_valid(pcb) {
            return Err(BlockError::InvalidPcb { pcb });
        }
        let pcb = pcb & !Tag::mask(pcb);
        let len = frame.inf.len();
        match pcb & 0xC0 {
            0x00 | 0x40 => {
                if len > MAX_INF {
                    return Err(BlockError::TooLong { max: MAX_INF, len });
                }
                Ok(Block::I {
                    seq: Seq::from_bit(pcb & I_SEQ != 0),
                    more: pcb & I_MORE != 0,
                    data: frame.inf.clone(),
                })
            }
            PCB_R => {
                if len != 0 {
                    return Err(BlockError::BadInfLength { pcb, len });
                }
                let error = match pcb & 0x03 {
                    0 => RError::None,
                    1 => RError::Edc,
                    _ => RError::Other,
                };
                Ok(Block::R {
                    seq: Seq::from_bit(pcb & R_SEQ != 0),
                    error,
                })
            }
            _ => {
                let response = pcb & S_RESPONSE != 0;
                let kind = pcb & 0x03;
                let param = match (kind, frame.inf.as_slice()) {
                    (0 | 2, []) => None,
                    (1 | 3, [v]) => Some(*v),
                    _ => return Err(BlockError::BadInfLength { pcb, len }),
                };
                let s = match (kind, response, param) {
                    (0, false, _) => SBlock::ResynchRequest,
                    (0, true, _) => SBlock::ResynchResponse,
                    (2, false, _) => SBlock::AbortRequest,
                    (2, true, _) => SBlock::AbortResponse,
                    (1, _, Some(v)) if v == 0 || v == 0xFF => {
                        return Err(BlockError::BadParameter { pcb, value: v });
                    }
                    (3, _, Some(0)) => return Err(BlockError::BadParameter { pcb, value: 0 }),
                    (1, false, Some(v)) => SBlock::IfsRequest(v),
                    (1, true, Some(v)) => SBlock::IfsResponse(v),
                    (_, false, Some(v)) => SBlock::WtxRequest(v),
                    (_, _, v) => SBlock::WtxResponse(v.unwrap_or(1)),
                };
                Ok(Block::S(s))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::frame::{Edc, NAD_TO_READER};

    fn round_trip(block: Block, pcb: u8) {
        assert_eq!(block.pcb(), pcb, "{block:?}");
        let frame = block.to_frame(NAD_TO_READER).unwrap();
        let bytes = frame.encode(Edc::Crc16X25).unwrap();
        let (decoded, used) = Frame::decode(&bytes, Edc::Crc16X25).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(Block::from_frame(&decoded).unwrap(), block);
    }

    #[test]
    fn every_block_type_round_trips_with_its_iso_pcb() {
        let data = vec![0x00, 0xA4, 0x04, 0x00];
        round_trip(
            Block::I {
                seq: Seq::Zero,
                more: false,
                data: data.clone(),
            },
            0x00,
        );
        round_trip(
            Block::I {
                seq: Seq::One,
                more: false,
                data: data.clone(),
            },
            0x40,
        );
        round_trip(
            Block::I {
                seq: Seq::Zero,
                more: true,
                data: data.clone(),
            },
            0x20,
        );
        round_trip(
            Block::I {
                seq: Seq::One,
                more: true,
                data,
            },
            0x60,
        );
        round_trip(
            Block::R {
                seq: Seq::Zero,
                error: RError::None,
            },
            0x80,
        );
        round_trip(
            Block::R {
                seq: Seq::One,
                error: RError::None,
            },
            0x90,
        );
        round_trip(
            Block::R {
                seq: Seq::Zero,
                error: RError::Edc,
            },
            0x81,
        );
        round_trip(
            Block::R {
                seq: Seq::One,
                error: RError::Other,
            },
            0x92,
        );
        round_trip(Block::S(SBlock::ResynchRequest), 0xC0);
        round_trip(Block::S(SBlock::ResynchResponse), 0xE0);
        round_trip(Block::S(SBlock::IfsRequest(0xFE)), 0xC1);
        round_trip(Block::S(SBlock::IfsResponse(0x20)), 0xE1);
        round_trip(Block::S(SBlock::AbortRequest), 0xC2);
        round_trip(Block::S(SBlock::AbortResponse), 0xE2);
        round_trip(Block::S(SBlock::WtxRequest(3)), 0xC3);
        round_trip(Block::S(SBlock::WtxResponse(3)), 0xE3);
    }

    #[test]
    fn exchange_tag_uses_the_rfu_bits_of_every_block_kind() {
        let blocks = [
            (
                Block::I {
                    seq: Seq::One,
                    more: true,
                    data: vec![1, 2],
                },
                0x10,
            ),
            (
                Block::R {
                    seq: Seq::One,
                    error: RError::Other,
                },
                0x20,
            ),
            (Block::S(SBlock::WtxResponse(9)), 0x10),
        ];
        for (block, high_bit) in blocks {
            for value in 0..8u8 {
                let tag = Tag::new(value);
                let frame = block.to_tagged_frame(NAD_TO_READER, tag).unwrap();
                let high = if value >= 4 { high_bit } else { 0 };
                assert_eq!(
                    frame.pcb,
                    block.pcb() | high | ((value & 3) << 2),
                    "{block:?}"
                );
                assert!(Block::pcb_is_valid(frame.pcb));
                assert_eq!(Tag::of_pcb(frame.pcb), tag);
                assert_eq!(Block::from_frame(&frame).unwrap(), block);
            }
        }
        assert_eq!(Tag::new(7).next(), Tag::new(0));
        assert_eq!(Tag::new(13).value(), 5);
        assert_eq!(Tag::of_pcb(0xBC), Tag::new(7));
        assert_eq!(Tag::of_pcb(0x9C), Tag::new(3));
        assert_eq!(Tag::of_pcb(0x5C), Tag::new(7));
    }

    #[test]
    fn empty_i_block_is_valid() {
        round_trip(
            Block::I {
                seq: Seq::One,
                more: false,
                data: Vec::new(),
            },
            0x40,
        );
    }

    #[test]
    fn rfu_bits_and_bad_lengths_are_refused() {
        let frame = |pcb, inf: &[u8]| Frame {
            nad: NAD_TO_READER,
            pcb,
            inf: inf.to_vec(),
        };
        for pcb in [0x01, 0x41, 0x02, 0x13, 0x7F, 0x83, 0xBF] {
            assert_eq!(
                Block::from_frame(&frame(pcb, &[])),
                Err(BlockError::InvalidPcb { pcb }),
                "{pcb:#04X}"
            );
        }
        assert_eq!(
            Block::from_frame(&frame(0x80, &[1])),
            Err(BlockError::BadInfLength { pcb: 0x80, len: 1 })
        );
        assert_eq!(
            Block::from_frame(&frame(0xC1, &[])),
            Err(BlockError::BadInfLength { pcb: 0xC1, len: 0 })
        );
        assert_eq!(
            Block::from_frame(&frame(0xC0, &[0])),
            Err(BlockError::BadInfLength { pcb: 0xC0, len: 1 })
        );
        assert_eq!(
            Block::from_frame(&frame(0xC1, &[0])),
            Err(BlockError::BadParameter {
                pcb: 0xC1,
                value: 0
            })
        );
        assert_eq!(
            Block::from_frame(&frame(0xE1, &[0xFF])),
            Err(BlockError::BadParameter {
                pcb: 0xE1,
                value: 0xFF
            })
        );
        assert_eq!(
            Block::from_frame(&frame(0xC3, &[0])),
            Err(BlockError::BadParameter {
                pcb: 0xC3,
                value: 0
            })
        );
    }

    #[test]
    fn oversized_piece_cannot_be_framed() {
        let block = Block::I {
            seq: Seq::Zero,
            more: false,
            data: vec![0; 255],
        };
        assert_eq!(
            block.to_frame(NAD_TO_READER),
            Err(BlockError::TooLong { max: 254, len: 255 })
        );
    }

    #[test]
    fn sequence_numbers_alternate() {
        assert_eq!(Seq::default(), Seq::Zero);
        assert_eq!(Seq::Zero.next(), Seq::One);
        assert_eq!(Seq::One.next(), Seq::Zero);
    }
}

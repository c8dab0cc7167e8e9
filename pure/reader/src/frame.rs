//! Frames of the reader link: `NAD PCB LEN INF EDC`, in the shape of the ISO/IEC 7816-3:2006
//! §11.3 T=1 block (prologue, information field, epilogue).
//!
//! - NAD (node address, §11.3.2.1): bits b7..b5 source, b3..b1 destination. This profile uses
//!   address 1 for the terminal and 2 for the reader, so a terminal-to-reader frame carries
//!   [`NAD_TO_READER`] (`0x12`) and a reader-to-terminal frame [`NAD_TO_TERMINAL`] (`0x21`).
//!   Distinct, non-zero values make the receiver's resynchronisation scan (see
//!   [`super::transport::Reassembler`]) less likely to lock onto garbage.
//! - PCB: the block kind and its control bits (see [`super::block`]).
//! - LEN: `0..=254`; `0xFF` is reserved (§11.3.2.3).
//! - EDC (§11.3.3 / §11.4.4): either an LRC (XOR of every prior byte) or a two-byte CRC over
//!   the same bytes. Both sides must be configured with the same [`Edc`]; on a real T=1 card it
//!   is announced in the ATR (TCi), here it is part of the link configuration.
//!
//! Decoding follows "check, then parse": [`FrameError::Incomplete`] means "wait for more bytes",
//! every other error means the bytes are not a valid frame.

use thiserror::Error;

/// Largest information field a frame can carry (LEN `0xFF` is reserved, ISO/IEC 7816-3 §11.3.2.3).
pub const MAX_INF: usize = 254;

/// NAD of a frame the terminal sends to the reader (source 1, destination 2).
pub const NAD_TO_READER: u8 = 0x12;

/// NAD of a frame the reader sends to the terminal (source 2, destination 1).
pub const NAD_TO_TERMINAL: u8 = 0x21;

/// Length of the prologue (NAD, PCB, LEN).
pub const PROLOGUE_LEN: usize = 3;

/// The error detection code at the end of each frame.
///
/// ISO/IEC 7816-3 §11.4.4 offers an LRC (one byte) or a CRC (two bytes, "as specified in
/// ISO/IEC 13239"). ISO/IEC 13239 is the HDLC frame check sequence, i.e. the CCITT polynomial
/// x¹⁶ + x¹² + x⁵ + 1 with the X.25 parameters ([`Edc::Crc16X25`], the default CRC). Some
/// readers use the same polynomial unreflected with no final XOR ([`Edc::Crc16CcittFalse`]);
/// both are offered so a reader profile can pick what its firmware does.
///
/// The default is [`Edc::Crc16X25`]: over BLE chunks the receiver resynchronises by scanning,
/// and every scan position is a fresh chance for an 8-bit LRC to accept a frame spliced from
/// a duplicated or stale chunk (measured here: roughly one spliced frame per few hundred
/// exchanges at 10 % duplication). The end-to-end message CRC still rejects such a frame,
/// but the command then costs a RESYNCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Edc {
    /// One byte: XOR of NAD, PCB, LEN and INF (ISO/IEC 7816-3 §11.4.4, the T=1 default).
    Lrc,
    /// CRC-16/X-25 (ISO/IEC 13239 FCS): polynomial `0x1021` reflected, init `0xFFFF`, final XOR
    /// `0xFFFF`; check value over `"123456789"` is `0x906E`. Sent low byte first, the HDLC
    /// transmission order.
    #[default]
    Crc16X25,
    /// CRC-16/CCITT-FALSE: polynomial `0x1021`, not reflected, init `0xFFFF`, no final XOR;
    /// check value over `"123456789"` is `0x29B1`. Sent high byte first.
    Crc16CcittFalse,
}

impl Edc {
    /// Number of EDC bytes at the end of a frame.
    pub fn len(self) -> usize {
        match self {
            Edc::Lrc => 1,
            Edc::Crc16X25 | Edc::Crc16CcittFalse => 2,
        }
    }

    /// Always false: an EDC has at least one byte (present for clippy's `len_without_is_empty`).
    pub fn is_empty(self) -> bool {
        false
    }

    /// Computes the EDC bytes over `bytes` (prologue and INF), in transmission order.
    pub fn compute(self, bytes: &[u8]) -> EdcBytes {
        match self {
            Edc::Lrc => EdcBytes {
                bytes: [lrc(bytes), 0],
                len: 1,
            },
            Edc::Crc16X25 => {
                let crc = crc16_x25(bytes);
                EdcBytes {
                    bytes: crc.to_le_bytes(),
                    len: 2,
                }
            }
            Edc::Crc16CcittFalse => {
                let crc = crc16_ccitt_false(bytes);
                EdcBytes {
                    bytes: crc.to_be_bytes(),
                    len: 2,
                }
            }
        }
    }
}

/// EDC bytes as computed by [`Edc::compute`] (one or two bytes, no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdcBytes {
    bytes: [u8; 2],
    len: usize,
}

impl EdcBytes {
    /// The EDC bytes in transmission order.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }
}

/// Longitudinal redundancy check: XOR of all bytes (ISO/IEC 7816-3 §11.4.4).
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// CRC-16/X-25 (the ISO/IEC 13239 FCS): reflected polynomial `0x8408`, init and final XOR `0xFFFF`.
pub fn crc16_x25(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc ^ 0xFFFF
}

/// CRC-16/CCITT-FALSE: polynomial `0x1021` MSB first, init `0xFFFF`, no final XOR.
pub fn crc16_ccitt_false(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// CRC-32/ISO-HDLC (the IEEE 802.3 CRC): reflected polynomial `0xEDB88320`, init and final
/// XOR `0xFFFF_FFFF`; check value over `"123456789"` is `0xCBF43926`. Used end to end over
/// whole reader messages (see [`super::command`]), independent of the per-frame EDC.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc: u32 = 0xFFFF_FFFF;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc ^ 0xFFFF_FFFF
}

/// Why bytes are not (yet) a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not enough bytes yet: at least `needed` bytes in total are required.
    #[error("incomplete frame: {needed} bytes needed")]
    Incomplete {
        /// Total number of bytes the frame needs, as far as is known.
        needed: usize,
    },
    /// LEN is `0xFF` (reserved).
    #[error("reserved frame length 0xFF")]
    ReservedLength,
    /// The information field to encode is longer than 254 bytes.
    #[error("information field too long: {got} bytes, at most {max}")]
    InfTooLong {
        /// Largest allowed length.
        max: usize,
        /// Length given.
        got: usize,
    },
    /// The EDC does not match the frame's bytes.
    #[error("error detection code mismatch")]
    EdcMismatch,
}

/// One frame: node address, protocol control byte and information field. The EDC is computed
/// when encoding and checked when decoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Node address byte.
    pub nad: u8,
    /// Protocol control byte.
    pub pcb: u8,
    /// Information field (at most [`MAX_INF`] bytes). May hold card data: never printed.
    pub inf: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The INF may carry APDUs with a PAN or track 2: show its length only.
        f.debug_struct("Frame")
            .field("nad", &format_args!("{:02X}", self.nad))
            .field("pcb", &format_args!("{:02X}", self.pcb))
            .field("inf_len", &self.inf.len())
            .finish()
    }
}

impl Frame {
    /// Encodes the frame with its EDC.
    pub fn encode(&self, edc: Edc) -> Result<Vec<u8>, FrameError> {
        let len = u8::try_from(self.inf.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_INF)
            .ok_or(FrameError::InfTooLong {
                max: MAX_INF,
                got: self.inf.len(),
            })?;
        let mut out = Vec::with_capacity(PROLOGUE_LEN + self.inf.len() + edc.len());
        out.push(self.nad);
        out.push(self.pcb);
        out.push(len);
        out.extend_from_slice(&self.inf);
        let code = edc.compute(&out);
        out.extend_from_slice(code.as_slice());
        Ok(out)
    }

    /// Checks that `bytes` starts with a complete frame and returns its total length
    /// (prologue + INF + EDC), without checking the EDC.
    pub fn check(bytes: &[u8], edc: Edc) -> Result<usize, FrameError> {
        let Some(&len) = bytes.get(2) else {
            return Err(FrameError::Incomplete {
                needed: PROLOGUE_LEN,
            });
        };
        if len == 0xFF {
            return Err(FrameError::ReservedLength);
        }
        let total = PROLOGUE_LEN + usize::from(len) + edc.len();
        if bytes.len() < total {
            return Err(FrameError::Incomplete { needed: total });
        }
        Ok(total)
    }

    /// Decodes the frame at the start of `bytes`; returns it and the number of bytes used.
    pub fn decode(bytes: &[u8], edc: Edc) -> Result<(Frame, usize), FrameError> {
        let total = Frame::check(bytes, edc)?;
        let body_len = total - edc.len();
        let (Some(body), Some(code)) = (bytes.get(..body_len), bytes.get(body_len..total)) else {
            return Err(FrameError::Incomplete { needed: total });
        };
        if edc.compute(body).as_slice() != code {
            return Err(FrameError::EdcMismatch);
        }
        let (Some(&nad), Some(&pcb), Some(inf)) =
            (body.first(), body.get(1), body.get(PROLOGUE_LEN..))
        else {
            return Err(FrameError::Incomplete {
                needed: PROLOGUE_LEN,
            });
        };
        Ok((
            Frame {
                nad,
                pcb,
                inf: inf.to_vec(),
            },
            total,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Check values from the CRC RevEng catalogue of parametrised CRC algorithms
    // (G. Cook, "CRC-16/IBM-SDLC" alias X-25, and "CRC-16/IBM-3740" alias CCITT-FALSE).
    #[test]
    fn crc_check_values_match_the_catalogue() {
        assert_eq!(crc16_x25(b"123456789"), 0x906E);
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn lrc_is_xor_of_all_bytes() {
        assert_eq!(lrc(&[]), 0);
        assert_eq!(lrc(&[0x12, 0x00, 0x02, 0xA5, 0x5A]), 0x12 ^ 0x02 ^ 0xFF);
    }

    #[test]
    fn lrc_frame_round_trips() {
        let frame = Frame {
            nad: NAD_TO_READER,
            pcb: 0x40,
            inf: vec![0x00, 0x01, 0xA4],
        };
        let bytes = frame.encode(Edc::Lrc).unwrap();
        assert_eq!(
            bytes,
            vec![
                0x12,
                0x40,
                0x03,
                0x00,
                0x01,
                0xA4,
                0x12 ^ 0x40 ^ 0x03 ^ 0x01 ^ 0xA4
            ]
        );
        assert_eq!(
            Frame::decode(&bytes, Edc::Lrc).unwrap(),
            (frame, bytes.len())
        );
    }

    #[test]
    fn crc_frames_round_trip_in_their_byte_order() {
        let frame = Frame {
            nad: NAD_TO_TERMINAL,
            pcb: 0xC1,
            inf: vec![0x20],
        };
        for edc in [Edc::Crc16X25, Edc::Crc16CcittFalse] {
            let bytes = frame.encode(edc).unwrap();
            assert_eq!(bytes.len(), 6);
            assert_eq!(Frame::decode(&bytes, edc).unwrap().0, frame);
        }
        let x25 = frame.encode(Edc::Crc16X25).unwrap();
        assert_eq!(x25[4..], crc16_x25(&x25[..4]).to_le_bytes());
        let ccitt = frame.encode(Edc::Crc16CcittFalse).unwrap();
        assert_eq!(ccitt[4..], crc16_ccitt_false(&ccitt[..4]).to_be_bytes());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let frame = Frame {
            nad: NAD_TO_READER,
            pcb: 0x00,
            inf: (0..40).collect(),
        };
        for edc in [Edc::Lrc, Edc::Crc16X25, Edc::Crc16CcittFalse] {
            let bytes = frame.encode(edc).unwrap();
            for bit in 0..bytes.len() * 8 {
                let mut bad = bytes.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let result = Frame::decode(&bad, edc);
                // A flipped LEN byte may turn into "incomplete" or "reserved": never a frame.
                assert!(result.is_err(), "{edc:?} bit {bit} not detected");
            }
        }
    }

    #[test]
    fn incomplete_differs_from_invalid() {
        let bytes = Frame {
            nad: NAD_TO_READER,
            pcb: 0,
            inf: vec![1, 2, 3],
        }
        .encode(Edc::Crc16X25)
        .unwrap();
        for cut in 0..bytes.len() {
            assert!(matches!(
                Frame::decode(&bytes[..cut], Edc::Crc16X25),
                Err(FrameError::Incomplete { .. })
            ));
        }
        assert_eq!(
            Frame::decode(&[0x12, 0x00, 0xFF, 0, 0], Edc::Lrc),
            Err(FrameError::ReservedLength)
        );
    }

    #[test]
    fn oversized_inf_is_refused() {
        let frame = Frame {
            nad: 0,
            pcb: 0,
            inf: vec![0; 255],
        };
        assert_eq!(
            frame.encode(Edc::Lrc),
            Err(FrameError::InfTooLong { max: 254, got: 255 })
        );
    }

    #[test]
    fn debug_hides_the_information_field() {
        let frame = Frame {
            nad: 0x12,
            pcb: 0,
            inf: b"4761739001010010".to_vec(),
        };
        let shown = format!("{frame:?}");
        assert!(shown.contains("inf_len: 16"));
        assert!(!shown.contains("52"), "{shown}");
    }
}

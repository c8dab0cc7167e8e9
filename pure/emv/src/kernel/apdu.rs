//! Command APDUs the kernel sends, R-APDU splitting, status-word mapping and the AFL.

use super::error::{KernelError, MalformedReason, Step};
use crate::tlv::{Tag, Tlv};

/// The PPSE name, `2PAY.SYS.DDF01` (Book B §3.3.2).
pub const PPSE_NAME: &[u8] = b"2PAY.SYS.DDF01";

/// Most records the kernel reads for one transaction: an AFL can name up to 63 × 254 records,
/// a hostile card should not keep the kernel busy that long.
pub const MAX_RECORDS: usize = 64;

/// SELECT by name, first occurrence (ISO/IEC 7816-4; Book 1 §11.3): `00 A4 04 00 Lc name 00`.
pub fn select(name: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(6 + name.len());
    c.extend_from_slice(&[0x00, 0xA4, 0x04, 0x00]);
    // A name is 5 to 16 bytes (AIDs) or 14 (PPSE); longer inputs are truncated to 255.
    let name = name.get(..name.len().min(255)).unwrap_or_default();
    c.push(name.len() as u8);
    c.extend_from_slice(name);
    c.push(0x00);
    c
}

/// GET PROCESSING OPTIONS (Book 3 §6.5.8): `80 A8 00 00 Lc 83 len data 00`.
pub fn gpo(pdol_data: &[u8], step: Step) -> Result<Vec<u8>, KernelError> {
    let body = Tlv::primitive(Tag(0x83), pdol_data.to_vec()).encode();
    short_case4([0x80, 0xA8, 0x00, 0x00], &body, step)
}

/// READ RECORD (Book 3 §6.5.11): `00 B2 record (sfi << 3 | 4) 00`.
pub fn read_record(sfi: u8, record: u8) -> Vec<u8> {
    vec![0x00, 0xB2, record, (sfi << 3) | 0x04, 0x00]
}

/// GENERATE AC (Book 3 §6.5.5), P1 `80` = ARQC without CDA: `80 AE 80 00 Lc data 00`.
pub fn generate_ac_arqc(cdol1_data: &[u8], step: Step) -> Result<Vec<u8>, KernelError> {
    short_case4([0x80, 0xAE, 0x80, 0x00], cdol1_data, step)
}

fn short_case4(header: [u8; 4], body: &[u8], step: Step) -> Result<Vec<u8>, KernelError> {
    let lc = u8::try_from(body.len()).map_err(|_| KernelError::Malformed {
        step,
        reason: MalformedReason::DolTooLong,
    })?;
    let mut c = Vec::with_capacity(6 + body.len());
    c.extend_from_slice(&header);
    c.push(lc);
    c.extend_from_slice(body);
    c.push(0x00);
    Ok(c)
}

/// Splits an R-APDU into data and status word.
pub fn split(rapdu: &[u8], step: Step) -> Result<(&[u8], u16), KernelError> {
    match rapdu.len().checked_sub(2) {
        Some(n) => {
            let (data, sw) = rapdu.split_at(n);
            let sw = match sw {
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            };
            Ok((data, sw))
        }
        None => Err(KernelError::Malformed {
            step,
            reason: MalformedReason::NoStatusWord,
        }),
    }
}

/// The error for a status word other than `9000`.
///
/// - `6A82` file not found: the PPSE or the AID is not on the card → not supported (Book B
///   §3.3.2: no PPSE means no contactless application).
/// - `6A81` to SELECT: card blocked or command not supported (Book 1 §12.3.2).
/// - `6283` to SELECT: selected file invalidated, i.e. application blocked (Book 1 §12.3.2).
/// - `6984`: reference data not usable (ISO/IEC 7816-4); per my reading cards answer it when
///   the application is invalidated → application blocked.
/// - `6985`: conditions of use not satisfied (Book 3 §6.5.8: the card cannot do this
///   transaction; Books C-2/C-3 turn it into "select next").
/// - `6986` to GPO or GENERATE AC: per my reading of Book C-3 (qVSDC GPO processing) the card
///   wants another interface → try another interface.
pub fn sw_error(step: Step, sw: u16) -> KernelError {
    match (sw, step) {
        (0x6A82, _) => KernelError::NotSupported { step, sw },
        (0x6A81, Step::SelectPpse | Step::SelectAid) => KernelError::CardBlocked { sw },
        (0x6283, Step::SelectPpse | Step::SelectAid) | (0x6984, _) => {
            KernelError::AppBlocked { step, sw }
        }
        (0x6985, _) => KernelError::ConditionsNotSatisfied { step, sw },
        (0x6986, Step::Gpo | Step::GenerateAc) => KernelError::TryAnotherInterface { step },
        _ => KernelError::CardError { step, sw },
    }
}

/// One AFL entry (Book 3 §10.2): SFI, first and last record, records for ODA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AflEntry {
    /// Short file identifier, 1 to 30.
    pub sfi: u8,
    /// First record, at least 1.
    pub first: u8,
    /// Last record, at least `first`.
    pub last: u8,
}

/// Parses an AFL into the list of `(sfi, record)` to read. Book 3 §10.2: each entry is 4
/// bytes; SFI in bits 8-4 of byte 1 and not 0 or 31; first record ≥ 1; last ≥ first; the
/// ODA count ≤ the number of records. Anything else is malformed.
pub fn parse_afl(afl: &[u8], step: Step) -> Result<Vec<(u8, u8)>, KernelError> {
    let bad = KernelError::Malformed {
        step,
        reason: MalformedReason::BadAfl,
    };
    if !afl.len().is_multiple_of(4) {
        return Err(bad);
    }
    let mut out = Vec::new();
    for chunk in afl.chunks_exact(4) {
        let &[b1, first, last, oda] = chunk else {
            return Err(bad);
        };
        let sfi = b1 >> 3;
        if b1 & 0x07 != 0 || sfi == 0 || sfi == 31 || first == 0 || last < first {
            return Err(bad);
        }
        if u16::from(oda) > u16::from(last - first) + 1 {
            return Err(bad);
        }
        let entry = AflEntry { sfi, first, last };
        for rec in entry.first..=entry.last {
            if out.len() >= MAX_RECORDS {
                return Err(bad);
            }
            out.push((entry.sfi, rec));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::encode;

    #[test]
    fn commands_have_the_book_layout() {
        assert_eq!(
            encode(&select(PPSE_NAME)),
            "00A404000E325041592E5359532E444446303100"
        );
        assert_eq!(encode(&read_record(3, 1)), "00B2011C00");
        assert_eq!(
            encode(&gpo(&[0xAA, 0xBB], Step::Gpo).unwrap()),
            "80A80000048302AABB00"
        );
        assert_eq!(encode(&gpo(&[], Step::Gpo).unwrap()), "80A8000002830000");
        assert_eq!(
            encode(&generate_ac_arqc(&[1, 2, 3], Step::GenerateAc).unwrap()),
            "80AE80000301020300"
        );
    }

    #[test]
    fn oversized_dol_data_is_an_error_not_a_truncation() {
        assert!(matches!(
            gpo(&[0; 253], Step::Gpo),
            Err(KernelError::Malformed {
                reason: MalformedReason::DolTooLong,
                ..
            })
        ));
        assert!(gpo(&[0; 252], Step::Gpo).is_ok());
    }

    #[test]
    fn split_needs_a_status_word() {
        assert_eq!(split(&[0x90, 0x00], Step::Gpo).unwrap(), (&[][..], 0x9000));
        assert_eq!(
            split(&[1, 0x6A, 0x82], Step::Gpo).unwrap(),
            (&[1][..], 0x6A82)
        );
        assert!(split(&[0x90], Step::Gpo).is_err());
        assert!(split(&[], Step::Gpo).is_err());
    }

    #[test]
    fn status_words_map_to_typed_errors() {
        assert_eq!(
            sw_error(Step::SelectPpse, 0x6A82),
            KernelError::NotSupported {
                step: Step::SelectPpse,
                sw: 0x6A82
            }
        );
        assert_eq!(
            sw_error(Step::SelectPpse, 0x6A81),
            KernelError::CardBlocked { sw: 0x6A81 }
        );
        assert!(matches!(
            sw_error(Step::SelectAid, 0x6283),
            KernelError::AppBlocked { .. }
        ));
        assert!(matches!(
            sw_error(Step::Gpo, 0x6986),
            KernelError::TryAnotherInterface { step: Step::Gpo }
        ));
        assert!(matches!(
            sw_error(Step::Gpo, 0x6985),
            KernelError::ConditionsNotSatisfied { .. }
        ));
        assert!(matches!(
            sw_error(Step::ReadRecord, 0x6A83),
            KernelError::CardError { sw: 0x6A83, .. }
        ));
    }

    #[test]
    fn afl_rules() {
        assert_eq!(
            parse_afl(&[0x08, 1, 2, 0, 0x10, 1, 1, 1], Step::Gpo).unwrap(),
            vec![(1, 1), (1, 2), (2, 1)]
        );
        assert!(parse_afl(&[0x08, 1, 2], Step::Gpo).is_err());
        assert!(parse_afl(&[0x00, 1, 1, 0], Step::Gpo).is_err());
        assert!(parse_afl(&[0xF8, 1, 1, 0], Step::Gpo).is_err());
        assert!(parse_afl(&[0x09, 1, 1, 0], Step::Gpo).is_err());
        assert!(parse_afl(&[0x08, 0, 1, 0], Step::Gpo).is_err());
        assert!(parse_afl(&[0x08, 2, 1, 0], Step::Gpo).is_err());
        assert!(parse_afl(&[0x08, 1, 1, 2], Step::Gpo).is_err());
        assert!(parse_afl(&[0x08, 1, 254, 0], Step::Gpo).is_err());
        assert_eq!(parse_afl(&[], Step::Gpo).unwrap(), vec![]);
    }
}

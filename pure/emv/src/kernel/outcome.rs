//! What a successful card read gives the engine ([`CardOutcome`]), field 55, receipt fields,
//! and the issuer's answer ([`IssuerData`], [`issuer_response`]).

use super::error::{KernelError, MalformedReason, Step};
use crate::tlv::{self, Tag, Tlv, TlvValue};
use smartpos_types::hex::encode;
use smartpos_types::{Pan, Track2};
use std::fmt;

/// The cardholder verification method the kernel settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cvm {
    /// Enciphered PIN verified online: the engine must obtain a PIN block.
    OnlinePin,
    /// Signature on the receipt.
    Signature,
    /// No cardholder verification.
    NoCvm,
    /// Verified on the consumer's device (phone, watch) before the tap.
    ConsumerDevice,
}

impl Cvm {
    /// Text for the receipt.
    pub const fn receipt_text(self) -> &'static str {
        match self {
            Cvm::OnlinePin => "PIN VERIFIED ONLINE",
            Cvm::Signature => "SIGNATURE REQUIRED",
            Cvm::NoCvm => "NO CVM REQUIRED",
            Cvm::ConsumerDevice => "VERIFIED ON DEVICE",
        }
    }

    /// CVM Results (9F34, Book 3 Annex A): method code, condition code, result. Online PIN and
    /// signature results are "unknown" (`00`) at this point; no CVM is "successful" (`02`).
    /// Consumer-device CVM is coded `01 00 02` per my reading of Book C-2 (CVM Results for an
    /// on-device CVM).
    pub const fn results(self) -> [u8; 3] {
        match self {
            Cvm::OnlinePin => [0x02, 0x00, 0x00],
            Cvm::Signature => [0x1E, 0x00, 0x00],
            Cvm::NoCvm => [0x1F, 0x00, 0x02],
            Cvm::ConsumerDevice => [0x01, 0x00, 0x02],
        }
    }
}

/// The cryptogram the card produced (CID 9F27 bits 8-7, Book 3 §6.5.5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptogramType {
    /// `00`: Application Authentication Cryptogram: the card declines.
    Aac,
    /// `01`: Transaction Certificate: the card approves offline.
    Tc,
    /// `10`: Authorisation Request Cryptogram: go online.
    Arqc,
}

impl CryptogramType {
    /// From the CID byte; `None` for the RFU value `11`.
    pub const fn from_cid(cid: u8) -> Option<Self> {
        match cid >> 6 {
            0 => Some(CryptogramType::Aac),
            1 => Some(CryptogramType::Tc),
            2 => Some(CryptogramType::Arqc),
            _ => None,
        }
    }

    /// Short name: `AAC`, `TC`, `ARQC`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CryptogramType::Aac => "AAC",
            CryptogramType::Tc => "TC",
            CryptogramType::Arqc => "ARQC",
        }
    }
}

/// Which kernel flow the card took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelPath {
    /// Visa qVSDC / UnionPay qPBOC: the cryptogram came with GPO.
    Quick,
    /// Mastercard M/Chip: records, then GENERATE AC.
    MChip,
}

/// ICC data for ISO 8583 field 55: TLV bytes. `Debug` shows the length only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IccData(pub Vec<u8>);

impl IccData {
    /// The TLV bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for IccData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IccData(<{} bytes>)", self.0.len())
    }
}

/// The tags of field 55 in an authorisation request, in this order, each included when the
/// kernel has a value: the UnionPay POS field 55 list for a purchase ARQC (per my reading of
/// the CUP terminal specification, field 55 usage table), which also covers the EMV "minimum
/// data set" of Book 2 §8.1.1 Table 26 the issuer needs to verify the ARQC.
pub const FIELD55_TAGS: &[u32] = &[
    0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A, 0x9F03,
    0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F41, 0x9F63,
];

/// Receipt lines the kernel knows (Book 4 §11.4 lists AID, label, TVR, TSI, cryptogram).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFields {
    /// AID, hex.
    pub aid: String,
    /// Application label (printable ASCII only).
    pub label: String,
    /// TVR, hex.
    pub tvr: String,
    /// TSI, hex.
    pub tsi: String,
    /// `ARQC`/`TC`/`AAC`.
    pub cryptogram_type: String,
    /// The application cryptogram, hex.
    pub cryptogram: String,
    /// The CVM, as printed.
    pub cvm: String,
}

/// Everything the engine needs from a successful card read. `Debug` masks the PAN and track 2
/// and shows field 55 as a length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardOutcome {
    /// Which flow the card took.
    pub path: KernelPath,
    /// The selected application's AID (DF name, 84).
    pub aid: Vec<u8>,
    /// Application label (50), printable ASCII; empty if the card gave none.
    pub app_label: String,
    /// The PAN (5A, or the PAN part of 57).
    pub pan: Pan,
    /// Track 2 equivalent data (57), if the card gave it.
    pub track2: Option<Track2>,
    /// Expiry `YYMM` (5F24, or track 2 if 5F24 is absent).
    pub expiry: String,
    /// Whether the application expired before the transaction date. The kernel does not
    /// decline: every contactless transaction here goes online, and the host declines an
    /// expired card (response `54`); the engine may also refuse it locally.
    pub expired: bool,
    /// PAN sequence number (5F34), 0 to 99.
    pub pan_seq: Option<u8>,
    /// The CVM.
    pub cvm: Cvm,
    /// Field 55 (see [`FIELD55_TAGS`]).
    pub icc_data: IccData,
    /// Terminal Verification Results as sent to the card with the cryptogram request.
    pub tvr: [u8; 5],
    /// Transaction Status Information.
    pub tsi: [u8; 2],
    /// What the card decided.
    pub cryptogram_type: CryptogramType,
    /// The application cryptogram (9F26).
    pub cryptogram: [u8; 8],
    /// Application transaction counter (9F36).
    pub atc: [u8; 2],
    /// Receipt lines.
    pub receipt: ReceiptFields,
    /// Time from the first SELECT to the last response, from the `now_ms` values passed in.
    pub card_in_field_ms: u64,
}

impl CardOutcome {
    /// Whether the card declined offline: it answered with an AAC (CID bits 8-7 `00`, Book 3
    /// §6.5.5.4) although the kernel asked for an online cryptogram. The terminal declines
    /// the transaction without going online; field 55 still carries the AAC for the journal.
    pub fn declined_offline(&self) -> bool {
        self.cryptogram_type == CryptogramType::Aac
    }
}

/// What the issuer sent back for the card (field 55 of the response).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IssuerData {
    /// Issuer Authentication Data (91): ARPC + ARC (method 1) or ARPC + CSU [+ data]
    /// (method 2).
    pub arpc: Option<Vec<u8>>,
    /// Authorisation Response Code (8A), if the issuer sent it in field 55.
    pub arc: Option<[u8; 2]>,
    /// Issuer scripts to run before the final GENERATE AC (71), each a whole TLV.
    pub scripts_71: Vec<Vec<u8>>,
    /// Issuer scripts to run after the final GENERATE AC (72), each a whole TLV.
    pub scripts_72: Vec<Vec<u8>>,
}

impl IssuerData {
    /// The ARPC and ARC of method 1 (91 is exactly 10 bytes), if that is what 91 holds.
    pub fn arpc_method1(&self) -> Option<([u8; 8], [u8; 2])> {
        let v = self.arpc.as_deref()?;
        let arpc: [u8; 8] = v.get(..8)?.try_into().ok()?;
        let arc: [u8; 2] = v.get(8..)?.try_into().ok()?;
        Some((arpc, arc))
    }
}

/// Parses the issuer's field 55 (91, 8A, 71, 72; other tags ignored).
///
/// A contactless card has usually left the field when the answer arrives, so this kernel does
/// not send a second GENERATE AC or EXTERNAL AUTHENTICATE: it returns the ARPC for the engine
/// (which may check it against the host, or keep it) and the scripts as TLV bytes for a later
/// contact session (Book C-3 "issuer update processing" needs the card re-presented; not
/// implemented here).
pub fn issuer_response(field55: &[u8]) -> Result<IssuerData, KernelError> {
    let tlvs = tlv::parse(field55).map_err(|e| KernelError::Malformed {
        step: Step::Completion,
        reason: MalformedReason::Tlv(e),
    })?;
    let mut out = IssuerData::default();
    for t in &tlvs {
        match (t.tag.0, &t.value) {
            (0x91, TlvValue::Primitive(v)) => {
                if !(8..=16).contains(&v.len()) {
                    return Err(KernelError::Malformed {
                        step: Step::Completion,
                        reason: MalformedReason::BadValue(t.tag),
                    });
                }
                out.arpc.get_or_insert_with(|| v.clone());
            }
            (0x8A, TlvValue::Primitive(v)) => {
                if let Ok(arc) = <[u8; 2]>::try_from(v.as_slice()) {
                    out.arc.get_or_insert(arc);
                }
            }
            (0x71, TlvValue::Constructed(_)) => out.scripts_71.push(t.encode()),
            (0x72, TlvValue::Constructed(_)) => out.scripts_72.push(t.encode()),
            _ => {}
        }
    }
    Ok(out)
}

/// Builds field 55 from a source of values, in [`FIELD55_TAGS`] order.
pub(crate) fn build_field55(value: impl Fn(Tag) -> Option<Vec<u8>>) -> IccData {
    let mut tlvs = Vec::new();
    for &t in FIELD55_TAGS {
        if let Some(v) = value(Tag(t)) {
            tlvs.push(Tlv::primitive(Tag(t), v));
        }
    }
    IccData(tlv::encode_all(&tlvs))
}

/// Decodes track 2 equivalent data (57, `b` holding BCD digits, `D` separator, `F` pad).
pub(crate) fn decode_track2(bytes: &[u8]) -> Option<Track2> {
    let mut s = String::with_capacity(bytes.len() * 2);
    let nibbles = bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]);
    let mut ended = false;
    for n in nibbles {
        match n {
            0..=9 if !ended => s.push(char::from(b'0' + n)),
            0x0D if !ended => s.push('D'),
            0x0F => ended = true,
            _ => return None,
        }
    }
    Track2::new(&s)
}

/// Decodes a `cn` PAN (5A): digits, then optional `F` padding.
pub(crate) fn decode_pan(bytes: &[u8]) -> Option<Pan> {
    let mut s = String::with_capacity(bytes.len() * 2);
    let mut ended = false;
    for n in bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        match n {
            0..=9 if !ended => s.push(char::from(b'0' + n)),
            0x0F => ended = true,
            _ => return None,
        }
    }
    Pan::new(&s).ok()
}

/// Decodes `n` BCD into digits; `None` if a nibble is not a digit.
pub(crate) fn bcd_digits(bytes: &[u8]) -> Option<String> {
    let mut s = String::with_capacity(bytes.len() * 2);
    for n in bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        if n > 9 {
            return None;
        }
        s.push(char::from(b'0' + n));
    }
    Some(s)
}

/// Printable ASCII only (labels are `ans`; anything else is dropped, not trusted).
pub(crate) fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .filter(|b| (0x20..0x7F).contains(*b))
        .map(|b| char::from(*b))
        .collect()
}

/// The receipt lines from the other outcome fields.
pub(crate) fn receipt(
    aid: &[u8],
    label: &str,
    tvr: &[u8; 5],
    tsi: &[u8; 2],
    ct: CryptogramType,
    cryptogram: &[u8; 8],
    cvm: Cvm,
) -> ReceiptFields {
    ReceiptFields {
        aid: encode(aid),
        label: label.to_owned(),
        tvr: encode(tvr),
        tsi: encode(tsi),
        cryptogram_type: ct.as_str().to_owned(),
        cryptogram: encode(cryptogram),
        cvm: cvm.receipt_text().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::decode;

    #[test]
    fn track2_decoding() {
        let t = decode_track2(&decode("4761739001010010D22122011143804400000F").unwrap()).unwrap();
        assert_eq!(t.expose(), "4761739001010010D22122011143804400000");
        assert_eq!(t.expiry(), Some("2212"));
        assert!(decode_track2(&decode("47617390D2212F1F").unwrap()).is_none());
        assert!(decode_track2(&decode("4761739001010010A2212201").unwrap()).is_none());
        assert!(decode_track2(&[]).is_none());
    }

    #[test]
    fn pan_decoding() {
        assert_eq!(
            decode_pan(&decode("5413330089010434").unwrap())
                .unwrap()
                .expose(),
            "5413330089010434"
        );
        assert_eq!(
            decode_pan(&decode("476173900101001FFF").unwrap())
                .unwrap()
                .expose(),
            "476173900101001"
        );
        assert!(decode_pan(&decode("54133300F9010434").unwrap()).is_none());
        assert!(decode_pan(&decode("1234").unwrap()).is_none());
    }

    #[test]
    fn cid_types() {
        assert_eq!(CryptogramType::from_cid(0x80), Some(CryptogramType::Arqc));
        assert_eq!(CryptogramType::from_cid(0x40), Some(CryptogramType::Tc));
        assert_eq!(CryptogramType::from_cid(0x00), Some(CryptogramType::Aac));
        assert_eq!(CryptogramType::from_cid(0xC0), None);
    }

    #[test]
    fn issuer_response_keeps_arpc_and_scripts() {
        let f55 = decode("910A11223344556677883030720A9F180400000001860100720486020000").unwrap();
        let d = issuer_response(&f55).unwrap();
        assert_eq!(
            d.arpc_method1(),
            Some(([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88], *b"00"))
        );
        assert!(d.scripts_71.is_empty());
        assert_eq!(d.scripts_72.len(), 2);
        assert_eq!(d.scripts_72[0][0], 0x72);
        assert!(issuer_response(&decode("9102AABB").unwrap()).is_err());
        assert!(issuer_response(&decode("9108").unwrap()).is_err());
        assert_eq!(issuer_response(&[]).unwrap(), IssuerData::default());
    }

    #[test]
    fn icc_data_debug_is_a_length() {
        assert_eq!(
            format!("{:?}", IccData(vec![1, 2, 3])),
            "IccData(<3 bytes>)"
        );
    }
}

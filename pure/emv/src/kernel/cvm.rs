//! Cardholder verification decisions, one function per kernel flow.
//!
//! Contactless readers do not run the Book 3 §10.5 CVM list walk for Visa/UnionPay; the card
//! states what it wants in the Card Transaction Qualifiers (9F6C). For Mastercard this kernel
//! uses a simplified reading of the CVM list (8E); see [`mchip`].

use super::outcome::Cvm;

/// TTQ byte 1 bit 3: online PIN supported (Book C-3 Annex A, per my reading).
const TTQ_ONLINE_PIN: u8 = 0x04;
/// TTQ byte 1 bit 2: signature supported.
const TTQ_SIGNATURE: u8 = 0x02;
/// TTQ byte 3 bit 7: consumer-device CVM supported.
const TTQ_CDCVM: u8 = 0x40;

/// AIP byte 1 bit 2: on device cardholder verification supported (Book C-2, AIP for Kernel 2).
const AIP_ON_DEVICE_CVM: u8 = 0x02;

/// CTQ byte 1 bit 8: online PIN required (Book C-3 Annex A, CTQ).
const CTQ_ONLINE_PIN: u8 = 0x80;
/// CTQ byte 1 bit 7: signature required.
const CTQ_SIGNATURE: u8 = 0x40;
/// CTQ byte 2 bit 8: consumer device CVM performed.
const CTQ_CDCVM_PERFORMED: u8 = 0x80;

/// Visa qVSDC and UnionPay qPBOC.
///
/// Per my reading of Book C-3 (qVSDC "Cardholder Verification", CTQ processing), in order:
/// 1. CTQ "online PIN required" and the reader supports online PIN → online PIN;
/// 2. CTQ "consumer device CVM performed" (and the reader supports CDCVM) → CDCVM (C-3 also
///    checks the Card Authentication Related Data, 9F69, which this kernel does not verify);
/// 3. CTQ "signature required" and the reader supports signature → signature;
/// 4. otherwise, if the reader asked for a CVM (amount ≥ CVM-required limit, TTQ byte 2
///    bit 7) → signature if supported, else online PIN if supported;
/// 5. otherwise no CVM.
///
/// UnionPay's QuickPass (qPBOC) uses the same CTQ bits (per my reading of the UnionPay
/// QuickPass specification).
pub fn quick(ctq: Option<&[u8]>, ttq: &[u8; 4], cvm_required: bool) -> Cvm {
    let online_pin = ttq[0] & TTQ_ONLINE_PIN != 0;
    let signature = ttq[0] & TTQ_SIGNATURE != 0;
    let cdcvm = ttq[2] & TTQ_CDCVM != 0;
    if let Some(&[b1, b2, ..]) = ctq {
        if b1 & CTQ_ONLINE_PIN != 0 && online_pin {
            return Cvm::OnlinePin;
        }
        if b2 & CTQ_CDCVM_PERFORMED != 0 && cdcvm {
            return Cvm::ConsumerDevice;
        }
        if b1 & CTQ_SIGNATURE != 0 && signature {
            return Cvm::Signature;
        }
    }
    fallback(cvm_required, online_pin, signature)
}

/// Mastercard M/Chip, simplified (not the whole Book C-2 CVM selection, which walks the CVM
/// list with the reader's CVM capability).
///
/// 1. On-device CVM first. Book C-2 CVM selection (steps CVM.1 to CVM.4), as documented in
///    public kernel 2 implementations (the open-source DC EMV kernel,
///    github.com/vicente-da-silva/dcemv, `CVMSelection_7_5.cs`; payment-terminal SDK notes
///    quoting "On device cardholder verification is supported (82 byte 1 b2) ... and On
///    device cardholder verification supported (DF811B byte 1 b6) in Kernel Configuration"):
///    when the card's AIP byte 1 bit 2 says "on device cardholder verification supported"
///    and the reader's Kernel Configuration (DF811B) byte 1 bit 6 says the same, the CVM
///    list is not used: above the CVM-required limit the CVM is "confirmation code verified"
///    (the phone or watch verified the cardholder; CVM Results `01 00 02`), otherwise no CVM
///    (`3F 00 02` in C-2; this kernel reports [`Cvm::NoCvm`] as everywhere, `1F 00 02`).
///    This kernel has no Kernel Configuration object: the reader's on-device capability is
///    the one CDCVM switch of [`super::KernelConfig::ttq`], byte 3 bit 7, which also serves
///    Visa and UnionPay. C-2 compares "amount > CVM-required limit" where Book B's indicator
///    (used here for every path) is "≥": at exactly the limit this kernel asks for the CVM.
/// 2. Otherwise, at or above the CVM-required limit, online PIN if the card's CVM list (8E,
///    Book 3 §10.5 and Annex C3) has an "enciphered PIN verified online" rule (method `02`)
///    and the reader supports online PIN, else signature; below the limit, no CVM (C-2 "No
///    CVM" below the CVM-required limit).
///
/// A missing or short AIP is read as "no on-device CVM".
pub fn mchip(
    aip: Option<&[u8]>,
    cvm_list: Option<&[u8]>,
    ttq: &[u8; 4],
    cvm_required: bool,
) -> Cvm {
    let on_device = aip
        .and_then(|a| a.first())
        .is_some_and(|b1| b1 & AIP_ON_DEVICE_CVM != 0);
    if on_device && ttq[2] & TTQ_CDCVM != 0 {
        return if cvm_required {
            Cvm::ConsumerDevice
        } else {
            Cvm::NoCvm
        };
    }
    if !cvm_required {
        return Cvm::NoCvm;
    }
    let online_pin = ttq[0] & TTQ_ONLINE_PIN != 0;
    let signature = ttq[0] & TTQ_SIGNATURE != 0;
    let rules = cvm_list
        .filter(|l| l.len() >= 8 && l.len() % 2 == 0)
        .and_then(|l| l.get(8..))
        .unwrap_or_default();
    let card_online_pin = rules
        .chunks_exact(2)
        .any(|r| r.first().is_some_and(|c| c & 0x3F == 0x02));
    if card_online_pin && online_pin {
        return Cvm::OnlinePin;
    }
    fallback(true, online_pin, signature)
}

fn fallback(cvm_required: bool, online_pin: bool, signature: bool) -> Cvm {
    match (cvm_required, signature, online_pin) {
        (true, true, _) => Cvm::Signature,
        (true, false, true) => Cvm::OnlinePin,
        // A reader that supports neither cannot verify the cardholder: it was configured
        // without CVMs, so none is performed (and the host decides).
        _ => Cvm::NoCvm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTQ: [u8; 4] = [0x36, 0x00, 0x40, 0x00];

    #[test]
    fn ctq_online_pin_wins() {
        assert_eq!(quick(Some(&[0x80, 0x00]), &TTQ, false), Cvm::OnlinePin);
        assert_eq!(quick(Some(&[0xC0, 0x80]), &TTQ, true), Cvm::OnlinePin);
    }

    #[test]
    fn ctq_cdcvm_and_signature() {
        assert_eq!(quick(Some(&[0x00, 0x80]), &TTQ, true), Cvm::ConsumerDevice);
        assert_eq!(quick(Some(&[0x40, 0x00]), &TTQ, false), Cvm::Signature);
        // The reader does not support CDCVM: fall back to the reader's CVM.
        let no_cdcvm = [0x36, 0x00, 0x00, 0x00];
        assert_eq!(quick(Some(&[0x00, 0x80]), &no_cdcvm, true), Cvm::Signature);
    }

    #[test]
    fn no_ctq_follows_the_limit() {
        assert_eq!(quick(None, &TTQ, false), Cvm::NoCvm);
        assert_eq!(quick(None, &TTQ, true), Cvm::Signature);
        assert_eq!(quick(Some(&[0x00, 0x00]), &TTQ, true), Cvm::Signature);
        assert_eq!(quick(Some(&[0x00]), &[0x24, 0, 0, 0], true), Cvm::OnlinePin);
        assert_eq!(quick(None, &[0x20, 0, 0, 0], true), Cvm::NoCvm);
    }

    const AIP: Option<&[u8]> = Some(&[0x19, 0x80]);

    #[test]
    fn mchip_uses_the_cvm_list_above_the_limit() {
        let list = [0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x03];
        assert_eq!(mchip(AIP, Some(&list), &TTQ, true), Cvm::OnlinePin);
        assert_eq!(mchip(AIP, Some(&list), &TTQ, false), Cvm::NoCvm);
        let sig_only = [0, 0, 0, 0, 0, 0, 0, 0, 0x1E, 0x03];
        assert_eq!(mchip(AIP, Some(&sig_only), &TTQ, true), Cvm::Signature);
        assert_eq!(mchip(AIP, None, &TTQ, true), Cvm::Signature);
        // A malformed list (odd length) is ignored, not trusted.
        assert_eq!(mchip(AIP, Some(&list[..13]), &TTQ, true), Cvm::Signature);
        // The reader does not support online PIN.
        assert_eq!(
            mchip(AIP, Some(&list), &[0x22, 0, 0, 0], true),
            Cvm::Signature
        );
    }

    #[test]
    fn mchip_on_device_cvm_needs_the_card_and_the_reader() {
        let list = [0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x03];
        let phone: Option<&[u8]> = Some(&[0x1B, 0x80]);
        assert_eq!(mchip(phone, Some(&list), &TTQ, true), Cvm::ConsumerDevice);
        assert_eq!(mchip(phone, None, &TTQ, true), Cvm::ConsumerDevice);
        assert_eq!(mchip(phone, Some(&list), &TTQ, false), Cvm::NoCvm);
        // The reader without the capability walks the CVM list.
        let no_cdcvm = [0x36, 0x00, 0x00, 0x00];
        assert_eq!(mchip(phone, Some(&list), &no_cdcvm, true), Cvm::OnlinePin);
        // Hostile AIPs: empty, one byte, the bit alone.
        assert_eq!(mchip(Some(&[]), Some(&list), &TTQ, true), Cvm::OnlinePin);
        assert_eq!(mchip(Some(&[0x02]), None, &TTQ, true), Cvm::ConsumerDevice);
        assert_eq!(mchip(None, Some(&list), &TTQ, true), Cvm::OnlinePin);
    }
}

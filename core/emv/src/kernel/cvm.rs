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

/// Mastercard M/Chip, simplified (this is not the Book C-2 CVM selection, which walks the CVM
/// list with the reader's CVM capability): at or above the CVM-required limit, online PIN if
/// the card's CVM list (8E, Book 3 §10.5 and Annex C3) has an "enciphered PIN verified online"
/// rule (method `02`) and the reader supports online PIN, else signature; below the limit, no
/// CVM (C-2 "No CVM" below the CVM-required limit).
pub fn mchip(cvm_list: Option<&[u8]>, ttq: &[u8; 4], cvm_required: bool) -> Cvm {
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

    #[test]
    fn mchip_uses_the_cvm_list_above_the_limit() {
        let list = [0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x03];
        assert_eq!(mchip(Some(&list), &TTQ, true), Cvm::OnlinePin);
        assert_eq!(mchip(Some(&list), &TTQ, false), Cvm::NoCvm);
        let sig_only = [0, 0, 0, 0, 0, 0, 0, 0, 0x1E, 0x03];
        assert_eq!(mchip(Some(&sig_only), &TTQ, true), Cvm::Signature);
        assert_eq!(mchip(None, &TTQ, true), Cvm::Signature);
        // A malformed list (odd length) is ignored, not trusted.
        assert_eq!(mchip(Some(&list[..13]), &TTQ, true), Cvm::Signature);
        // The reader does not support online PIN.
        assert_eq!(mchip(Some(&list), &[0x22, 0, 0, 0], true), Cvm::Signature);
    }
}

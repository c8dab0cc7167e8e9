//! Derived Unique Key Per Transaction: [`tdes`] (ANSI X9.24-1:2009) and [`aes`]
//! (ANSI X9.24-3-2017), and [`DukptDevice`] / [`DukptTxn`], the two as one terminal device and
//! one transaction's keys, which is what a transaction needs: the KSN to send, the PIN block
//! and the MACs under the keys derived for it. The host side builds the same [`DukptTxn`] from
//! the BDK and the received KSN ([`DukptTxn::from_bdk`]).
//!
//! Key use per scheme (what the terminal and the host simulator agree on):
//!
//! | use          | TDES (X9.24-1)                                 | AES (X9.24-3, AES-128)              |
//! |--------------|------------------------------------------------|-------------------------------------|
//! | KSN          | 10 bytes (59-bit ID, 21-bit counter)           | 12 bytes (initial key ID, counter)  |
//! | PIN block    | ISO 0, 1 or 3 under the PIN variant            | ISO 4 under the 0x1000 working key  |
//! | request MAC  | X9.19 (padding method 1), MAC request variant  | AES-CMAC, 0x2000 key, leftmost 8    |
//! | response MAC | X9.19 (padding method 1), MAC response variant | AES-CMAC, 0x2001 key, leftmost 8    |

pub mod aes;
pub mod tdes;

use crate::CryptoError;
use crate::keys::{AesKey, TdesKey};
use crate::mac::{self, Padding};
use crate::pinblock::{self, Pin, PinBlockFormat};
use smartpos_types::{Pan, SecretBytes};

/// The two DUKPT schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DukptScheme {
    /// TDES DUKPT, ANSI X9.24-1:2009.
    Tdes,
    /// AES DUKPT, ANSI X9.24-3-2017, AES-128 keys.
    Aes,
}

impl DukptScheme {
    /// KSN length on the wire: 10 (TDES) or 12 (AES).
    pub fn ksn_len(self) -> usize {
        match self {
            DukptScheme::Tdes => 10,
            DukptScheme::Aes => 12,
        }
    }

    /// The scheme's name in profiles: `dukpt-tdes` or `dukpt-aes`.
    pub fn name(self) -> &'static str {
        match self {
            DukptScheme::Tdes => "dukpt-tdes",
            DukptScheme::Aes => "dukpt-aes",
        }
    }
}

/// A terminal's DUKPT device, either scheme. Zeroized on drop (its registers are keys).
#[derive(Debug)]
pub enum DukptDevice {
    /// TDES future-key registers.
    Tdes(tdes::DukptTdesTerminal),
    /// AES intermediate-key registers.
    Aes(aes::DukptAesTerminal),
}

impl DukptDevice {
    /// Loads an initial key: a 16-byte TDES IPEK with its 10-byte initial KSN (counter zero),
    /// or a 16-byte AES initial key with its 8-byte initial key ID (a 12-byte KSN with a zero
    /// counter is accepted too).
    pub fn load(scheme: DukptScheme, initial_key: &[u8], ksn: &[u8]) -> Result<Self, CryptoError> {
        match scheme {
            DukptScheme::Tdes => {
                let ipek = TdesKey::new(initial_key)?;
                if ipek.len() != 16 {
                    return Err(CryptoError::KeyLength {
                        algorithm: "TDES DUKPT IPEK",
                        expected: "16",
                        got: ipek.len(),
                    });
                }
                let ksn = tdes::Ksn::new(ksn)?;
                Ok(DukptDevice::Tdes(tdes::DukptTdesTerminal::new(
                    &ipek, &ksn,
                )?))
            }
            DukptScheme::Aes => {
                let ik = AesKey::new(initial_key)?;
                let id = match ksn.len() {
                    12 if ksn[8..] == [0, 0, 0, 0] => &ksn[..8],
                    12 => {
                        return Err(CryptoError::DukptCounter {
                            counter: u32::from_be_bytes([ksn[8], ksn[9], ksn[10], ksn[11]]),
                            reason: "initial KSN must have a zero counter",
                        });
                    }
                    _ => ksn,
                };
                let id = aes::InitialKeyId::new(id)?;
                Ok(DukptDevice::Aes(aes::DukptAesTerminal::new(&ik, &id)?))
            }
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> DukptScheme {
        match self {
            DukptDevice::Tdes(_) => DukptScheme::Tdes,
            DukptDevice::Aes(_) => DukptScheme::Aes,
        }
    }

    /// Whether the counter is exhausted (no key left: the device needs a new initial key).
    pub fn is_exhausted(&self) -> bool {
        match self {
            DukptDevice::Tdes(t) => t.is_exhausted(),
            DukptDevice::Aes(a) => a.is_exhausted(),
        }
    }

    /// The counter the next transaction will use.
    pub fn counter(&self) -> u32 {
        match self {
            DukptDevice::Tdes(t) => t.counter(),
            DukptDevice::Aes(a) => a.counter(),
        }
    }

    /// Takes the next transaction's keys and advances the device. The caller must store the
    /// advanced state ([`DukptDevice::to_bytes`]) durably before the KSN leaves the terminal,
    /// so a crash can never make a counter be used twice.
    pub fn next_transaction(&mut self) -> Result<DukptTxn, CryptoError> {
        match self {
            DukptDevice::Tdes(t) => t.next_transaction().map(DukptTxn::Tdes),
            DukptDevice::Aes(a) => a.next_transaction().map(DukptTxn::Aes),
        }
    }

    /// The state as bytes for the secure store (secret).
    pub fn to_bytes(&self) -> SecretBytes {
        match self {
            DukptDevice::Tdes(t) => t.to_bytes(),
            DukptDevice::Aes(a) => a.to_bytes(),
        }
    }

    /// The state back from [`DukptDevice::to_bytes`] (the tag says the scheme).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        match bytes.get(..2) {
            Some(b"DT") => tdes::DukptTdesTerminal::from_bytes(bytes).map(DukptDevice::Tdes),
            Some(b"DA") => aes::DukptAesTerminal::from_bytes(bytes).map(DukptDevice::Aes),
            _ => Err(CryptoError::InputLength {
                what: "DUKPT state",
                expected: "a state written by this version",
                got: bytes.len(),
            }),
        }
    }
}

/// A base derivation key of either scheme (host side).
#[derive(Debug, Clone)]
pub enum DukptBdk {
    /// 16-byte TDES BDK.
    Tdes(TdesKey),
    /// AES BDK (16, 24 or 32 bytes; working keys are AES-128).
    Aes(AesKey),
}

impl DukptBdk {
    /// A BDK of `scheme` from its bytes.
    pub fn new(scheme: DukptScheme, bytes: &[u8]) -> Result<Self, CryptoError> {
        match scheme {
            DukptScheme::Tdes => {
                let k = TdesKey::new(bytes)?;
                if k.len() != 16 {
                    return Err(CryptoError::KeyLength {
                        algorithm: "TDES DUKPT BDK",
                        expected: "16",
                        got: k.len(),
                    });
                }
                Ok(DukptBdk::Tdes(k))
            }
            DukptScheme::Aes => Ok(DukptBdk::Aes(AesKey::new(bytes)?)),
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> DukptScheme {
        match self {
            DukptBdk::Tdes(_) => DukptScheme::Tdes,
            DukptBdk::Aes(_) => DukptScheme::Aes,
        }
    }

    /// The initial key a device of this BDK is loaded with for `ksn` (TDES: the IPEK for the
    /// initial KSN; AES: the initial key for the initial key ID). For test and provisioning
    /// tools: production initial keys come from a key-injection facility.
    pub fn initial_key(&self, ksn: &[u8]) -> Result<SecretBytes, CryptoError> {
        match self {
            DukptBdk::Tdes(bdk) => {
                let ipek = tdes::ipek(bdk, &tdes::Ksn::new(ksn)?)?;
                Ok(SecretBytes::new(ipek.expose().to_vec()))
            }
            DukptBdk::Aes(bdk) => {
                let id = aes::InitialKeyId::new(ksn.get(..8).unwrap_or(ksn))?;
                let ik = aes::initial_key(bdk, &id)?;
                Ok(SecretBytes::new(ik.expose().to_vec()))
            }
        }
    }
}

/// One transaction's DUKPT keys, either scheme.
#[derive(Debug, Clone)]
pub enum DukptTxn {
    /// TDES transaction key and variants.
    Tdes(tdes::TransactionKeys),
    /// AES transaction (intermediate) key.
    Aes(aes::AesTransaction),
}

impl DukptTxn {
    /// Host side: the transaction's keys from the BDK and the KSN the terminal sent (10 bytes
    /// for TDES, 12 for AES).
    pub fn from_bdk(bdk: &DukptBdk, ksn: &[u8]) -> Result<Self, CryptoError> {
        match bdk {
            DukptBdk::Tdes(b) => {
                let ksn = tdes::Ksn::new(ksn)?;
                if !tdes::is_valid_counter(ksn.counter()) {
                    return Err(CryptoError::DukptCounter {
                        counter: ksn.counter(),
                        reason: "not a counter a device uses",
                    });
                }
                tdes::derive_transaction_key(b, &ksn).map(DukptTxn::Tdes)
            }
            DukptBdk::Aes(b) => {
                if ksn.len() != 12 {
                    return Err(CryptoError::InputLength {
                        what: "AES DUKPT KSN",
                        expected: "12",
                        got: ksn.len(),
                    });
                }
                let id = aes::InitialKeyId::new(&ksn[..8])?;
                let counter = u32::from_be_bytes([ksn[8], ksn[9], ksn[10], ksn[11]]);
                aes::AesTransaction::from_bdk(b, &id, counter).map(DukptTxn::Aes)
            }
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> DukptScheme {
        match self {
            DukptTxn::Tdes(_) => DukptScheme::Tdes,
            DukptTxn::Aes(_) => DukptScheme::Aes,
        }
    }

    /// The KSN to send (10 or 12 bytes).
    pub fn ksn(&self) -> Vec<u8> {
        match self {
            DukptTxn::Tdes(t) => t.ksn().bytes().to_vec(),
            DukptTxn::Aes(a) => a.ksn().to_vec(),
        }
    }

    /// The transaction counter.
    pub fn counter(&self) -> u32 {
        match self {
            DukptTxn::Tdes(t) => t.ksn().counter(),
            DukptTxn::Aes(a) => a.counter(),
        }
    }

    /// The PIN block format a profile may ask of this scheme: TDES takes 0, 1 or 3; AES
    /// takes 4 only.
    pub fn check_format(&self, format: PinBlockFormat) -> Result<(), CryptoError> {
        match (self, format) {
            (DukptTxn::Tdes(_), PinBlockFormat::Iso4) => Err(CryptoError::PinBlockKeyType {
                format: 4,
                expected: "AES",
            }),
            (DukptTxn::Aes(_), f) if f != PinBlockFormat::Iso4 => {
                Err(CryptoError::PinBlockKeyType {
                    format: f.number(),
                    expected: "TDES",
                })
            }
            _ => Ok(()),
        }
    }

    /// The encrypted PIN block under the transaction's PIN key.
    pub fn pin_block(
        &self,
        format: PinBlockFormat,
        pin: &Pin,
        pan: &Pan,
        rng: &mut dyn FnMut(&mut [u8]) -> Result<(), CryptoError>,
    ) -> Result<SecretBytes, CryptoError> {
        self.check_format(format)?;
        match self {
            DukptTxn::Tdes(t) => pinblock::encrypt_tdes(&t.pin_key(), format, pin, Some(pan), rng),
            DukptTxn::Aes(a) => {
                pinblock::encrypt_aes(&a.working_key(aes::KeyUsage::PinEncryption)?, pin, pan, rng)
            }
        }
    }

    /// Host side: the PIN from a block made by [`DukptTxn::pin_block`].
    pub fn decrypt_pin(
        &self,
        format: PinBlockFormat,
        block: &[u8],
        pan: &Pan,
    ) -> Result<Pin, CryptoError> {
        self.check_format(format)?;
        match self {
            DukptTxn::Tdes(t) => pinblock::decrypt_tdes(&t.pin_key(), format, block, Some(pan)),
            DukptTxn::Aes(a) => {
                pinblock::decrypt_aes(&a.working_key(aes::KeyUsage::PinEncryption)?, block, pan)
            }
        }
    }

    /// The request MAC (terminal to host) over `data`, 8 bytes.
    pub fn request_mac(&self, data: &[u8]) -> Result<[u8; 8], CryptoError> {
        match self {
            DukptTxn::Tdes(t) => mac::x9_19(&t.mac_request_key(), data, Padding::Method1),
            DukptTxn::Aes(a) => Ok(cmac8(&a.working_key(aes::KeyUsage::MacGeneration)?, data)),
        }
    }

    /// The response MAC (host to terminal) over `data`, 8 bytes.
    pub fn response_mac(&self, data: &[u8]) -> Result<[u8; 8], CryptoError> {
        match self {
            DukptTxn::Tdes(t) => mac::x9_19(&t.mac_response_key(), data, Padding::Method1),
            DukptTxn::Aes(a) => Ok(cmac8(&a.working_key(aes::KeyUsage::MacVerification)?, data)),
        }
    }
}

fn cmac8(key: &AesKey, data: &[u8]) -> [u8; 8] {
    let m = mac::aes_cmac(key, data);
    let mut out = [0u8; 8];
    out.copy_from_slice(&m[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartpos_types::hex::{decode, encode};

    fn tdes_device() -> (DukptBdk, DukptDevice) {
        let bdk = DukptBdk::new(
            DukptScheme::Tdes,
            &decode("0123456789ABCDEFFEDCBA9876543210").unwrap(),
        )
        .unwrap();
        let ksn = decode("FFFF9876543210E00000").unwrap();
        let ipek = bdk.initial_key(&ksn).unwrap();
        assert_eq!(encode(ipek.expose()), "6AC292FAA1315B4D858AB3A3D7D5933A");
        (
            bdk,
            DukptDevice::load(DukptScheme::Tdes, ipek.expose(), &ksn).unwrap(),
        )
    }

    fn aes_device() -> (DukptBdk, DukptDevice) {
        let bdk = DukptBdk::new(
            DukptScheme::Aes,
            &decode("FEDCBA9876543210F1F1F1F1F1F1F1F1").unwrap(),
        )
        .unwrap();
        let ksn = decode("123456789012345600000000").unwrap();
        let ik = bdk.initial_key(&ksn).unwrap();
        assert_eq!(encode(ik.expose()), "1273671EA26AC29AFA4D1084127652A1");
        (
            bdk,
            DukptDevice::load(DukptScheme::Aes, ik.expose(), &ksn).unwrap(),
        )
    }

    fn fixed(b: &mut [u8]) -> Result<(), CryptoError> {
        b.fill(0x5A);
        Ok(())
    }

    #[test]
    fn terminal_and_host_agree_for_both_schemes() {
        let pan = Pan::new("4012345678909").unwrap();
        let pin = Pin::new("1234").unwrap();
        for (bdk, mut dev, format) in [
            {
                let (b, d) = tdes_device();
                (b, d, PinBlockFormat::Iso0)
            },
            {
                let (b, d) = aes_device();
                (b, d, PinBlockFormat::Iso4)
            },
        ] {
            let mut seen = Vec::new();
            for n in 1..=40u32 {
                let t = dev.next_transaction().unwrap();
                assert_eq!(t.counter(), n);
                let ksn = t.ksn();
                assert_eq!(ksn.len(), dev.scheme().ksn_len());
                assert!(!seen.contains(&ksn), "a KSN came twice");
                seen.push(ksn.clone());
                let host = DukptTxn::from_bdk(&bdk, &ksn).unwrap();
                let block = t.pin_block(format, &pin, &pan, &mut fixed).unwrap();
                assert_eq!(host.decrypt_pin(format, block.expose(), &pan).unwrap(), pin);
                assert_eq!(
                    t.request_mac(b"data").unwrap(),
                    host.request_mac(b"data").unwrap()
                );
                assert_ne!(
                    t.request_mac(b"data").unwrap(),
                    t.response_mac(b"data").unwrap()
                );
            }
        }
    }

    #[test]
    fn published_tdes_and_aes_values_through_the_device() {
        // X9.24-1 A.4 counter 1: PIN block 1B9C1845EB993A7A, request MAC 9CCC78173FC4FB64.
        let (_, mut dev) = tdes_device();
        let t = dev.next_transaction().unwrap();
        let pan = Pan::new("4012345678909").unwrap();
        let pin = Pin::new("1234").unwrap();
        let b = t
            .pin_block(PinBlockFormat::Iso0, &pin, &pan, &mut fixed)
            .unwrap();
        assert_eq!(encode(b.expose()), "1B9C1845EB993A7A");
        assert_eq!(
            encode(&t.request_mac(b"4012345678909D987").unwrap()),
            "9CCC78173FC4FB64"
        );
        assert_eq!(
            encode(&t.response_mac(b"4012345678909D987").unwrap()),
            "20364223C1FF00FA"
        );
        // X9.24-3 counter 1: CMAC under the 0x2000 key, A2EB5C1C35809E58 (leftmost 8).
        let (_, mut dev) = aes_device();
        let t = dev.next_transaction().unwrap();
        assert_eq!(encode(&t.ksn()), "123456789012345600000001");
        assert_eq!(
            encode(&t.request_mac(b"4012345678909D987").unwrap()),
            "A2EB5C1C35809E58"
        );
        assert_eq!(
            encode(&t.response_mac(b"4012345678909D987").unwrap()),
            "DD4E1895FD9BF53D"
        );
    }

    #[test]
    fn state_round_trips_and_never_repeats_a_counter() {
        for (_, mut dev) in [tdes_device(), aes_device()] {
            dev.next_transaction().unwrap();
            let saved = dev.to_bytes();
            let mut restored = DukptDevice::from_bytes(saved.expose()).unwrap();
            let a = dev.next_transaction().unwrap();
            let b = restored.next_transaction().unwrap();
            assert_eq!(a.ksn(), b.ksn());
            assert_eq!(a.request_mac(b"x").unwrap(), b.request_mac(b"x").unwrap());
            assert_eq!(a.counter(), 2);
            // A truncated or retagged state is refused.
            let s = saved.expose();
            assert!(DukptDevice::from_bytes(&s[..s.len() - 1]).is_err());
            let mut bad = s.to_vec();
            bad[1] = b'X';
            assert!(DukptDevice::from_bytes(&bad).is_err());
            assert!(!format!("{dev:?}").contains(&encode(&s[30..46])));
        }
    }

    #[test]
    fn schemes_refuse_the_other_pin_formats() {
        let (_, mut dev) = tdes_device();
        let t = dev.next_transaction().unwrap();
        let pan = Pan::new("4012345678909").unwrap();
        let pin = Pin::new("1234").unwrap();
        assert!(
            t.pin_block(PinBlockFormat::Iso4, &pin, &pan, &mut fixed)
                .is_err()
        );
        assert!(
            t.pin_block(PinBlockFormat::Iso3, &pin, &pan, &mut fixed)
                .is_ok()
        );
        let (_, mut dev) = aes_device();
        let t = dev.next_transaction().unwrap();
        assert!(
            t.pin_block(PinBlockFormat::Iso0, &pin, &pan, &mut fixed)
                .is_err()
        );
    }

    #[test]
    fn aes_device_matches_the_host_walk_across_register_boundaries() {
        let (bdk, mut dev) = aes_device();
        let DukptBdk::Aes(b) = &bdk else {
            unreachable!()
        };
        let id = aes::InitialKeyId::new(&decode("1234567890123456").unwrap()).unwrap();
        let ik = aes::initial_key(b, &id).unwrap();
        for _ in 0..600 {
            let t = dev.next_transaction().unwrap();
            let DukptTxn::Aes(a) = &t else { unreachable!() };
            let host = aes::transaction_key(&ik, &id, a.counter()).unwrap();
            assert_eq!(
                a.working_key(aes::KeyUsage::PinEncryption)
                    .unwrap()
                    .expose(),
                aes::working_key(
                    &host,
                    &id,
                    a.counter(),
                    aes::KeyUsage::PinEncryption,
                    aes::KeyType::Aes128
                )
                .unwrap()
                .expose()
            );
        }
    }

    #[test]
    fn last_counter_then_exhausted_for_both_schemes() {
        // A TDES device at its last counter 0x1FF800 (register of bit 11 present).
        let (_, dev) = tdes_device();
        let mut s = dev.to_bytes().expose().to_vec();
        s[13..17].copy_from_slice(&0x1F_F800u32.to_be_bytes());
        s[17..21].copy_from_slice(&(1u32 << 11).to_be_bytes());
        let mut d = DukptDevice::from_bytes(&s).unwrap();
        assert!(!d.is_exhausted());
        assert_eq!(d.next_transaction().unwrap().counter(), 0x1F_F800);
        assert!(d.is_exhausted());
        assert_eq!(
            d.next_transaction().unwrap_err(),
            CryptoError::DukptExhausted
        );
        let again = DukptDevice::from_bytes(d.to_bytes().expose()).unwrap();
        assert!(again.is_exhausted());
        // An AES device at its last counter 0xFFFF0000 (register of bit 16 present).
        let (_, dev) = aes_device();
        let mut s = dev.to_bytes().expose().to_vec();
        s[11..15].copy_from_slice(&0xFFFF_0000u32.to_be_bytes());
        s[16..20].copy_from_slice(&(1u32 << 16).to_be_bytes());
        let mut d = DukptDevice::from_bytes(&s).unwrap();
        assert_eq!(d.next_transaction().unwrap().counter(), 0xFFFF_0000);
        assert!(d.is_exhausted());
        assert_eq!(
            d.next_transaction().unwrap_err(),
            CryptoError::DukptExhausted
        );
        assert!(
            DukptDevice::from_bytes(d.to_bytes().expose())
                .unwrap()
                .is_exhausted()
        );
        // A state whose next counter's register is empty is refused at load.
        s[16..20].copy_from_slice(&0u32.to_be_bytes());
        assert!(DukptDevice::from_bytes(&s).is_err());
    }

    #[test]
    fn aes_counter_rules() {
        assert_eq!(aes::next_counter(1), Some(2));
        assert_eq!(aes::next_counter(0xFFFF), Some(0x10000));
        assert_eq!(aes::next_counter(0xFFFF0000), None);
        assert_eq!(aes::next_counter(0xFFFE0000), Some(0xFFFE0001));
    }
}

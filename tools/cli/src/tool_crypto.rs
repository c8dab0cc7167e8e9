//! `smartpos tool` crypto commands: `kcv`, `dukpt-tdes`, `dukpt-aes`, `pinblock encode|decode`,
//! `mac`, `sm4`, `emv-arqc`, `emv-arpc`, `unlock-code`. Thin wrappers over `smartpos-crypto` (and
//! the operators' unlock code of `smartpos-operators`); hex out is upper case.
//!
//! Error messages name the bad argument and what is wrong with it, never its value.

use crate::tool::{ToolError, ToolResult};
use clap::Subcommand;
use serde_json::json;
use smartpos_crypto::dukpt::{aes as daes, tdes};
use smartpos_crypto::emv::{self, AcPadding};
use smartpos_crypto::mac::{self, Padding};
use smartpos_crypto::pinblock::{self, PinBlockFormat};
use smartpos_crypto::sm4::Sm4Key;
use smartpos_crypto::{AesKey, Pin, TdesKey};
use smartpos_types::Pan;
use smartpos_types::hex::{decode, encode};

/// Crypto tool commands.
#[derive(Subcommand)]
pub enum CryptoCmd {
    /// Key check value of a TDES key: first 3 bytes of TDES-encrypt(8 zero bytes).
    #[command(name = "kcv")]
    Kcv {
        /// TDES key, 8/16/24 bytes in hex.
        #[arg(long)]
        key: String,
    },
    /// TDES DUKPT (ANSI X9.24-1:2009): IPEK, transaction key and its variants for a KSN.
    #[command(name = "dukpt-tdes")]
    DukptTdes {
        /// Base derivation key, 16 bytes hex.
        #[arg(long)]
        bdk: String,
        /// Key serial number, 10 bytes hex.
        #[arg(long)]
        ksn: String,
    },
    /// AES DUKPT (ANSI X9.24-3-2017): initial, transaction and AES-128 working keys.
    #[command(name = "dukpt-aes")]
    DukptAes {
        /// Base derivation key, 16/24/32 bytes hex.
        #[arg(long)]
        bdk: String,
        /// Initial key ID, 8 bytes hex.
        #[arg(long)]
        ikid: String,
        /// Transaction counter, up to 8 hex digits.
        #[arg(long)]
        counter: String,
    },
    /// The service desk's side of a supervisor unlock: the 8-digit code for a terminal's
    /// challenge (`smartpos terminal ... operator supervisor-challenge`), from the unlock secret
    /// the desk shares with that terminal: the first 8 decimal digits of
    /// HMAC-SHA256(secret, terminal id || challenge) in upper-case hex (README, "A locked
    /// supervisor").
    #[command(name = "unlock-code")]
    UnlockCode {
        /// The shared unlock secret, hex.
        #[arg(long)]
        secret: String,
        /// The terminal id (8 characters) the terminal shows with its challenge.
        #[arg(long)]
        terminal_id: String,
        /// The 8-digit challenge.
        #[arg(long)]
        challenge: String,
    },
    /// ISO 9564-1 PIN blocks (formats 0, 1, 3, 4).
    #[command(name = "pinblock", subcommand)]
    Pinblock(PinblockCmd),
    /// MACs: x9.9 (8-byte key), x9.19 (16-byte key; ISO 9797-1 padding method 1 unless
    /// --padding 2), cmac (AES key), cup-ecb (UnionPay POS ECB MAC, 8/16/24-byte key),
    /// cup-sm4 (its SM4 form, 16-byte SM4 key).
    #[command(name = "mac")]
    Mac {
        /// Algorithm: x9.9, x9.19, cmac, cup-ecb or cup-sm4.
        #[arg(long)]
        alg: String,
        /// Key, hex.
        #[arg(long)]
        key: String,
        /// Data, hex.
        #[arg(long)]
        data: String,
        /// ISO 9797-1 padding method for x9.19: 1 (zeros, default) or 2 (0x80 then zeros).
        #[arg(long)]
        padding: Option<u8>,
    },
    /// SM4 (GB/T 32907) ECB encryption, or decryption with --decrypt, of whole 16-byte blocks.
    #[command(name = "sm4")]
    Sm4 {
        /// SM4 key, 16 bytes hex.
        #[arg(long)]
        key: String,
        /// Data, hex, a multiple of 16 bytes.
        #[arg(long)]
        data: String,
        /// Decrypt instead of encrypt.
        #[arg(long)]
        decrypt: bool,
    },
    /// EMV ARQC: ICC master key (option A), common session key (R = ATC || 00..), ARQC with EMV
    /// padding (ISO 9797-1 method 2).
    #[command(name = "emv-arqc")]
    EmvArqc {
        /// Issuer master key (AC), 16 bytes hex.
        #[arg(long)]
        imk: String,
        /// PAN digits.
        #[arg(long)]
        pan: String,
        /// PAN sequence number, two digits.
        #[arg(long)]
        psn: String,
        /// Application transaction counter, 2 bytes hex.
        #[arg(long)]
        atc: String,
        /// CDOL1 data, concatenated, hex.
        #[arg(long)]
        data: String,
    },
    /// EMV ARPC: method 1 (ARQC XOR ARC, TDES) or method 2 (MAC over ARQC || CSU || prop. data,
    /// 4 bytes).
    #[command(name = "emv-arpc")]
    EmvArpc {
        /// AC session key, 16 bytes hex.
        #[arg(long)]
        key: String,
        /// ARQC, 8 bytes hex.
        #[arg(long)]
        arqc: String,
        /// Authorisation response code, 2 bytes hex (method 1).
        #[arg(long)]
        arc: Option<String>,
        /// ARPC method: 1 (default) or 2.
        #[arg(long, default_value_t = 1)]
        method: u8,
        /// Card status update, 4 bytes hex (method 2).
        #[arg(long)]
        csu: Option<String>,
        /// Proprietary authentication data, 0 to 8 bytes hex (method 2).
        #[arg(long)]
        prop: Option<String>,
    },
}

/// `smartpos tool pinblock` subcommands.
#[derive(Subcommand)]
pub enum PinblockCmd {
    /// Encodes a PIN block; with --key also encrypts it (TDES for 0/1/3, AES for 4).
    Encode {
        /// Format: 0, 1, 3 or 4.
        #[arg(long)]
        format: u8,
        /// PIN, 4 to 12 digits.
        #[arg(long)]
        pin: String,
        /// PAN digits (not needed by format 1).
        #[arg(long)]
        pan: Option<String>,
        /// Key, hex (TDES 8/16/24 bytes for 0/1/3, AES 16/24/32 bytes for 4).
        #[arg(long)]
        key: Option<String>,
        /// Fixed fill instead of random: formats 1/3 one hex digit per fill nibble (at least
        /// 14 minus the PIN length; 3 needs A-F), format 4 16 hex digits (8 bytes).
        #[arg(long)]
        fill: Option<String>,
    },
    /// Decodes a PIN block; with --key the block is decrypted first.
    Decode {
        /// Format: 0, 1, 3 or 4.
        #[arg(long)]
        format: u8,
        /// PIN block, hex.
        #[arg(long)]
        block: String,
        /// PAN digits (not needed by format 1).
        #[arg(long)]
        pan: Option<String>,
        /// Key, hex.
        #[arg(long)]
        key: Option<String>,
    },
}

fn hex_arg(name: &str, value: &str) -> Result<Vec<u8>, ToolError> {
    decode(value).map_err(|e| ToolError(format!("--{name}: {e}")))
}

fn tdes_arg(name: &str, value: &str) -> Result<TdesKey, ToolError> {
    TdesKey::new(&hex_arg(name, value)?).map_err(|e| ToolError(format!("--{name}: {e}")))
}

fn aes_arg(name: &str, value: &str) -> Result<AesKey, ToolError> {
    AesKey::new(&hex_arg(name, value)?).map_err(|e| ToolError(format!("--{name}: {e}")))
}

fn sm4_arg(name: &str, value: &str) -> Result<Sm4Key, ToolError> {
    Sm4Key::new(&hex_arg(name, value)?).map_err(|e| ToolError(format!("--{name}: {e}")))
}

fn pan_arg(value: Option<&str>, format: PinBlockFormat) -> Result<Option<Pan>, ToolError> {
    match value {
        Some(p) => Pan::new(p)
            .map(Some)
            .map_err(|e| ToolError(format!("--pan: {e}"))),
        None if format.needs_pan() => Err(ToolError(format!(
            "--pan is required for PIN block format {}",
            format.number()
        ))),
        None => Ok(None),
    }
}

fn fill_arg(format: PinBlockFormat, fill: &str) -> Result<Vec<u8>, ToolError> {
    match format {
        PinBlockFormat::Iso0 => Err(ToolError("--fill: format 0 has no random fill".to_owned())),
        PinBlockFormat::Iso4 => hex_arg("fill", fill),
        PinBlockFormat::Iso1 | PinBlockFormat::Iso3 => fill
            .chars()
            .enumerate()
            .map(|(i, c)| {
                c.to_digit(16)
                    .map(|d| d as u8)
                    .ok_or_else(|| ToolError(format!("--fill: invalid hex digit at position {i}")))
            })
            .collect(),
    }
}

/// Runs a crypto tool command.
pub fn run(cmd: CryptoCmd) -> ToolResult {
    match cmd {
        CryptoCmd::UnlockCode {
            secret,
            terminal_id,
            challenge,
        } => {
            let secret = smartpos_terminal::store::Zeroizing::new(hex_arg("secret", &secret)?);
            if secret.is_empty() {
                return Err(ToolError("--secret: empty".to_owned()));
            }
            if challenge.len() != smartpos_operators::UNLOCK_DIGITS
                || !challenge.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(ToolError("--challenge: must be 8 digits".to_owned()));
            }
            let code = smartpos_operators::unlock_code(&secret, &terminal_id, &challenge);
            Ok(json!({ "terminal_id": terminal_id, "challenge": challenge, "code": code }))
        }
        CryptoCmd::Kcv { key } => {
            let k = tdes_arg("key", &key)?;
            Ok(json!({ "kcv": encode(&k.kcv()) }))
        }
        CryptoCmd::DukptTdes { bdk, ksn } => {
            let bdk = tdes_arg("bdk", &bdk)?;
            let ksn = tdes::Ksn::new(&hex_arg("ksn", &ksn)?)
                .map_err(|e| ToolError(format!("--ksn: {e}")))?;
            let ipek = tdes::ipek(&bdk, &ksn).map_err(|e| ToolError(format!("--bdk: {e}")))?;
            let keys = tdes::derive_from_ipek(&ipek, &ksn)?;
            Ok(json!({
                "ipek": encode(ipek.expose()),
                "transaction_key": encode(keys.transaction_key().expose()),
                "pin_key": encode(keys.pin_key().expose()),
                "mac_request_key": encode(keys.mac_request_key().expose()),
                "mac_response_key": encode(keys.mac_response_key().expose()),
                "data_request_key": encode(keys.data_request_key().expose()),
                "data_response_key": encode(keys.data_response_key().expose()),
            }))
        }
        CryptoCmd::DukptAes { bdk, ikid, counter } => {
            let bdk = aes_arg("bdk", &bdk)?;
            let id = daes::InitialKeyId::new(&hex_arg("ikid", &ikid)?)
                .map_err(|e| ToolError(format!("--ikid: {e}")))?;
            if counter.is_empty() || counter.len() > 8 {
                return Err(ToolError("--counter: must be 1 to 8 hex digits".to_owned()));
            }
            let counter = u32::from_str_radix(&counter, 16)
                .map_err(|_| ToolError("--counter: must be 1 to 8 hex digits".to_owned()))?;
            let ik = daes::initial_key(&bdk, &id)?;
            let tk = daes::transaction_key(&ik, &id, counter)?;
            let work = |usage| {
                daes::working_key(&tk, &id, counter, usage, daes::KeyType::Aes128)
                    .map(|k| encode(k.expose()))
            };
            Ok(json!({
                "initial_key": encode(ik.expose()),
                "transaction_key": encode(tk.expose()),
                "pin_key": work(daes::KeyUsage::PinEncryption)?,
                "mac_generation_key": work(daes::KeyUsage::MacGeneration)?,
                "mac_verification_key": work(daes::KeyUsage::MacVerification)?,
                "data_encryption_key": work(daes::KeyUsage::DataEncrypt)?,
            }))
        }
        CryptoCmd::Pinblock(PinblockCmd::Encode {
            format,
            pin,
            pan,
            key,
            fill,
        }) => {
            let format = PinBlockFormat::from_number(format)?;
            let pin = Pin::new(&pin).map_err(|e| ToolError(format!("--pin: {e}")))?;
            let pan = pan_arg(pan.as_deref(), format)?;
            let clear = match fill {
                Some(f) => {
                    let f = fill_arg(format, &f)?;
                    pinblock::encode_with_fill(format, &pin, pan.as_ref(), &f)
                        .map_err(|e| ToolError(format!("--fill: {e}")))?
                }
                None => {
                    pinblock::encode(format, &pin, pan.as_ref(), &mut pinblock::system_random())?
                }
            };
            let mut out = json!({ "clear_block": encode(clear.expose()) });
            if let Some(key) = key {
                let enc = match (format, pan.as_ref()) {
                    (PinBlockFormat::Iso4, Some(p)) => {
                        pinblock::encipher_iso4(&aes_arg("key", &key)?, &clear, p)?
                    }
                    _ => pinblock::encipher_tdes(&tdes_arg("key", &key)?, &clear)?,
                };
                out["encrypted_block"] = json!(encode(enc.expose()));
            }
            Ok(out)
        }
        CryptoCmd::Pinblock(PinblockCmd::Decode {
            format,
            block,
            pan,
            key,
        }) => {
            let format = PinBlockFormat::from_number(format)?;
            let pan = pan_arg(pan.as_deref(), format)?;
            let block = hex_arg("block", &block)?;
            let pin = match (key, format, pan.as_ref()) {
                (None, _, _) => pinblock::decode(format, &block, pan.as_ref())?,
                (Some(k), PinBlockFormat::Iso4, Some(p)) => {
                    pinblock::decrypt_aes(&aes_arg("key", &k)?, &block, p)?
                }
                (Some(k), _, _) => {
                    pinblock::decrypt_tdes(&tdes_arg("key", &k)?, format, &block, pan.as_ref())?
                }
            };
            Ok(json!({ "pin": pin.expose() }))
        }
        CryptoCmd::Mac {
            alg,
            key,
            data,
            padding,
        } => {
            let data = hex_arg("data", &data)?;
            if padding.is_some() && alg != "x9.19" {
                return Err(ToolError("--padding applies to x9.19 only".to_owned()));
            }
            let mac: Vec<u8> = match alg.as_str() {
                "x9.9" => mac::x9_9(&tdes_arg("key", &key)?, &data)?.to_vec(),
                "x9.19" => {
                    let p = Padding::from_method(padding.unwrap_or(1))
                        .map_err(|e| ToolError(format!("--padding: {e}")))?;
                    mac::x9_19(&tdes_arg("key", &key)?, &data, p)?.to_vec()
                }
                "cmac" => mac::aes_cmac(&aes_arg("key", &key)?, &data).to_vec(),
                "cup-ecb" => mac::cup_ecb(&tdes_arg("key", &key)?, &data).to_vec(),
                "cup-sm4" => mac::cup_sm4(&sm4_arg("key", &key)?, &data).to_vec(),
                _ => {
                    return Err(ToolError(
                        "--alg: must be x9.9, x9.19, cmac, cup-ecb or cup-sm4".to_owned(),
                    ));
                }
            };
            Ok(json!({ "mac": encode(&mac) }))
        }
        CryptoCmd::Sm4 { key, data, decrypt } => {
            let key = sm4_arg("key", &key)?;
            let data = hex_arg("data", &data)?;
            if data.is_empty() {
                return Err(ToolError(
                    "--data: give at least one 16-byte block".to_owned(),
                ));
            }
            let run = |r: Result<Vec<u8>, _>| r.map_err(|e| ToolError(format!("--data: {e}")));
            Ok(if decrypt {
                json!({ "plaintext": encode(&run(key.decrypt_ecb(&data))?) })
            } else {
                json!({ "ciphertext": encode(&run(key.encrypt_ecb(&data))?) })
            })
        }
        CryptoCmd::EmvArqc {
            imk,
            pan,
            psn,
            atc,
            data,
        } => {
            let imk = tdes_arg("imk", &imk)?;
            let pan = Pan::new(&pan).map_err(|e| ToolError(format!("--pan: {e}")))?;
            if psn.len() != 2 || !psn.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ToolError("--psn: must be two digits".to_owned()));
            }
            let psn: u8 = psn
                .parse()
                .map_err(|_| ToolError("--psn: must be two digits".to_owned()))?;
            let atc: [u8; 2] = hex_arg("atc", &atc)?
                .try_into()
                .map_err(|_| ToolError("--atc: must be 2 bytes".to_owned()))?;
            let data = hex_arg("data", &data)?;
            let mk = emv::icc_master_key_option_a(&imk, &pan, psn)
                .map_err(|e| ToolError(format!("--imk: {e}")))?;
            let sk = emv::common_session_key(&mk, atc)?;
            let arqc = emv::generate_ac(&sk, &data, AcPadding::Emv)?;
            Ok(json!({
                "icc_master_key": encode(mk.expose()),
                "session_key": encode(sk.expose()),
                "arqc": encode(&arqc),
            }))
        }
        CryptoCmd::EmvArpc {
            key,
            arqc,
            arc,
            method,
            csu,
            prop,
        } => {
            let sk = tdes_arg("key", &key)?;
            let arqc = hex_arg("arqc", &arqc)?;
            let arpc = match method {
                1 => {
                    let arc =
                        arc.ok_or_else(|| ToolError("--arc is required for method 1".into()))?;
                    emv::arpc_method1(&sk, &arqc, &hex_arg("arc", &arc)?)?.to_vec()
                }
                2 => {
                    let csu =
                        csu.ok_or_else(|| ToolError("--csu is required for method 2".into()))?;
                    let prop = match prop {
                        Some(p) => hex_arg("prop", &p)?,
                        None => Vec::new(),
                    };
                    emv::arpc_method2(&sk, &arqc, &hex_arg("csu", &csu)?, &prop)?.to_vec()
                }
                _ => return Err(ToolError("--method: must be 1 or 2".to_owned())),
            };
            Ok(json!({ "arpc": encode(&arpc) }))
        }
    }
}

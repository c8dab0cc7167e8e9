//! ESC/POS printer bytes for laid-out receipt lines.
//!
//! Each command is cited from the Epson *ESC/POS Command Reference*
//! (<https://download4.epson.biz/sec_pubs/pos/reference_en/escpos/>), by its name there.
//! Chinese text is sent in Chinese (Kanji) mode as GB18030, which the printers common on
//! Chinese smart-POS terminals accept (Sunmi built-in printers, Xprinter and other
//! GB18030-font printers); English receipts use code page 437, present in every ESC/POS font.
//!
//! The renderer only emits a style command when the style changes, so the bytes are small on
//! slow serial/Bluetooth links. Text is cleaned again here (control characters become
//! spaces), so even hand-built [`Line`]s cannot smuggle printer commands in.

use super::ReceiptError;
use super::model::Lang;
use super::text::{Align, Line, Width, sanitize};
use smartpos_types::gb18030::{self, GbCharset};

/// Character encoding of the text bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codepage {
    /// GB18030 in Chinese mode (`FS &`): ASCII single bytes, Chinese two (or four) bytes.
    Gb18030,
    /// Code page 437 (`ESC t 0`), Chinese mode cancelled (`FS .`): ASCII plus a few Latin
    /// letters and currency signs; anything else prints as `?`.
    Cp437,
}

/// How to encode a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscPosOptions {
    /// Text encoding.
    pub codepage: Codepage,
    /// Data for a QR code printed (centred) after the text, rendered by the printer.
    pub qr: Option<String>,
    /// Cut the paper at the end (printers with a cutter); without it the paper is fed so the
    /// last line clears the tear bar.
    pub cut: bool,
    /// Paper width; sets the QR module size.
    pub width: Width,
}

impl EscPosOptions {
    /// Defaults for a language: GB18030 for Chinese, CP437 for English; no QR code; cut.
    pub fn for_lang(lang: Lang, width: Width) -> EscPosOptions {
        EscPosOptions {
            codepage: match lang {
                Lang::Zh => Codepage::Gb18030,
                Lang::En => Codepage::Cp437,
            },
            qr: None,
            cut: true,
            width,
        }
    }
}

/// Most bytes a QR code holds: model 2, version 40, error correction M, byte mode
/// (ISO/IEC 18004:2015, table 7).
pub const QR_MAX_BYTES: usize = 2331;

const ESC: u8 = 0x1B;
const FS: u8 = 0x1C;
const GS: u8 = 0x1D;
const LF: u8 = 0x0A;

/// Lines fed after the last line when there is no cut, so it clears the tear bar.
const TEAR_FEED_LINES: u8 = 4;

/// What the printer is set to, so commands are sent only on change.
#[derive(Clone, Copy, PartialEq, Eq)]
struct PrinterState {
    bold: bool,
    size: u8,
    align: Align,
}

/// Encodes lines as ESC/POS bytes: initialise, select the code page, then per line the style
/// changes, the text and `LF`; then the QR code if any; then the cut (or a feed).
///
/// Errors only on a QR payload that is empty or longer than [`QR_MAX_BYTES`].
pub fn render_escpos(lines: &[Line], opts: &EscPosOptions) -> Result<Vec<u8>, ReceiptError> {
    if let Some(qr) = &opts.qr {
        if qr.is_empty() {
            return Err(ReceiptError::QrEmpty);
        }
        if qr.len() > QR_MAX_BYTES {
            return Err(ReceiptError::QrTooLong {
                max: QR_MAX_BYTES,
                got: qr.len(),
            });
        }
    }
    let mut out = Vec::with_capacity(64 + lines.len() * 40);
    // ESC @ — Initialize printer: clears the buffer and resets modes (left, not bold, size 1x1).
    out.extend_from_slice(&[ESC, b'@']);
    match opts.codepage {
        // FS & — Select Kanji character mode: two-byte codes print from the Chinese font.
        Codepage::Gb18030 => out.extend_from_slice(&[FS, b'&']),
        Codepage::Cp437 => {
            // FS . — Cancel Kanji character mode (Chinese printers often start in it).
            out.extend_from_slice(&[FS, b'.']);
            // ESC t n — Select character code table: n = 0, page 0 (PC437 USA, Standard Europe).
            out.extend_from_slice(&[ESC, b't', 0]);
        }
    }
    let mut state = PrinterState {
        bold: false,
        size: 0,
        align: Align::Left,
    };
    for line in lines {
        let size = (if line.style.double_width { 0x10 } else { 0 })
            | (if line.style.double_height { 0x01 } else { 0 });
        set_state(
            &mut out,
            &mut state,
            PrinterState {
                bold: line.style.bold,
                size,
                align: line.style.align,
            },
        );
        encode_text(&mut out, &sanitize(&line.text), opts.codepage);
        // LF — Print and line feed.
        out.push(LF);
    }
    if let Some(qr) = &opts.qr {
        set_state(
            &mut out,
            &mut state,
            PrinterState {
                bold: false,
                size: 0,
                align: Align::Center,
            },
        );
        write_qr(&mut out, qr.as_bytes(), opts.width);
    }
    if opts.cut {
        // GS V m n — Select cut mode and cut paper: m = 66 (function B), feeds the paper to
        // the cutting position plus n (= 0) motion units and performs a partial cut.
        out.extend_from_slice(&[GS, b'V', 66, 0]);
    } else {
        // ESC d n — Print and feed n lines.
        out.extend_from_slice(&[ESC, b'd', TEAR_FEED_LINES]);
    }
    Ok(out)
}

fn set_state(out: &mut Vec<u8>, cur: &mut PrinterState, want: PrinterState) {
    if cur.align != want.align {
        // ESC a n — Select justification: 0 left, 1 centred, 2 right. Effective at the start
        // of a line, which is where every call here is.
        let n = match want.align {
            Align::Left => 0,
            Align::Center => 1,
            Align::Right => 2,
        };
        out.extend_from_slice(&[ESC, b'a', n]);
    }
    if cur.bold != want.bold {
        // ESC E n — Turn emphasized mode on/off (LSB of n).
        out.extend_from_slice(&[ESC, b'E', u8::from(want.bold)]);
    }
    if cur.size != want.size {
        // GS ! n — Select character size: bits 4-6 width multiplier - 1, bits 0-2 height
        // multiplier - 1; applies to alphanumeric and Kanji characters.
        out.extend_from_slice(&[GS, b'!', want.size]);
    }
    *cur = want;
}

/// `GS ( k` — QR Code: functions 165, 167, 169, 180, 181 (symbol type cn = 49).
fn write_qr(out: &mut Vec<u8>, data: &[u8], width: Width) {
    let module = match width {
        Width::W32 => 6,
        Width::W48 => 8,
    };
    // Function 165 — Select the model: n1 = 50 (model 2), n2 = 0.
    out.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
    // Function 167 — Set the size of module: n dots (1-16).
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, module]);
    // Function 169 — Select the error correction level: n = 49, level M (15 %).
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, 49]);
    // Function 180 — Store the data in the symbol storage area: (pL + pH * 256) = k + 3,
    // m = 48. `data.len()` is at most QR_MAX_BYTES, checked by the caller.
    let len = data.len() + 3;
    let [pl, ph] = u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes();
    out.extend_from_slice(&[GS, b'(', b'k', pl, ph, 49, 80, 48]);
    out.extend_from_slice(data);
    // Function 181 — Print the symbol data in the symbol storage area: m = 48.
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 81, 48]);
    out.push(LF);
}

fn encode_text(out: &mut Vec<u8>, text: &str, codepage: Codepage) {
    for c in text.chars() {
        if c.is_ascii() {
            // `sanitize` removed control characters; printable ASCII is the same byte in both
            // code pages.
            out.push(c as u8);
            continue;
        }
        match codepage {
            Codepage::Gb18030 => {
                if !gb18030::encode_char(GbCharset::Gb18030, c, out) {
                    out.push(b'?');
                }
            }
            Codepage::Cp437 => out.push(cp437_byte(c).unwrap_or(b'?')),
        }
    }
}

/// Code page 437 bytes for the non-ASCII characters a Latin-script receipt plausibly holds
/// (IBM PC character set, code page 437 chart).
fn cp437_byte(c: char) -> Option<u8> {
    Some(match c {
        'Ç' => 0x80,
        'ü' => 0x81,
        'é' => 0x82,
        'â' => 0x83,
        'ä' => 0x84,
        'à' => 0x85,
        'ç' => 0x87,
        'ê' => 0x88,
        'è' => 0x8A,
        'Ä' => 0x8E,
        'É' => 0x90,
        'ô' => 0x93,
        'ö' => 0x94,
        'û' => 0x96,
        'Ö' => 0x99,
        'Ü' => 0x9A,
        '¢' => 0x9B,
        '£' => 0x9C,
        '¥' => 0x9D,
        'á' => 0xA0,
        'í' => 0xA1,
        'ó' => 0xA2,
        'ú' => 0xA3,
        'ñ' => 0xA4,
        'Ñ' => 0xA5,
        'ß' => 0xE1,
        '°' => 0xF8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tests::{any_receipt, en_refund, zh_sale};
    use crate::text::{Style, render_text, to_plain};
    use encoding_rs::GB18030;
    use proptest::prelude::*;
    use std::path::PathBuf;

    /// What a stream says, decoded by a reader that knows only the commands emitted here.
    #[derive(Debug, PartialEq)]
    struct Decoded {
        init: bool,
        codepage: Option<Codepage>,
        /// (style, raw text bytes) per LF.
        lines: Vec<(Style, Vec<u8>)>,
        qr: Option<Vec<u8>>,
        cut: bool,
        feed: Option<u8>,
    }

    fn decode(bytes: &[u8]) -> Decoded {
        let mut d = Decoded {
            init: false,
            codepage: None,
            lines: Vec::new(),
            qr: None,
            cut: false,
            feed: None,
        };
        let mut style = Style::default();
        let mut text = Vec::new();
        let mut i = 0;
        let at = |i: usize| bytes[i];
        while i < bytes.len() {
            assert!(!d.cut && d.feed.is_none(), "bytes after the end at {i}");
            match at(i) {
                ESC => match at(i + 1) {
                    b'@' => {
                        assert_eq!(i, 0, "ESC @ only at the start");
                        d.init = true;
                        i += 2;
                    }
                    b't' => {
                        assert_eq!(at(i + 2), 0);
                        d.codepage = Some(Codepage::Cp437);
                        i += 3;
                    }
                    b'a' => {
                        assert!(text.is_empty(), "ESC a mid-line");
                        style.align = match at(i + 2) {
                            0 => Align::Left,
                            1 => Align::Center,
                            2 => Align::Right,
                            n => panic!("bad alignment {n}"),
                        };
                        i += 3;
                    }
                    b'E' => {
                        style.bold = at(i + 2) == 1;
                        i += 3;
                    }
                    b'd' => {
                        d.feed = Some(at(i + 2));
                        i += 3;
                    }
                    other => panic!("unexpected ESC {other:#04x}"),
                },
                FS => {
                    match at(i + 1) {
                        b'&' => d.codepage = Some(Codepage::Gb18030),
                        b'.' => {}
                        other => panic!("unexpected FS {other:#04x}"),
                    }
                    i += 2;
                }
                GS => match at(i + 1) {
                    b'!' => {
                        let n = at(i + 2);
                        assert_eq!(n & !0x11, 0, "only 1x/2x sizes");
                        style.double_width = n & 0x10 != 0;
                        style.double_height = n & 0x01 != 0;
                        i += 3;
                    }
                    b'V' => {
                        assert_eq!((at(i + 2), at(i + 3)), (66, 0));
                        d.cut = true;
                        i += 4;
                    }
                    b'(' => {
                        assert_eq!(at(i + 2), b'k');
                        let len = usize::from(at(i + 3)) + 256 * usize::from(at(i + 4));
                        let body = &bytes[i + 5..i + 5 + len];
                        assert_eq!(body[0], 49, "QR symbol type");
                        if body[1] == 80 {
                            assert_eq!(body[2], 48);
                            d.qr = Some(body[3..].to_vec());
                        }
                        i += 5 + len;
                    }
                    other => panic!("unexpected GS {other:#04x}"),
                },
                LF => {
                    if d.qr.is_none() {
                        d.lines.push((style, std::mem::take(&mut text)));
                    }
                    i += 1;
                }
                b => {
                    assert!(b >= 0x20, "control byte {b:#04x} in text");
                    text.push(b);
                    i += 1;
                }
            }
        }
        assert!(text.is_empty(), "text without LF at the end");
        d
    }

    fn gb(bytes: &[u8]) -> String {
        let (text, had_errors) = GB18030.decode_without_bom_handling(bytes);
        assert!(!had_errors);
        text.into_owned()
    }

    fn golden_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/receipts")
    }

    /// Compares with the golden file; `SMARTPOS_BLESS=1` rewrites it (then review by hand).
    fn check_golden(name: &str, got: &[u8]) {
        let path = golden_dir().join(name);
        if std::env::var_os("SMARTPOS_BLESS").is_some() {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with SMARTPOS_BLESS=1)", path.display()));
        assert!(want == got, "{name} differs from the golden file");
    }

    const QR: &str = "https://pos.example.invalid/r/000001000123";

    fn zh_bytes() -> (Vec<Line>, Vec<u8>) {
        let lines = render_text(&zh_sale(), Width::W32);
        let opts = EscPosOptions {
            qr: Some(QR.into()),
            ..EscPosOptions::for_lang(Lang::Zh, Width::W32)
        };
        let bytes = render_escpos(&lines, &opts).unwrap();
        (lines, bytes)
    }

    fn en_bytes() -> (Vec<Line>, Vec<u8>) {
        let lines = render_text(&en_refund(), Width::W48);
        let opts = EscPosOptions {
            cut: false,
            ..EscPosOptions::for_lang(Lang::En, Width::W48)
        };
        let bytes = render_escpos(&lines, &opts).unwrap();
        (lines, bytes)
    }

    #[test]
    fn golden_chinese_sale_merchant_copy() {
        let (lines, bytes) = zh_bytes();
        check_golden("zh_sale_merchant_w32.bin", &bytes);
        check_golden(
            "zh_sale_merchant_w32.txt",
            to_plain(&lines, Width::W32).as_bytes(),
        );
    }

    #[test]
    fn golden_english_refund_customer_copy() {
        let (lines, bytes) = en_bytes();
        check_golden("en_refund_customer_w48.bin", &bytes);
        check_golden(
            "en_refund_customer_w48.txt",
            to_plain(&lines, Width::W48).as_bytes(),
        );
    }

    #[test]
    fn chinese_stream_structure_and_gb18030_round_trip() {
        let (lines, bytes) = zh_bytes();
        assert_eq!(&bytes[..4], &[ESC, b'@', FS, b'&']);
        assert_eq!(&bytes[bytes.len() - 4..], &[GS, b'V', 66, 0]);
        let d = decode(&bytes);
        assert!(d.init && d.cut);
        assert_eq!(d.codepage, Some(Codepage::Gb18030));
        assert_eq!(d.qr.as_deref(), Some(QR.as_bytes()));
        assert_eq!(d.lines.len(), lines.len());
        for ((style, raw), line) in d.lines.iter().zip(&lines) {
            assert_eq!(gb(raw), line.text);
            assert_eq!(*style, line.style, "{}", line.text);
        }
        // Chinese is really two-byte GB18030 (GB2312 area for these characters).
        let title = &d.lines[0].1;
        assert_eq!(&title[..3], b"POS");
        assert_eq!(&title[3..5], &[0xC7, 0xA9], "签 is C7A9 in GB2312");
    }

    #[test]
    fn english_stream_uses_cp437_and_feeds_without_cut() {
        let (lines, bytes) = en_bytes();
        assert_eq!(&bytes[..7], &[ESC, b'@', FS, b'.', ESC, b't', 0]);
        assert_eq!(&bytes[bytes.len() - 3..], &[ESC, b'd', TEAR_FEED_LINES]);
        let d = decode(&bytes);
        assert!(!d.cut && d.qr.is_none());
        assert_eq!(d.codepage, Some(Codepage::Cp437));
        for ((style, raw), line) in d.lines.iter().zip(&lines) {
            assert_eq!(String::from_utf8(raw.clone()).unwrap(), line.text);
            assert_eq!(*style, line.style);
        }
    }

    #[test]
    fn cp437_replaces_what_it_cannot_print() {
        let mut out = Vec::new();
        encode_text(&mut out, "Café ¥5 中", Codepage::Cp437);
        assert_eq!(out, b"Caf\x82 \x9D5 ?");
        let mut out = Vec::new();
        encode_text(&mut out, "¥中\u{20000}", Codepage::Gb18030);
        assert_eq!(gb(&out), "¥中\u{20000}");
    }

    #[test]
    fn hand_built_lines_cannot_inject_commands() {
        let lines = vec![Line {
            text: "A\u{1b}@\u{1d}V\u{1}\nB".into(),
            style: Style::default(),
        }];
        let bytes = render_escpos(&lines, &EscPosOptions::for_lang(Lang::Zh, Width::W32)).unwrap();
        let d = decode(&bytes);
        assert_eq!(d.lines.len(), 1);
        assert_eq!(gb(&d.lines[0].1), "A @ V  B");
    }

    #[test]
    fn qr_limits() {
        let lines = render_text(&zh_sale(), Width::W48);
        let mut opts = EscPosOptions::for_lang(Lang::Zh, Width::W48);
        opts.qr = Some(String::new());
        assert_eq!(render_escpos(&lines, &opts), Err(ReceiptError::QrEmpty));
        opts.qr = Some("x".repeat(QR_MAX_BYTES + 1));
        assert_eq!(
            render_escpos(&lines, &opts),
            Err(ReceiptError::QrTooLong {
                max: QR_MAX_BYTES,
                got: QR_MAX_BYTES + 1
            })
        );
        opts.qr = Some("x".repeat(QR_MAX_BYTES));
        let d = decode(&render_escpos(&lines, &opts).unwrap());
        assert_eq!(d.qr.map(|q| q.len()), Some(QR_MAX_BYTES));
    }

    proptest! {
        #[test]
        fn any_receipt_encodes_and_decodes_back(d in any_receipt()) {
            for w in [Width::W32, Width::W48] {
                let lines = render_text(&d, w);
                let bytes = render_escpos(&lines, &EscPosOptions::for_lang(Lang::Zh, w)).unwrap();
                let dec = decode(&bytes);
                prop_assert_eq!(dec.lines.len(), lines.len());
                for ((style, raw), line) in dec.lines.iter().zip(&lines) {
                    prop_assert_eq!(&gb(raw), &line.text);
                    prop_assert_eq!(*style, line.style);
                }
                let bytes = render_escpos(&lines, &EscPosOptions::for_lang(Lang::En, w)).unwrap();
                prop_assert_eq!(decode(&bytes).lines.len(), lines.len());
            }
        }
    }
}

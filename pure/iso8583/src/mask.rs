//! Masking rules shared by [`crate::Dialect::dump`], masked tool output and `Debug` of
//! [`crate::Message`]: PAN first 6 / last 4, track data reduced to the masked PAN, PIN blocks,
//! ICC data and key material reduced to their length.

use crate::spec::Mask;
use smartpos_types::hex;
use smartpos_types::secret::mask_digits;

/// Mask of a field by its ISO 8583:1987 role, used where no dialect is known (`Debug`).
/// Built-in dialect tables use the same rules field by field.
pub fn default_mask(field: u8) -> Mask {
    match field {
        2 | 34 | 102 | 103 => Mask::Pan,
        14 => Mask::Hidden,
        35 | 36 | 45 => Mask::Track,
        52 | 55 | 62 => Mask::Length,
        _ => Mask::Clear,
    }
}

/// Renders a value under a mask. `text` is the value as text if the field is a text field.
pub fn render(mask: Mask, text: Option<&str>, bytes: &[u8]) -> String {
    match (mask, text) {
        (Mask::Clear, Some(t)) => t.to_owned(),
        (Mask::Clear, None) => hex::encode(bytes),
        (Mask::Pan, Some(t)) => mask_digits(t),
        (Mask::Track, Some(t)) => mask_track(t),
        (Mask::Hidden, _) => "****".to_owned(),
        (Mask::Pan | Mask::Track | Mask::Length, _) => format!("<{} bytes>", bytes.len()),
    }
}

/// Track 1/2/3 text: the masked PAN (first digit run, after an optional format code such as
/// `B` or `;`) then stars, and the length.
fn mask_track(t: &str) -> String {
    let body = t.strip_prefix(|c: char| !c.is_ascii_digit()).unwrap_or(t);
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    let pan = body.get(..digits).filter(|p| (12..=19).contains(&p.len()));
    match pan {
        Some(p) => format!("{}D**** ({} chars)", mask_digits(p), t.len()),
        None => format!("<{} chars>", t.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        assert_eq!(
            render(Mask::Pan, Some("6222021234567890123"), b""),
            "622202*********0123"
        );
        assert_eq!(
            render(Mask::Track, Some("6222021234567890123D2512201"), b""),
            "622202*********0123D**** (27 chars)"
        );
        assert_eq!(
            render(Mask::Track, Some("B4111111111111111^DOE/J^2512"), b""),
            "411111******1111D**** (28 chars)"
        );
        assert_eq!(render(Mask::Track, Some("12D34"), b""), "<5 chars>");
        assert_eq!(render(Mask::Length, None, &[1, 2, 3]), "<3 bytes>");
        assert_eq!(render(Mask::Clear, None, &[0xAB]), "AB");
        assert_eq!(render(Mask::Hidden, Some("2512"), b"2512"), "****");
        assert_eq!(render(Mask::Pan, None, &[1]), "<1 bytes>");
    }
}

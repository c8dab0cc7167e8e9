//! [`Message`]: an MTI, an optional header and numbered field values (logical bytes).

use crate::mask;
use crate::wire::Mti;
use std::collections::BTreeMap;
use std::fmt;

/// An ISO 8583 message independent of any dialect.
///
/// Values are *logical* bytes: ASCII text for `n`/`an`/`ans`/`z` fields (the digits `"000000"`,
/// not their BCD form), raw bytes for `b` fields. The dialect checks and encodes them in
/// [`crate::Dialect::pack`]. Field 1 (secondary bitmap) is managed by the codec.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Message type indicator.
    pub mti: Mti,
    /// Dialect header (CUP: TPDU + header, 11 bytes). Empty means the dialect's default.
    pub header: Vec<u8>,
    fields: BTreeMap<u8, Vec<u8>>,
}

impl Message {
    /// An empty message of this type.
    pub fn new(mti: Mti) -> Self {
        Message {
            mti,
            header: Vec::new(),
            fields: BTreeMap::new(),
        }
    }

    /// A message from fields in ascending order (built in one go, not inserted one by one).
    pub(crate) fn from_sorted(
        mti: Mti,
        header: Vec<u8>,
        fields: impl Iterator<Item = (u8, Vec<u8>)>,
    ) -> Self {
        Message {
            mti,
            header,
            fields: fields.collect(),
        }
    }

    /// Sets a field to logical bytes (replacing any previous value).
    pub fn set(&mut self, field: u8, value: impl Into<Vec<u8>>) -> &mut Self {
        self.fields.insert(field, value.into());
        self
    }

    /// Sets a text field.
    pub fn set_text(&mut self, field: u8, value: &str) -> &mut Self {
        self.set(field, value.as_bytes())
    }

    /// The logical bytes of a field.
    pub fn get(&self, field: u8) -> Option<&[u8]> {
        self.fields.get(&field).map(Vec::as_slice)
    }

    /// A field as text; `None` if absent or not UTF-8 (binary fields).
    pub fn text(&self, field: u8) -> Option<&str> {
        self.get(field).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Removes a field and returns its value.
    pub fn remove(&mut self, field: u8) -> Option<Vec<u8>> {
        self.fields.remove(&field)
    }

    /// Whether a field is present.
    pub fn has(&self, field: u8) -> bool {
        self.fields.contains_key(&field)
    }

    /// Present fields in ascending order.
    pub fn fields(&self) -> impl DoubleEndedIterator<Item = (u8, &[u8])> {
        self.fields.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// Number of fields present.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl fmt::Debug for Message {
    /// Masked with the ISO 8583:1987 field roles ([`mask::default_mask`]), as the dump is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Value<'a>(u8, &'a [u8]);
        impl fmt::Debug for Value<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let text = std::str::from_utf8(self.1)
                    .ok()
                    .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)));
                f.write_str(&mask::render(mask::default_mask(self.0), text, self.1))
            }
        }
        struct Fields<'a>(&'a Message);
        impl fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.fields().map(|(n, v)| (n, Value(n, v))))
                    .finish()
            }
        }
        f.debug_struct("Message")
            .field("mti", &format_args!("{}", self.mti))
            .field(
                "header",
                &format_args!("{}", smartpos_types::hex::encode(&self.header)),
            )
            .field("fields", &Fields(self))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_text(3, "000000")
            .set(52, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(m.text(3), Some("000000"));
        assert_eq!(m.get(52).map(<[u8]>::len), Some(8));
        assert!(m.has(52));
        assert_eq!(m.fields().map(|(n, _)| n).collect::<Vec<_>>(), vec![3, 52]);
        assert_eq!(m.remove(3), Some(b"000000".to_vec()));
        assert!(!m.has(3));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn debug_is_masked() {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_text(2, "6222021234567890123")
            .set_text(35, "6222021234567890123D25122011234500000")
            .set(52, vec![0x12; 8])
            .set(55, vec![0x9F, 0x26, 0x08])
            .set_text(4, "000000001000");
        let shown = format!("{m:?}");
        assert!(!shown.contains("6222021234567890123"), "{shown}");
        assert!(!shown.contains("1234567890"), "{shown}");
        assert!(!shown.contains("2512"), "{shown}");
        assert!(!shown.contains("1212"), "{shown}");
        assert!(!shown.contains("9F26"), "{shown}");
        assert!(shown.contains("622202*********0123"), "{shown}");
        assert!(shown.contains("000000001000"), "{shown}");
        assert!(shown.contains("0200"), "{shown}");
    }
}

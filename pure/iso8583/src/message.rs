//! [`Message`]: an MTI, an optional header and numbered field values (logical bytes).
//!
//! The values live in one backing buffer, with an index of (field, range) kept in field order:
//! a decoded message is two allocations (index and buffer) whatever its field count, and
//! packing walks a slice instead of a tree.

use crate::mask;
use crate::wire::Mti;
use std::fmt;

/// An ISO 8583 message independent of any dialect.
///
/// Values are *logical* bytes: ASCII text for `n`/`an`/`ans`/`z` fields (the digits `"000000"`,
/// not their BCD form), raw bytes for `b` fields. The dialect checks and encodes them in
/// [`crate::Dialect::pack`]. Field 1 (secondary bitmap) is managed by the codec.
#[derive(Clone)]
pub struct Message {
    /// Message type indicator.
    pub mti: Mti,
    /// Dialect header (CUP: TPDU + header, 11 bytes). Empty means the dialect's default.
    pub header: Vec<u8>,
    /// Present fields in ascending order of number, each with where its value lies in `data`.
    index: Vec<Slot>,
    /// Every value, back to back (replaced and removed values leave dead bytes behind).
    data: Vec<u8>,
    /// Bytes of `data` that no slot refers to any more; compacted when they outweigh the rest.
    dead: usize,
}

/// One present field: its number and the range of its value in [`Message::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    field: u8,
    start: usize,
    end: usize,
}

impl Message {
    /// An empty message of this type.
    pub fn new(mti: Mti) -> Self {
        Message {
            mti,
            header: Vec::new(),
            index: Vec::new(),
            data: Vec::new(),
            dead: 0,
        }
    }

    /// An empty message with room for `fields` fields of `bytes` value bytes in all.
    pub(crate) fn with_capacity(mti: Mti, header: Vec<u8>, fields: usize, bytes: usize) -> Self {
        Message {
            mti,
            header,
            index: Vec::with_capacity(fields),
            // 16 bytes more: the decoder writes short BCD values 16 characters at a time and
            // takes back the ones past the value.
            data: Vec::with_capacity(bytes + 16),
            dead: 0,
        }
    }

    /// Appends a field whose number is above every present one, its value written by `write`
    /// at the end of the backing buffer (the decoder's path: no per-field allocation). Returns
    /// `false`, and changes nothing, if `field` is not above the last present field.
    pub(crate) fn push_with(&mut self, field: u8, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.index.last().is_some_and(|s| s.field >= field) {
            return false;
        }
        let start = self.data.len();
        write(&mut self.data);
        self.index.push(Slot {
            field,
            start,
            end: self.data.len(),
        });
        true
    }

    fn value(&self, s: &Slot) -> &[u8] {
        self.data.get(s.start..s.end).unwrap_or_default()
    }

    fn find(&self, field: u8) -> Result<usize, usize> {
        // Fields are usually set in ascending order: the last one is checked first.
        match self.index.last() {
            Some(s) if s.field < field => Err(self.index.len()),
            None => Err(0),
            _ => self.index.binary_search_by_key(&field, |s| s.field),
        }
    }

    /// Sets a field to logical bytes (replacing any previous value). The bytes are copied
    /// into the message's buffer.
    pub fn set(&mut self, field: u8, value: impl Into<Vec<u8>>) -> &mut Self {
        self.set_slice(field, &value.into())
    }

    /// [`Message::set`] from borrowed bytes.
    fn set_slice(&mut self, field: u8, value: &[u8]) -> &mut Self {
        let start = self.data.len();
        self.data.extend_from_slice(value);
        let slot = Slot {
            field,
            start,
            end: self.data.len(),
        };
        match self.find(field) {
            Ok(i) => {
                if let Some(old) = self.index.get_mut(i) {
                    self.dead += old.end - old.start;
                    *old = slot;
                }
                self.compact_if_mostly_dead();
            }
            Err(i) => self.index.insert(i, slot),
        }
        self
    }

    /// Sets a text field.
    pub fn set_text(&mut self, field: u8, value: &str) -> &mut Self {
        self.set_slice(field, value.as_bytes())
    }

    /// The logical bytes of a field.
    pub fn get(&self, field: u8) -> Option<&[u8]> {
        let i = self.find(field).ok()?;
        self.index.get(i).map(|s| self.value(s))
    }

    /// A field as text; `None` if absent or not UTF-8 (binary fields).
    pub fn text(&self, field: u8) -> Option<&str> {
        self.get(field).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Removes a field and returns its value.
    pub fn remove(&mut self, field: u8) -> Option<Vec<u8>> {
        let i = self.find(field).ok()?;
        let slot = self.index.remove(i);
        let value = self.value(&slot).to_vec();
        self.dead += slot.end - slot.start;
        self.compact_if_mostly_dead();
        Some(value)
    }

    /// Whether a field is present.
    pub fn has(&self, field: u8) -> bool {
        self.find(field).is_ok()
    }

    /// Present fields in ascending order.
    pub fn fields(&self) -> impl DoubleEndedIterator<Item = (u8, &[u8])> + ExactSizeIterator {
        self.index.iter().map(|s| (s.field, self.value(s)))
    }

    /// Number of fields present.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Total length of the present values, in bytes.
    pub(crate) fn value_bytes(&self) -> usize {
        self.data.len() - self.dead
    }

    /// Rewrites the buffer without its dead bytes once they are more than the live ones, so
    /// a message whose fields are set again and again does not grow without bound.
    fn compact_if_mostly_dead(&mut self) {
        if self.dead <= self.data.len() / 2 {
            return;
        }
        let mut data = Vec::with_capacity(self.data.len() - self.dead);
        for s in &mut self.index {
            let start = data.len();
            data.extend_from_slice(self.data.get(s.start..s.end).unwrap_or_default());
            *s = Slot {
                field: s.field,
                start,
                end: data.len(),
            };
        }
        self.data = data;
        self.dead = 0;
    }
}

impl PartialEq for Message {
    /// Same MTI, header and fields with the same values (however the values are stored).
    fn eq(&self, other: &Message) -> bool {
        self.mti == other.mti
            && self.header == other.header
            && self.index.len() == other.index.len()
            && self.fields().eq(other.fields())
    }
}

impl Eq for Message {}

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
    fn set_replaces_in_place_of_order_and_equality_ignores_storage() {
        let mut a = Message::new(Mti::FINANCIAL_REQUEST);
        a.set_text(41, "12345678")
            .set_text(3, "000000")
            .set_text(11, "000001");
        a.set_text(11, "000002");
        assert_eq!(
            a.fields().map(|(n, _)| n).collect::<Vec<_>>(),
            vec![3, 11, 41]
        );
        assert_eq!(a.text(11), Some("000002"));
        let mut b = Message::new(Mti::FINANCIAL_REQUEST);
        b.set_text(3, "000000")
            .set_text(11, "000002")
            .set_text(41, "12345678");
        assert_eq!(a, b);
        b.set_text(41, "12345679");
        assert_ne!(a, b);
        let mut c = b.clone();
        c.remove(41);
        assert_ne!(b, c);
        assert_eq!(c.get(41), None);
        assert_eq!(c.fields().next_back().map(|(n, _)| n), Some(11));
    }

    #[test]
    fn values_set_again_and_again_do_not_grow_the_buffer_without_bound() {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_text(3, "000000");
        for i in 0..10_000u32 {
            m.set(55, vec![(i % 251) as u8; 64]);
            m.set_text(4, &format!("{i:012}"));
        }
        assert_eq!(m.get(55), Some(&[(9_999 % 251) as u8; 64][..]));
        assert_eq!(m.text(4), Some("000000009999"));
        assert_eq!(m.text(3), Some("000000"));
        assert_eq!(m.value_bytes(), 6 + 64 + 12);
        assert!(m.data.len() <= 2 * m.value_bytes(), "{}", m.data.len());
        let removed = m.remove(55);
        assert_eq!(removed, Some(vec![(9_999 % 251) as u8; 64]));
        assert_eq!(m.value_bytes(), 18);
        assert!(m.data.len() <= 2 * 18, "{}", m.data.len());
    }

    #[test]
    fn push_with_appends_only_above_the_last_field() {
        let mut m = Message::with_capacity(Mti::FINANCIAL_REQUEST, Vec::new(), 2, 8);
        assert!(m.push_with(3, |out| out.extend_from_slice(b"000000")));
        assert!(!m.push_with(3, |out| out.extend_from_slice(b"1")));
        assert!(!m.push_with(2, |out| out.extend_from_slice(b"1")));
        assert!(m.push_with(4, |out| out.extend_from_slice(b"12")));
        assert_eq!(m.text(3), Some("000000"));
        assert_eq!(m.text(4), Some("12"));
        assert_eq!(m.len(), 2);
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

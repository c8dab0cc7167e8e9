//! Random valid messages built from a dialect table.

use proptest::prelude::*;
use smartpos_iso8583::{Dialect, FieldKind, FieldSpec, Message, Mti, length_bounds};

/// A valid random logical value for one field.
pub fn value_for(spec: &FieldSpec) -> BoxedStrategy<Vec<u8>> {
    let (min, max) = length_bounds(spec);
    // Short values mostly, the maximum length sometimes.
    let len = prop_oneof![4 => min..=max.min(min.max(40)), 1 => Just(max)];
    let chars: &'static [u8] = match spec.kind {
        FieldKind::N | FieldKind::Xn => b"0123456789",
        FieldKind::An => b"ABCXYZabcxyz0189 ",
        FieldKind::Ans => b"AZaz09 !~^=/.,-",
        FieldKind::Ns => b"0123456789 =-/",
        FieldKind::Z => b"0123456789D",
        _ => b"",
    };
    let kind = spec.kind;
    if kind == FieldKind::B {
        return len
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
            .boxed();
    }
    len.prop_flat_map(move |n| proptest::collection::vec(proptest::sample::select(chars), n))
        .prop_map(move |mut v| {
            if kind == FieldKind::Xn
                && let Some(first) = v.first_mut()
            {
                *first = b'C';
            }
            v
        })
        .boxed()
}

/// A random message with a random subset of the dialect's fields.
pub fn message_for(dialect: &'static Dialect) -> BoxedStrategy<Message> {
    let specs: Vec<FieldSpec> = dialect.field_specs().cloned().collect();
    type FieldValue = BoxedStrategy<Option<(u8, Vec<u8>)>>;
    let fields: Vec<FieldValue> = specs
        .iter()
        .map(|s| {
            let n = s.number;
            proptest::option::weighted(0.3, value_for(s).prop_map(move |v| (n, v))).boxed()
        })
        .collect();
    (0u16..=9999, fields)
        .prop_map(|(mti, fields)| {
            let mut m = Message::new(Mti(mti));
            for (n, v) in fields.into_iter().flatten() {
                m.set(n, v);
            }
            m
        })
        .boxed()
}

/// The built-in dialects.
pub fn dialects() -> [&'static Dialect; 3] {
    [Dialect::cup(), Dialect::iso87b(), Dialect::iso87a()]
}

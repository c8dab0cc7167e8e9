//! Pack/unpack of the reference sale in each dialect: the CUP sale in `cup`, the 1987 sale in
//! `iso87a` (ASCII) and, the same logical message, in `iso87b` (binary/BCD).

// `criterion_group!` generates an undocumented `pub fn`; nothing here is API.
#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use smartpos_iso8583::{Dialect, reference};

fn codec(c: &mut Criterion) {
    for (dialect, msg) in [
        (Dialect::cup(), reference::cup_sale()),
        (Dialect::iso87b(), reference::iso87a_sale()),
        (Dialect::iso87a(), reference::iso87a_sale()),
    ] {
        let packed = match dialect.pack(&msg) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("reference message does not pack in {}: {e}", dialect.name());
                continue;
            }
        };
        c.bench_function(&format!("iso8583/{}/pack", dialect.name()), |b| {
            b.iter(|| dialect.pack(black_box(&msg)))
        });
        c.bench_function(&format!("iso8583/{}/unpack", dialect.name()), |b| {
            b.iter(|| dialect.unpack(black_box(&packed)))
        });
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);

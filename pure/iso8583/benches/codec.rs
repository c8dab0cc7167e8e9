//! Pack/unpack of the reference sale in each dialect: the CUP sale in `cup`, the 1987 sale in
//! `iso87a` (ASCII) and, the same logical message, in `iso87b` (binary/BCD, jPOS's
//! convention). `unpack` builds an owned [`smartpos_iso8583::Message`] (two allocations:
//! field index and value buffer); `view` reads in place (every field checked, values borrowed, no allocation), then
//! reads the fields a response match looks at (MTI, 11 as a number, 41, 42, 39 as text).
//! `scripts/bench.sh` puts these next to jPOS 2.1.10 and pyiso8583 on the same message.

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
        c.bench_function(&format!("iso8583/{}/view", dialect.name()), |b| {
            b.iter(|| {
                let v = dialect.view(black_box(&packed)).ok()?;
                let stan = v.field(11)?.to_u64()?;
                Some((
                    v.mti(),
                    stan,
                    v.str(41)?.len() + v.str(42)?.len(),
                    v.has(39),
                ))
            })
        });
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);

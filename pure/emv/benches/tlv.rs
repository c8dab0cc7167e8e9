//! TLV parsing throughput on real-shaped card responses (see `testdata/README.md`).

use criterion::{Criterion, Throughput, black_box, criterion_main};
use smartpos_emv::tlv::{encode_all, find_bytes};
use smartpos_emv::{Tag, parse};

fn vector(text: &str) -> Vec<u8> {
    smartpos_types::hex::decode(text.trim()).unwrap_or_default()
}

fn bench_parse(c: &mut Criterion) {
    let gpo = vector(include_str!("../testdata/qvsdc_gpo_format2.hex"));
    let ppse = vector(include_str!("../testdata/ppse_fci.hex"));
    let record = vector(include_str!("../testdata/mchip_read_record.hex"));
    let mut group = c.benchmark_group("tlv");
    for (name, bytes) in [
        ("parse_gpo_format2", &gpo),
        ("parse_ppse_fci", &ppse),
        ("parse_mchip_record", &record),
    ] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse(black_box(bytes))));
    }
    group.finish();
    // A separate group so that no byte throughput is reported for tree operations.
    let mut group = c.benchmark_group("tlv_tree");
    let tree = parse(&gpo).unwrap_or_default();
    group.bench_function("find_9F26_in_gpo", |b| {
        b.iter(|| find_bytes(black_box(&tree), Tag(0x9F26)).map(<[u8]>::len))
    });
    group.bench_function("encode_gpo_format2", |b| {
        b.iter(|| encode_all(black_box(&tree)))
    });
    group.finish();
}

// The macro generates an undocumented public function; the bench is not an API.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_parse);
}
use group::benches;
criterion_main!(benches);

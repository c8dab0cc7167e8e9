//! Kernel processing time for a whole contactless read: everything the SDK does between
//! APDUs (building commands, parsing answers, DOLs, CVM, field 55), with a card that answers
//! instantly from precomputed R-APDUs (a Visa qVSDC card and a Mastercard M/Chip card built
//! from the `testdata/` vectors). The card side costs a lookup, so the time measured is the
//! kernel's own; the radio time of a real tap (tens of milliseconds) comes on top.
//!
//! (`smartpos-sim` cards cannot be used here: `smartpos-sim` depends on this crate.)
//!
//! Measured on the 2-core development VM (release profile, `cargo bench -p smartpos-emv
//! --bench kernel`): Visa full read ≈ 8.5 µs for 4 APDUs, Mastercard ≈ 9.9 µs for 5 APDUs,
//! i.e. about 2 µs of SDK time per APDU.

use criterion::{Criterion, black_box, criterion_main};
use smartpos_emv::kernel::{ContactlessLimits, Kernel, KernelConfig, KernelTxn};
use smartpos_emv::tlv::{Tag, Tlv};

fn hex(text: &str) -> Vec<u8> {
    smartpos_types::hex::decode(text.trim()).unwrap_or_default()
}

fn with_9000(mut v: Vec<u8>) -> Vec<u8> {
    v.extend_from_slice(&[0x90, 0x00]);
    v
}

fn fci(aid: &str, label: &[u8], pdol: Option<&str>) -> Vec<u8> {
    let mut a5 = vec![Tlv::primitive(Tag(0x50), label.to_vec())];
    if let Some(p) = pdol {
        a5.push(Tlv::primitive(Tag(0x9F38), hex(p)));
    }
    with_9000(
        Tlv::constructed(
            Tag(0x6F),
            vec![
                Tlv::primitive(Tag(0x84), hex(aid)),
                Tlv::constructed(Tag(0xA5), a5),
            ],
        )
        .encode(),
    )
}

/// R-APDUs in the order the kernel asks for them.
fn visa_answers() -> Vec<Vec<u8>> {
    vec![
        with_9000(hex(include_str!("../testdata/ppse_fci.hex"))),
        fci(
            "A0000000031010",
            b"VISA CREDIT",
            Some(include_str!("../testdata/visa_pdol.hex")),
        ),
        with_9000(hex(include_str!("../testdata/qvsdc_gpo_format2.hex"))),
        with_9000(hex("70105A0847617390010100105F2403221231")),
    ]
}

fn mchip_answers() -> Vec<Vec<u8>> {
    let ppse = Tlv::constructed(
        Tag(0x6F),
        vec![
            Tlv::primitive(Tag(0x84), b"2PAY.SYS.DDF01".to_vec()),
            Tlv::constructed(
                Tag(0xA5),
                vec![Tlv::constructed(
                    Tag(0xBF0C),
                    vec![Tlv::constructed(
                        Tag(0x61),
                        vec![
                            Tlv::primitive(Tag(0x4F), hex("A0000000041010")),
                            Tlv::primitive(Tag(0x87), vec![1]),
                        ],
                    )],
                )],
            ),
        ],
    );
    vec![
        with_9000(ppse.encode()),
        fci("A0000000041010", b"MASTERCARD", None),
        with_9000(hex("8006198008010100")),
        with_9000(hex(include_str!("../testdata/mchip_read_record.hex"))),
        with_9000(hex("80118000271122334455667788011020000000")),
    ]
}

fn txn() -> KernelTxn {
    KernelTxn {
        amount: 1_234,
        other_amount: 0,
        currency: 156,
        country: 156,
        txn_type: 0,
        date: "261122".to_owned(),
        unpredictable_number: [1, 2, 3, 4],
        now_ms: 0,
    }
}

/// One whole read; returns whether it produced a card outcome.
fn read(config: &KernelConfig, answers: &[Vec<u8>]) -> bool {
    let mut k = Kernel::new(config.clone(), txn());
    let mut i = 0;
    while let Some(capdu) = k.poll_command() {
        black_box(&capdu);
        let r = answers.get(i).map(Vec::as_slice).unwrap_or(&[0x6F, 0x00]);
        i += 1;
        k.handle_response(i as u64, r);
    }
    matches!(k.poll_outcome(), Some(Ok(_)))
}

fn bench_kernel(c: &mut Criterion) {
    let config = KernelConfig {
        limits: ContactlessLimits {
            transaction_limit: Some(100_000),
            cvm_required_limit: 5_000,
            floor_limit: 0,
        },
        ..KernelConfig::default()
    };
    let visa = visa_answers();
    let mc = mchip_answers();
    // A bench over a failing read would measure the wrong thing.
    assert!(read(&config, &visa), "visa script must complete");
    assert!(read(&config, &mc), "mchip script must complete");
    let mut group = c.benchmark_group("kernel");
    group.bench_function("visa_qvsdc_full_read", |b| {
        b.iter(|| read(black_box(&config), black_box(&visa)))
    });
    group.bench_function("mastercard_mchip_full_read", |b| {
        b.iter(|| read(black_box(&config), black_box(&mc)))
    });
    group.finish();
}

// The macro generates an undocumented public function; the bench is not an API.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_kernel);
}
use group::benches;
criterion_main!(benches);

//! Runs pack, owned unpack and view of the iso87b reference sale N times each, one
//! `#[inline(never)]` function per operation, for instruction counts under
//! `valgrind --tool=callgrind` (`scripts/bench.sh --count`): counts do not move with the
//! machine's load, unlike the criterion timings.
//!
//! Usage: `codec_calls [N]` (default 10000).

use smartpos_iso8583::{Dialect, Message, reference};
use std::hint::black_box;

#[inline(never)]
fn pack_once(d: &Dialect, m: &Message) -> usize {
    d.pack(black_box(m)).map_or(0, |p| p.len())
}

#[inline(never)]
fn unpack_once(d: &Dialect, bytes: &[u8]) -> usize {
    d.unpack(black_box(bytes)).map_or(0, |m| m.header.len())
}

/// What the criterion `view` bench does: read in place, then the fields a response match
/// looks at.
#[inline(never)]
fn view_once(d: &Dialect, bytes: &[u8]) -> Option<u64> {
    let v = d.view(black_box(bytes)).ok()?;
    let stan = v.field(11)?.to_u64()?;
    Some(stan + (v.str(41)?.len() + v.str(42)?.len()) as u64 + u64::from(v.has(39)))
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let d = Dialect::iso87b();
    let msg = reference::iso87a_sale();
    let Ok(bytes) = d.pack(&msg) else {
        eprintln!("the reference sale does not pack in iso87b");
        std::process::exit(1);
    };
    let mut sink = 0u64;
    for _ in 0..n {
        sink += pack_once(d, &msg) as u64;
    }
    for _ in 0..n {
        sink += unpack_once(d, &bytes) as u64;
    }
    for _ in 0..n {
        sink += view_once(d, &bytes).unwrap_or(0);
    }
    println!("{sink}");
}

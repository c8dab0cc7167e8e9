use smartpos_bench::journal::JournalBench;
use smartpos_bench::sale::SaleBench;
use smartpos_bench::throughput::HostBench;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sale_overhead_reports_floor_and_breakdown() {
    let r = smartpos_bench::sale::run(&SaleBench {
        sales: 3,
        warmup: 1,
        dir: None,
    })
    .await
    .unwrap();
    assert_eq!(r["bench"], "sale_overhead");
    assert_eq!(r["sale"]["n"], 3);
    assert_eq!(r["floor"]["n"], 3);
    assert!(r["apdus_per_sale"].as_u64().unwrap() >= 3, "{r}");
    // Intent and outcome at least.
    assert!(r["engine_commits_per_sale"].as_u64().unwrap() >= 2, "{r}");
    assert!(r["request_bytes"].as_u64().unwrap() > 50, "{r}");
    assert!(r["ratio_median"].as_f64().unwrap() > 0.0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_scaling_reports_every_size() {
    let r = smartpos_bench::journal::run(&JournalBench {
        sizes: vec![10, 1_000],
        sales: 2,
        opens: 1,
        dir: None,
    })
    .await
    .unwrap();
    let sizes = r["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);
    assert_eq!(sizes[1]["rows"], 1_000);
    assert_eq!(sizes[1]["sale"]["n"], 2);
    assert!(sizes[1]["file_bytes"].as_u64().unwrap() > sizes[0]["file_bytes"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_throughput_counts_only_approved_sales() {
    let r = smartpos_bench::throughput::run(&HostBench {
        terminals: 4,
        seconds: 0.3,
        warmup_seconds: 0.1,
    })
    .await
    .unwrap();
    assert_eq!(r["terminals"], 4);
    let counted = r["sales_in_window"].as_u64().unwrap();
    assert!(counted > 0, "{r}");
    assert!(
        r["approved_on_host_total"].as_u64().unwrap() >= counted,
        "{r}"
    );
}

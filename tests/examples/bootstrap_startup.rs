//! Start-up of the Lambda bootstraps (`bench/bootstraps.sh` runs this inside the test
//! command's service environment): for each function, its zipped size (as Lambda receives
//! it) and the time from process start to the first answered invocation against the local
//! Runtime API emulator, with DynamoDB Local and moto behind it — the init phase (keys
//! fetched, DynamoDB connection warmed, sso-acs's XML-DSig self-test) plus one request.
//! Median of `RUNS` (default 10) fresh processes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use identity_tests::runtime_api::{self, Bootstrap, LocalAws};
use identity_tests::template;

fn zipped_size(bootstrap: &Path) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("function.zip");
    let status = Command::new("zip")
        .args(["-q", "-9", "-j", "-X"])
        .arg(&zip)
        .arg(bootstrap)
        .status()
        .expect("run zip (apt-get install zip)");
    assert!(status.success());
    std::fs::metadata(&zip).unwrap().len()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let Some(bootstraps) = runtime_api::bootstraps() else {
        panic!("no bootstraps: run sam build first");
    };
    let local = LocalAws::provision("https://id.example.com")
        .await
        .expect("DynamoDB Local and moto (run through tests/run.sh --with-services)");
    let routes = template::routes(&template::read());
    println!(
        "{:<24} {:>10} {:>10} {:>14} {:>10} {:>10}",
        "function", "size", "zipped", "start→answer", "min", "max"
    );
    for (id, path) in bootstraps {
        let (request, _) = runtime_api::probe(&id);
        let route = routes
            .iter()
            .find(|r| r.matches(&request.method, &request.path).is_some())
            .expect("a route for the probe")
            .clone();
        let event = request.event("id.example.com", &route);
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut f = Bootstrap::start(&id, &path, &[], &local.env).await;
            let r = f.send(&event).await;
            let elapsed = f.started.elapsed();
            assert!(r.status < 500, "{id}: {} {}", r.status, r.text());
            times.push(elapsed);
            drop(f);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{:<24} {:>10} {:>10} {:>11.1} ms {:>7.1} ms {:>7.1} ms",
            id,
            mib(std::fs::metadata(&path).unwrap().len()),
            mib(zipped_size(&path)),
            median.as_secs_f64() * 1000.0,
            times[0].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
        );
    }
}

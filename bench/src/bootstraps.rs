//! The Lambda bootstrap rows: for each of the five functions and the hello-world floor
//! (`bench/floor`), all built with the release profile as `sam build` ships them (BIN_DIR
//! holds the binaries under their crate names, template.yaml's `BuildProperties: Binary`):
//!
//! - the zipped size (what Lambda receives: `zip -9` of the one file);
//! - start: the time from process start to the first answered invocation on the local
//!   Runtime API emulator (`identity_tests::runtime_api`), with DynamoDB Local and moto
//!   behind it: the init phase (keys fetched from Secrets Manager, the DynamoDB connection
//!   opened, sso-acs's XML-DSig self-test) and one request; the median of `RUNS` fresh
//!   processes; also the CPU time the process spent in that interval (the rest is waiting
//!   on the stand-ins);
//! - peak RSS (`VmHWM`) after 1,000 invocations of the function's probe request.
//!
//! Run inside the test command's service environment (`tests/run.sh --services`), which
//! sets the stand-ins' endpoints.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use identity_tests::runtime_api::{self, ApiRequest, Bootstrap, LocalAws};
use identity_tests::template::{self, Route};

use crate::{R, row};

/// The hello-world bootstrap's key in the rows, beside the functions' logical ids.
pub const FLOOR: &str = "Floor";
/// Its binary (bench/floor).
const FLOOR_BINARY: &str = "lambda-floor";
const INVOCATIONS: usize = 1_000;
const HOST: &str = "id.example.com";

pub fn run(args: &[&str]) -> R {
    let [dir, runs] = args else {
        return Err("usage: identity-bench bootstraps BIN_DIR RUNS".into());
    };
    let dir = Path::new(dir);
    let runs: usize = runs.parse()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(measure(dir, runs.max(1)))
}

/// One bootstrap to measure: its key, binary, probe request, the route that reaches it, and
/// its environment.
struct Subject {
    id: String,
    path: PathBuf,
    request: ApiRequest,
    route: Route,
    env: Vec<(String, String)>,
}

async fn measure(dir: &Path, runs: usize) -> R {
    let local = LocalAws::provision(&format!("https://{HOST}"))
        .await
        .ok_or("DynamoDB Local and moto are not running (run through tests/run.sh --services)")?;
    let routes = template::routes(&template::read());
    let mut all = vec![Subject {
        id: FLOOR.into(),
        path: dir.join(FLOOR_BINARY),
        request: ApiRequest::get("/hello"),
        route: Route {
            method: "GET".into(),
            path: "/hello".into(),
            function: FLOOR.into(),
        },
        env: Vec::new(),
    }];
    // The five HTTP functions (the key rotation function answers no HTTP request).
    for f in template::functions(&template::read())
        .into_iter()
        .filter(|f| routes.iter().any(|r| r.function == f.logical_id))
    {
        let (request, _) = runtime_api::probe(&f.logical_id);
        let route = routes
            .iter()
            .find(|r| r.matches(&request.method, &request.path).is_some())
            .ok_or_else(|| format!("no route for the probe of {}", f.logical_id))?
            .clone();
        let path = dir.join(&f.binary);
        all.push(Subject {
            id: f.logical_id,
            path,
            request,
            route,
            env: local.env.clone(),
        });
    }
    for Subject {
        id,
        path,
        request,
        route,
        env,
    } in all
    {
        if !path.is_file() {
            return Err(format!("no bootstrap at {}", path.display()).into());
        }
        let event = request.event(HOST, &route);
        eprintln!("bootstrap {id}: {runs} starts, then {INVOCATIONS} invocations");
        let mut starts = Vec::with_capacity(runs);
        let mut cpu = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut f = Bootstrap::start(&id, &path, &[], &env).await;
            let answer = f.send(&event).await;
            starts.push(f.started.elapsed().as_secs_f64() * 1e3);
            cpu.push(cpu_ms(f.pid())?);
            if answer.status >= 500 {
                return Err(format!("{id}: {} {}", answer.status, f.output()).into());
            }
            drop(f);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut f = Bootstrap::start(&id, &path, &[], &env).await;
        for _ in 0..INVOCATIONS {
            let answer = f.send(&event).await;
            if answer.status >= 500 {
                return Err(format!("{id}: {} {}", answer.status, f.output()).into());
            }
        }
        let rss = peak_rss_mb(f.pid())?;
        drop(f);
        let key = format!("boot.{id}");
        row(&format!("{key}.zipped"), zipped_mb(&path)?, "MB");
        row(&format!("{key}.start"), median(&mut starts), "ms");
        row(&format!("{key}.start_cpu"), median(&mut cpu), "ms");
        row(&format!("{key}.rss"), rss, "MB");
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The zipped size in MB (10^6 bytes, as Lambda's limits are written).
fn zipped_mb(bootstrap: &Path) -> R<f64> {
    let dir = tempfile::tempdir()?;
    let zip = dir.path().join("function.zip");
    let status = Command::new("zip")
        .args(["-q", "-9", "-j", "-X"])
        .arg(&zip)
        .arg(bootstrap)
        .status()?;
    if !status.success() {
        return Err("zip failed".into());
    }
    Ok(std::fs::metadata(&zip)?.len() as f64 / 1e6)
}

/// `VmHWM` of a live process, in MB (10^6 bytes).
fn peak_rss_mb(pid: u32) -> R<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmHWM in /proc/PID/status")?;
    Ok(kb * 1024.0 / 1e6)
}

/// CPU time of a live process so far, in ms: the sum over its threads of the first field
/// of /proc/PID/task/TID/schedstat (nanoseconds on a CPU).
fn cpu_ms(pid: u32) -> R<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        ns += stat
            .split_whitespace()
            .next()
            .ok_or("empty schedstat")?
            .parse::<u64>()?;
    }
    Ok(ns as f64 / 1e6)
}

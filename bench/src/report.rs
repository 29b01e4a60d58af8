//! The report of one `bench/run.sh`: every row, ours beside the peer measured in the same
//! run, the ratio (how many times better we are: the peer's time over ours, or our rate
//! over the peer's; for the bootstrap rows, how many times the hello-world floor we cost),
//! the budget and whether it is met.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::R;

/// Lower is better (a time, a size) or higher (a rate).
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

struct Row {
    name: String,
    ours: String,
    /// The peer's key and name; None: ours alone.
    peer: Option<(String, &'static str)>,
    better: Better,
    /// Our value must be at most (Lower) or at least (Higher) this.
    limit: Option<f64>,
    /// The ratio must be at least this.
    min_ratio: Option<f64>,
    /// Our value must be at most this many times the peer's (Lower only: the floor rows).
    max_of_peer: Option<f64>,
}

fn row(name: impl Into<String>, ours: impl Into<String>, better: Better) -> Row {
    Row {
        name: name.into(),
        ours: ours.into(),
        peer: None,
        better,
        limit: None,
        min_ratio: None,
        max_of_peer: None,
    }
}

fn vs(mut r: Row, key: impl Into<String>, peer: &'static str) -> Row {
    r.peer = Some((key.into(), peer));
    r
}

fn limit(mut r: Row, value: f64) -> Row {
    r.limit = Some(value);
    r
}

fn ratio(mut r: Row, value: f64) -> Row {
    r.min_ratio = Some(value);
    r
}

fn at_most_times(mut r: Row, value: f64) -> Row {
    r.max_of_peer = Some(value);
    r
}

/// The five functions (template.yaml's logical ids), and the floor's key (bootstraps.rs).
const FUNCTIONS: [&str; 5] = [
    "SsoAcsFunction",
    "OAuthAuthorizeFunction",
    "OAuthTokenFunction",
    "AddonSsoFunction",
    "JwtGrantFunction",
];
const FLOOR: &str = "hello-world lambda_http (floor)";
/// What the worst-case rows are measured against: a real ACS validation, in the same run.
const REAL_ACS: &str = "a real ACS validation (same run)";

/// The peers a row is a multiple of (lower is better, and the budget is "at most N times"),
/// and how the ratio names them.
fn times_of(peer: &str) -> Option<&'static str> {
    match peer {
        FLOOR => Some("the floor"),
        REAL_ACS => Some("a real validation"),
        _ => None,
    }
}

/// The worst-case rows (bench/src/worst.rs): each costly input, through its route.
const WORST: [(&str, &str); 7] = [
    (
        "worst.acs.attribute_flood",
        "… `POST /sso/acs`, 256 KB of attributes on one element",
    ),
    (
        "worst.acs.namespace_flood",
        "… `POST /sso/acs`, 256 KB of namespace declarations",
    ),
    (
        "worst.acs.deep_nesting",
        "… `POST /sso/acs`, 30,000 nested elements",
    ),
    (
        "worst.acs.largest_signed",
        "… `POST /sso/acs`, a signed response padded to 256 KB",
    ),
    (
        "worst.slo.attribute_flood",
        "… `POST /sso/slo`, 256 KB of attributes on one element",
    ),
    (
        "worst.login.many_fields",
        "… `POST /login`, 40,000 form fields",
    ),
    (
        "worst.jwt.largest_assertion",
        "… `POST /oauth/jwt/token`, a 32 KB assertion",
    ),
];

const ACS: &str = "SAML ACS validation, ~5 KB response, Assertion signed (median per call)";
const GRANT: &str =
    "JWT bearer grant in-process, embedded store (median; peers: verify + sign only)";
const HTTP1: &str = "token endpoint over HTTP, client_credentials, 1 connection, 10 s";
const HTTP16: &str = "token endpoint over HTTP, client_credentials, 16 connections, 10 s";

fn rows() -> Vec<Row> {
    use Better::*;
    let mut rows = vec![
        ratio(
            limit(
                vs(
                    row(ACS, "acs.ours", Lower),
                    "acs.python3-saml",
                    "python3-saml",
                ),
                250.0,
            ),
            10.0,
        ),
        ratio(
            limit(
                vs(
                    row(ACS, "acs.ours", Lower),
                    "acs.node-saml",
                    "@node-saml/node-saml",
                ),
                250.0,
            ),
            40.0,
        ),
        vs(
            row(ACS, "acs.ours", Lower),
            "acs.samael",
            "samael ServiceProvider (naive baseline)",
        ),
        limit(
            vs(row(GRANT, "grant.ours", Lower), "grant.pyjwt", "PyJWT"),
            150.0,
        ),
        limit(
            vs(row(GRANT, "grant.ours", Lower), "grant.jose", "jose"),
            150.0,
        ),
        ratio(
            vs(
                row(HTTP1, "http.c1.ours", Higher),
                "http.c1.oidc-provider",
                "oidc-provider",
            ),
            5.0,
        ),
        ratio(
            vs(
                row(HTTP16, "http.c16.ours", Higher),
                "http.c16.oidc-provider",
                "oidc-provider",
            ),
            5.0,
        ),
        vs(
            row("… p50 latency, 16 connections", "http.c16.ours.p50", Lower),
            "http.c16.oidc-provider.p50",
            "oidc-provider",
        ),
        vs(
            row("… p99 latency, 16 connections", "http.c16.ours.p99", Lower),
            "http.c16.oidc-provider.p99",
            "oidc-provider",
        ),
        row(
            "code flow end to end over HTTP (authorize → token → refresh)",
            "codeflow.ours",
            Higher,
        ),
    ];
    rows.push(at_most_times(
        vs(
            row(
                "worst case per unauthenticated request: the costliest input the tests know, through its route (median)",
                "worst.ours",
                Lower,
            ),
            "worst.baseline",
            REAL_ACS,
        ),
        20.0,
    ));
    for (key, name) in WORST {
        rows.push(at_most_times(
            vs(row(name, key, Lower), "worst.baseline", REAL_ACS),
            20.0,
        ));
    }
    let floor = |what: &str| format!("boot.{}.{what}", crate::bootstraps::FLOOR);
    for id in FUNCTIONS {
        let key = |what: &str| format!("boot.{id}.{what}");
        let zipped = if id == "SsoAcsFunction" { 8.0 } else { 5.0 };
        rows.push(limit(
            vs(
                row(format!("{id}: bootstrap zipped"), key("zipped"), Lower),
                floor("zipped"),
                FLOOR,
            ),
            zipped,
        ));
        rows.push(at_most_times(
            vs(
                row(
                    format!("{id}: start → first answer (Runtime API, median)"),
                    key("start"),
                    Lower,
                ),
                floor("start"),
                FLOOR,
            ),
            1.5,
        ));
        rows.push(vs(
            row(
                format!("… {id}: CPU time in that start"),
                key("start_cpu"),
                Lower,
            ),
            floor("start_cpu"),
            FLOOR,
        ));
        rows.push(limit(
            vs(
                row(
                    format!("{id}: peak RSS after 1,000 invocations"),
                    key("rss"),
                    Lower,
                ),
                floor("rss"),
                FLOOR,
            ),
            30.0,
        ));
    }
    rows
}

/// Reads the JSON lines `{"key","value","unit"}` of a run and writes the table (Markdown)
/// and `latest.json`.
pub fn write(rows_file: &Path, md: &Path, json_out: &Path) -> R {
    let mut values: HashMap<String, (f64, String)> = HashMap::new();
    for line in std::fs::read_to_string(rows_file)?.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)?;
        let key = v["key"].as_str().ok_or("a row without key")?.to_string();
        let value = v["value"].as_f64().ok_or("a row without value")?;
        let unit = v["unit"].as_str().unwrap_or("").to_string();
        values.insert(key, (value, unit));
    }
    let date = today();
    let machine = machine();
    let mut out = Vec::new();
    let mut table = format!(
        "# Benchmarks, {date}\n\nOne run of `bench/run.sh` on one machine: {machine}.\n\n\
| row | ours | peer | peer's | ratio | budget | met |\n|---|---|---|---|---|---|---|\n"
    );
    for r in rows() {
        let Some((ours, unit)) = values.get(&r.ours).cloned() else {
            table.push_str(&format!("| {} | not measured | | | | | no |\n", r.name));
            out.push(json!({"name": r.name, "ours": null, "met": false}));
            continue;
        };
        let peer = r
            .peer
            .as_ref()
            .and_then(|(k, name)| values.get(k).map(|(v, _)| (*v, *name)));
        // How many times better we are; against the floor (or a real validation), how many
        // times it we cost.
        let multiple_of = r.peer.as_ref().and_then(|(_, name)| times_of(name));
        let against_floor = multiple_of.is_some();
        let ratio = peer.map(|(p, _)| match r.better {
            _ if against_floor => ours / p,
            Better::Lower => p / ours,
            Better::Higher => ours / p,
        });
        let mut budget = Vec::new();
        let mut met = true;
        if let Some(l) = r.limit {
            let (sign, ok) = match r.better {
                Better::Lower => ("≤", ours <= l),
                Better::Higher => ("≥", ours >= l),
            };
            budget.push(format!("{sign} {l} {unit}"));
            met &= ok;
        }
        if let Some(m) = r.min_ratio {
            budget.push(format!("≥ {m}×"));
            met &= ratio.is_some_and(|x| x >= m);
        }
        if let Some(m) = r.max_of_peer {
            budget.push(format!("≤ {m}× {}", multiple_of.unwrap_or("the peer")));
            met &= peer.is_some_and(|(p, _)| ours <= m * p);
        }
        let has_budget = !budget.is_empty();
        table.push_str(&format!(
            "| {} | {} {unit} | {} | {} | {} | {} | {} |\n",
            r.name,
            ours,
            peer.map(|(_, n)| n).unwrap_or("—"),
            peer.map(|(v, _)| format!("{v} {unit}")).unwrap_or_default(),
            ratio
                .map(|x| if let Some(what) = multiple_of {
                    format!("{x:.1}× {what}")
                } else {
                    format!("{x:.1}×")
                })
                .unwrap_or_default(),
            if has_budget {
                budget.join(", ")
            } else {
                "report".into()
            },
            if !has_budget {
                "—"
            } else if met {
                "yes"
            } else {
                "**no**"
            },
        ));
        out.push(json!({
            "name": r.name,
            "ours": ours,
            "peer": peer.map(|(v, _)| v),
            "peer_name": peer.map(|(_, n)| n),
            "unit": unit,
            "ratio": ratio.map(|x| (x * 100.0).round() / 100.0),
            "budget": if has_budget { Value::from(budget.join(", ")) } else { Value::Null },
            "met": if has_budget { Value::from(met) } else { Value::Null },
        }));
    }
    std::fs::write(md, table)?;
    std::fs::write(
        json_out,
        serde_json::to_string_pretty(&json!({"rows": out, "machine": machine, "date": date}))?,
    )?;
    Ok(())
}

fn today() -> String {
    identity_shared::clock::rfc3339(identity_shared::clock::system().now())[..10].to_string()
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::ARCH)
}

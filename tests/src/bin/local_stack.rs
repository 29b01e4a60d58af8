//! `local-stack`: the deployment served locally (`identity_tests::stack`), for
//! `scripts/local-stack.sh`, which builds the bootstraps and starts DynamoDB Local and moto
//! first.
//!
//!     local-stack [--listen 127.0.0.1:PORT] [--template FILE] [--param NAME=VALUE]…
//!                 [--env NAME=VALUE]… [--strict] [--report FILE] [-- CMD ARGS…]
//!
//! With CMD: runs it with `IDENTITY_BASE_URL` and what `identity admin` needs to reach the
//! same store and secrets in its environment, then stops everything and exits with CMD's
//! status. Without: prints the base URL and the `export` lines and serves until interrupted.
//!
//! `local-stack --audit-recorded DIR` starts nothing: it lists the template's grants that no
//! judged deployment recorded in DIR used (`IDENTITY_IAM_RECORD=DIR` while they ran), and
//! fails when there is one the template does not excuse.
//!
//! Either way it ends with the IAM audit of every AWS call the functions made: a call a
//! function's policy refused makes the exit status 1 (naming function, action, resource,
//! route and test); with `--strict`, so does a grant no call needed, unless `template.yaml`
//! excuses it (`# iam-unexercised: FUNCTION ACTION RESOURCE: why`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use identity_tests::stack::{self, Options, Stack};

struct Args {
    listen: SocketAddr,
    template: Option<PathBuf>,
    parameters: Vec<(String, String)>,
    environment: Vec<(String, String)>,
    strict: bool,
    report: Option<PathBuf>,
    audit_recorded: Option<PathBuf>,
    command: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: local-stack [--listen 127.0.0.1:PORT] [--template FILE] [--param NAME=VALUE]... [--env NAME=VALUE]... [--strict] [--report FILE] [-- CMD ARGS...] | --audit-recorded DIR"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        listen: "127.0.0.1:0".parse().unwrap(),
        template: None,
        parameters: Vec::new(),
        environment: Vec::new(),
        strict: false,
        report: None,
        audit_recorded: None,
        command: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => {
                let addr: SocketAddr = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage());
                if !addr.ip().is_loopback() {
                    eprintln!("local-stack: --listen must be a loopback address");
                    std::process::exit(2);
                }
                a.listen = addr;
            }
            "--template" => a.template = Some(it.next().unwrap_or_else(|| usage()).into()),
            "--param" => {
                let p = it.next().unwrap_or_else(|| usage());
                let (k, v) = p.split_once('=').unwrap_or_else(|| usage());
                a.parameters.push((k.to_string(), v.to_string()));
            }
            "--env" => {
                let p = it.next().unwrap_or_else(|| usage());
                let (k, v) = p.split_once('=').unwrap_or_else(|| usage());
                a.environment.push((k.to_string(), v.to_string()));
            }
            "--strict" => a.strict = true,
            "--report" => a.report = Some(it.next().unwrap_or_else(|| usage()).into()),
            "--audit-recorded" => {
                a.audit_recorded = Some(it.next().unwrap_or_else(|| usage()).into())
            }
            "--" => {
                a.command = it.by_ref().collect();
                if a.command.is_empty() {
                    usage();
                }
            }
            _ => usage(),
        }
    }
    a
}

/// `--audit-recorded DIR`: the grants of the template that no deployment recorded in DIR
/// used (each judged deployment writes there when `IDENTITY_IAM_RECORD` names it).
fn audit_recorded(options: &Options, dir: &std::path::Path) -> ExitCode {
    match stack::audit_recorded(options, dir) {
        Ok(unused) if unused.is_empty() => {
            eprintln!(
                "local-stack: every grant of {} was used by a recorded call",
                options.template.display()
            );
            ExitCode::SUCCESS
        }
        Ok(unused) => {
            for g in &unused {
                eprintln!(
                    "UNUSED {} {} on {} ({})",
                    g.function, g.action, g.resource, g.source
                );
            }
            eprintln!(
                "local-stack: {} grants no recorded call needed: remove them from {}, or say why they stay (# iam-unexercised: FUNCTION ACTION RESOURCE: why)",
                unused.len(),
                options.template.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("local-stack: cannot audit {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}

async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = args();
    let mut options = match Options::from_env(a.listen) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("local-stack: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(t) = &a.template {
        options.template = t.clone();
    }
    if let Some(dir) = &a.audit_recorded {
        return audit_recorded(&options, dir);
    }
    options.parameters = a.parameters.clone();
    options.environment = a.environment.clone();
    let template = options.template.clone();
    let started = std::time::Instant::now();
    let stack = match Stack::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("local-stack: could not start: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "local-stack: {} serving on {} (started in {:.1}s; tables {}*)",
        template.display(),
        stack.base_url,
        started.elapsed().as_secs_f64(),
        stack.prefix
    );
    let status = if a.command.is_empty() {
        println!("{}", stack.base_url);
        for (k, v) in &stack.operator_env {
            println!("export {k}={v}");
        }
        interrupted().await;
        0
    } else {
        let child = tokio::process::Command::new(&a.command[0])
            .args(&a.command[1..])
            .envs(stack.operator_env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .status();
        tokio::select! {
            s = child => match s {
                Ok(s) => s.code().unwrap_or(1),
                Err(e) => {
                    eprintln!("local-stack: cannot run {}: {e}", a.command[0]);
                    127
                }
            },
            _ = interrupted() => 130,
        }
    };

    let audit = stack.audit();
    let unexcused = stack::unexcused(
        &audit.unused,
        &std::fs::read_to_string(&template).unwrap_or_default(),
        &stack.judge.rendered.tables,
        &stack.prefix,
    );
    let calls = stack.judge.recording().calls.lock().unwrap().len();
    eprintln!(
        "local-stack: IAM audit: {calls} calls judged, {} refused, {} grants used, {} unused ({} excused)",
        audit.refused.len(),
        audit.used.len(),
        audit.unused.len(),
        audit.unused.len() - unexcused.len()
    );
    eprint!("{}", audit.report());
    if let Some(path) = &a.report {
        let mut text = audit.report();
        for (g, n) in &audit.used {
            text.push_str(&format!(
                "USED {} {} on {} ({}): {n} calls\n",
                g.function, g.action, g.resource, g.source
            ));
        }
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("local-stack: cannot write {}: {e}", path.display());
        }
    }
    if !audit.refused.is_empty() {
        eprintln!("local-stack: a function made a call its IAM policy refuses (REFUSED above)");
        eprintln!(
            "{}",
            stack
                .output()
                .await
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        return ExitCode::from(if status == 0 { 1 } else { status as u8 });
    }
    if a.strict && !unexcused.is_empty() {
        eprintln!(
            "local-stack: grants no call needed (UNUSED above): remove them from template.yaml, or say why they stay (# iam-unexercised: FUNCTION ACTION RESOURCE: why)"
        );
        return ExitCode::from(if status == 0 { 1 } else { status as u8 });
    }
    ExitCode::from(status as u8)
}

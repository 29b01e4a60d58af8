//! `identity-bench` as the scripts call it (bench/run.sh, bench/soak.sh, and the test
//! command's soak through the local stack): a call it cannot read is refused with its usage,
//! not run with guessed arguments. Being an integration test, this also has `cargo test`
//! build the binary with the workspace's test features, which the test command then runs.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_identity-bench");

#[test]
fn no_arguments_is_refused_with_the_usage() {
    let out = Command::new(BIN).output().expect("run identity-bench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("usage: identity-bench"), "{err}");
}

#[test]
fn a_soak_without_its_five_arguments_is_refused_with_its_usage() {
    let out = Command::new(BIN)
        .args(["soak", "-", "30"])
        .output()
        .expect("run identity-bench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("usage: soak IDENTITY_BIN SECONDS CLIENTS MD JSON"),
        "{err}"
    );
}

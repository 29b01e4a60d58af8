//! The build refuses a Lambda bootstrap that would not start on provided.al2023
//! (scripts/lambda-link, the workspace's linker, and scripts/check-bootstrap.sh): tried with
//! small C programs linked as if they were a function's release binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Links `source` through the wrapper into `dir/release/deps/NAME-0123456789abcdef`.
fn link(dir: &Path, name: &str, source: &str, libs: &[&str]) -> (Output, PathBuf) {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let deps = dir.join("release/deps");
    std::fs::create_dir_all(&deps).unwrap();
    let out = deps.join(format!("{name}-0123456789abcdef"));
    let output = Command::new(workspace().join("scripts/lambda-link"))
        .arg(&c)
        .arg("-o")
        .arg(&out)
        .args(libs)
        .output()
        .expect("run scripts/lambda-link");
    (output, out)
}

const PLAIN: &str = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";
// arc4random arrived in glibc 2.36: newer than Amazon Linux 2023's 2.34.
const NEWER_GLIBC: &str = "#include <stdlib.h>\n#include <stdio.h>\nint main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n";
const OTHER_LIBRARY: &str =
    "#include <zlib.h>\n#include <stdio.h>\nint main(void) { puts(zlibVersion()); return 0; }\n";

fn glibc_has_arc4random() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("probe.c");
    std::fs::write(&c, NEWER_GLIBC).unwrap();
    Command::new("cc")
        .arg(&c)
        .arg("-o")
        .arg(dir.path().join("probe"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_bootstrap_that_needs_a_newer_glibc_or_another_library_fails_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, path) = link(dir.path(), "jwt_grant", PLAIN, &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(path.is_file(), "a portable bootstrap is kept");

    let (refused, path) = link(dir.path(), "oauth_token", OTHER_LIBRARY, &["-lz"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("libz.so.1"), "{said}");
    assert!(
        said.contains("would not start on provided.al2023"),
        "{said}"
    );
    assert!(!path.exists(), "the refused binary is removed");

    if glibc_has_arc4random() {
        let (refused, path) = link(dir.path(), "sso_acs", NEWER_GLIBC, &[]);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{said}");
        assert!(said.contains("GLIBC_2.3"), "{said}");
        assert!(!path.exists());
    } else {
        eprintln!("this host's glibc is older than 2.36: the newer-glibc case cannot be made");
    }
}

#[test]
fn other_binaries_are_linked_as_they_are() {
    // The CLI (`identity`) links libxmlsec1 and friends dynamically, and may need this
    // host's glibc: only the functions' release binaries are checked.
    let dir = tempfile::tempdir().unwrap();
    let (out, path) = link(dir.path(), "identity", OTHER_LIBRARY, &["-lz"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(path.is_file());
}

#[test]
fn the_workspace_links_through_the_wrapper() {
    let config = std::fs::read_to_string(workspace().join(".cargo/config.toml")).unwrap();
    let section = config
        .split("[target.x86_64-unknown-linux-gnu]")
        .nth(1)
        .expect("a linker for x86_64-unknown-linux-gnu");
    assert!(
        section
            .lines()
            .any(|l| l.trim() == "linker = \"scripts/lambda-link\""),
        "{section}"
    );
}

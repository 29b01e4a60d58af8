//! The build refuses a Lambda bootstrap that would not start on provided.al2023: `sam build`
//! (scripts/build-lambda.sh, its last step) and the workspace's linker (scripts/lambda-link),
//! both through scripts/check-bootstrap.sh. Tried with small C programs.

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

/// `cc SOURCE -o dir/NAME LIBS` with the host's compiler, not through the wrapper.
fn compile(dir: &Path, name: &str, source: &str, libs: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let out = dir.join(name);
    let status = Command::new("cc")
        .arg(&c)
        .arg("-o")
        .arg(&out)
        .args(libs)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// `scripts/build-lambda.sh --install BINARY NAME ARTIFACTS`: what `sam build` does with each
/// function once it is compiled.
fn install(binary: &Path, artifacts: &Path) -> Output {
    Command::new(workspace().join("scripts/build-lambda.sh"))
        .arg("--install")
        .arg(binary)
        .arg("oauth-token")
        .arg(artifacts)
        .output()
        .expect("run scripts/build-lambda.sh")
}

#[test]
fn sam_build_keeps_only_a_bootstrap_that_starts_on_provided_al2023() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("OAuthTokenFunction");
    let plain = compile(dir.path(), "plain", PLAIN, &[]);
    let kept = install(&plain, &artifacts);
    assert!(
        kept.status.success(),
        "{}",
        String::from_utf8_lossy(&kept.stderr)
    );
    assert!(artifacts.join("bootstrap").is_file());

    let mut refused = vec![(
        compile(dir.path(), "zlib", OTHER_LIBRARY, &["-lz"]),
        "libz.so.1",
    )];
    if glibc_has_arc4random() {
        refused.push((compile(dir.path(), "newer", NEWER_GLIBC, &[]), "GLIBC_2.3"));
    } else {
        eprintln!("this host's glibc is older than 2.36: the newer-glibc case cannot be made");
    }
    for (binary, why) in refused {
        let name = binary.file_name().unwrap().to_string_lossy();
        let artifacts = dir.path().join(format!("{name}-artifacts"));
        let out = install(&binary, &artifacts);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(why), "{said}");
        assert!(
            said.contains("would not start on provided.al2023; nothing copied"),
            "{said}"
        );
        assert!(
            !artifacts.join("bootstrap").exists(),
            "nothing is left for sam to package"
        );
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

#[test]
fn the_lambda_toolchain_links_against_glibc_2_34_whatever_the_hosts_is() {
    // `scripts/build-lambda.sh --prepare` (tests/run.sh runs it before `sam build`) leaves
    // the zig it links with, and this wrapper of it, in target/lambda/.
    let zig_cc = workspace().join("target/lambda/bin/zig-cc");
    assert!(
        zig_cc.is_file(),
        "{} is missing: run scripts/build-lambda.sh --prepare",
        zig_cc.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let zig = |name: &str, source: &str| {
        let c = dir.path().join(format!("{name}.c"));
        std::fs::write(&c, source).unwrap();
        let out = dir.path().join(name);
        let output = Command::new(&zig_cc)
            .arg(&c)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        (output, out)
    };
    let (ok, plain) = zig("plain", PLAIN);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let checked = Command::new(workspace().join("scripts/check-bootstrap.sh"))
        .arg(&plain)
        .output()
        .unwrap();
    assert!(checked.status.success());

    // The host's glibc has arc4random (2.36); the one zig links against (2.34) does not.
    if glibc_has_arc4random() {
        let (refused, _) = zig("newer", NEWER_GLIBC);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{said}");
        assert!(said.contains("arc4random"), "{said}");
    } else {
        eprintln!("this host's glibc is older than 2.36: the newer-glibc case cannot be made");
    }
}

//! Links the C libraries behind samael statically, so the `bootstrap` runs on Lambda's
//! `provided.al2023`, which has glibc 2.34 and no libxml2, libxmlsec1 or ICU.
//!
//! samael, libxml and openssl-sys ask for their libraries with plain `-lxml2`, `-lxmlsec1`,
//! `-lssl`, … and, with `PKG_CONFIG_ALL_STATIC=1` (`.cargo/config.toml`), pkg-config adds the
//! private dependencies (`-licuuc -licudata -lz -llzma -lxslt …`). The linker takes each
//! from the first folder on its search path that holds `libNAME.so` or `libNAME.a`. This
//! script makes a folder that holds only static archives under those names and puts it on
//! the search path ahead of the system's:
//!
//! - links to Debian's own archives (libxml2-dev, libxmlsec1-dev, libssl-dev, libicu-dev,
//!   zlib1g-dev, liblzma-dev) and to the compiler's `libstdc++.a` (ICU is C++);
//! - `libxslt.a`, built from `native/xslt_disabled.c`: Debian ships no static libxslt, and
//!   SAML never needs the XSLT transform, so every XSLT entry point libxmlsec1 uses fails;
//! - `libicudata.a`, built from `native/icu_stub_data.c`: an empty ICU data package instead
//!   of the 31 MB one (the algorithmic converters remain; see the C file).
//!
//! `scripts/build-lambda.sh` builds the same stack from Debian 12's sources against glibc 2.34
//! instead, on any host, and names it in `IDENTITY_XML_PREFIX` (below).
//!
//! glibc stays dynamic (libc, libm, libgcc_s, ld-linux). `tests/run.sh` checks the result on
//! every bootstrap: its `NEEDED` libraries and its newest `GLIBC_x.y` symbol version.
//!
//! The directives reach every binary that links this crate (the Lambda, `identity`, the
//! test binaries), so the tests run on the same libxml2/ICU build as the Lambda.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The archives linked from the system: (library name, pkg-config package that ships it).
const SYSTEM_ARCHIVES: &[(&str, &str)] = &[
    ("xmlsec1-openssl", "xmlsec1-openssl"),
    ("xmlsec1", "xmlsec1"),
    ("xml2", "libxml-2.0"),
    ("ssl", "libssl"),
    ("crypto", "libcrypto"),
    ("icui18n", "icu-i18n"),
    ("icuuc", "icu-uc"),
    ("z", "zlib"),
    ("lzma", "liblzma"),
];

/// Set by `scripts/build-lambda.sh`: the prefix of the XML stack it built for Lambda.
const XML_PREFIX_VAR: &str = "IDENTITY_XML_PREFIX";

const APT_HINT: &str = "apt-get install pkg-config libxmlsec1-dev libxml2-dev libssl-dev libicu-dev zlib1g-dev liblzma-dev (tests/run.sh does)";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=native/xslt_disabled.c");
    println!("cargo:rerun-if-changed=native/icu_stub_data.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_ALL_STATIC");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    println!("cargo:rerun-if-changed=native/dsig_verify.c");
    dsig_verify();

    println!("cargo:rerun-if-env-changed={XML_PREFIX_VAR}");
    if let Some(prefix) = env::var_os(XML_PREFIX_VAR) {
        link_lambda_stack(&prefix);
        return;
    }

    if !host_static_build() {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let dir = out.join("static-libs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the static library folder");

    system_archives(&dir);
    stub_archives(&dir);

    println!("cargo:rustc-link-search=native={}", dir.display());
    // Nothing else asks for the C++ runtime; it must follow ICU on the link line.
    println!("cargo:rustc-link-lib=stdc++");
}

/// scripts/build-lambda.sh: libxml2, libxmlsec1 and OpenSSL built from Debian 12's sources
/// against glibc 2.34, static only, without ICU, XSLT, zlib or liblzma. pkg-config
/// (PKG_CONFIG_LIBDIR) and openssl-sys (OPENSSL_DIR) find them there; the folder holds no
/// shared library, so every `-l` resolves to its archive.
fn link_lambda_stack(prefix: &std::ffi::OsStr) {
    let lib = Path::new(&prefix).join("lib");
    if !lib.join("libxmlsec1.a").is_file() {
        panic!(
            "{XML_PREFIX_VAR}={}: no lib/libxmlsec1.a there",
            lib.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", lib.display());
}

/// Whether this machine's static archives are to be linked (linux-gnu, for the host, with
/// `PKG_CONFIG_ALL_STATIC`); elsewhere the system's shared libraries serve local use.
fn host_static_build() -> bool {
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" {
        // Lambda is Linux/glibc; elsewhere (a developer's Mac) the system's shared
        // libraries are fine for local use.
        println!(
            "cargo:warning=sso-acs: linking libxmlsec1/libxml2 dynamically on {target_os}/{target_env}; \
             Lambda builds are linux-gnu"
        );
        return false;
    }
    let (target, host) = (env::var("TARGET").unwrap(), env::var("HOST").unwrap());
    if target != host {
        panic!(
            "sso-acs links this machine's static libxmlsec1/libxml2/OpenSSL/ICU archives, so it \
             builds only for the host ({host}), not {target}: build it with the host compiler \
             (its [package.metadata.lambda.build] says so) on a {target} machine"
        );
    }
    if env::var("PKG_CONFIG_ALL_STATIC").as_deref() != Ok("1") {
        panic!(
            "PKG_CONFIG_ALL_STATIC=1 is required (.cargo/config.toml sets it): without it pkg-config \
             leaves out the private dependencies of the static libraries (ICU, zlib, liblzma)"
        );
    }
    true
}

/// The system's static archives, each linked from `dir`, and the C++ runtime ICU needs.
fn system_archives(dir: &Path) {
    for (name, package) in SYSTEM_ARCHIVES {
        let libdir = pkg_config::get_variable(package, "libdir")
            .unwrap_or_else(|e| panic!("pkg-config does not know {package} ({e}); {APT_HINT}"));
        let archive = Path::new(&libdir).join(format!("lib{name}.a"));
        if !archive.is_file() {
            panic!("{} is missing; {APT_HINT}", archive.display());
        }
        link_into(dir, &archive, name);
    }

    // ICU is C++: its archives need the C++ runtime, linked statically as well.
    let compiler = cc::Build::new().get_compiler();
    let stdcpp = Command::new(compiler.path())
        .arg("-print-file-name=libstdc++.a")
        .output()
        .expect("run the C compiler");
    let stdcpp = PathBuf::from(String::from_utf8_lossy(&stdcpp.stdout).trim());
    if !stdcpp.is_absolute() || !stdcpp.is_file() {
        panic!(
            "libstdc++.a not found (the compiler answered {stdcpp:?}); apt-get install libstdc++-12-dev"
        );
    }
    link_into(dir, &stdcpp, "stdc++");
}

/// libxslt.a with XSLT disabled, and libicudata.a: the empty ICU data package.
fn stub_archives(dir: &Path) {
    // libxslt.a: XSLT disabled.
    let xslt = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libxslt")
        .unwrap_or_else(|e| {
            panic!("libxslt headers not found ({e}); apt-get install libxslt1-dev")
        });
    cc::Build::new()
        .file("native/xslt_disabled.c")
        .includes(&xslt.include_paths)
        .warnings_into_errors(true)
        .cargo_metadata(false)
        .out_dir(dir)
        .compile("xslt");

    // libicudata.a: the empty ICU data package, under the symbol this ICU looks for.
    let icu_version = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("icu-uc")
        .unwrap_or_else(|e| panic!("ICU not found ({e}); {APT_HINT}"))
        .version;
    let major = icu_version.split('.').next().unwrap_or_default();
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        panic!("unexpected ICU version {icu_version:?}");
    }
    cc::Build::new()
        .file("native/icu_stub_data.c")
        .define("ICU_DATA_SYMBOL", format!("icudt{major}_dat").as_str())
        .warnings_into_errors(true)
        .cargo_metadata(false)
        .out_dir(dir)
        .compile("icudata");
}

/// `native/dsig_verify.c` (XML-DSig verification with keys made once), compiled with
/// xmlsec1-openssl's own flags (its defines decide the layout of the structures it reads).
fn dsig_verify() {
    let xmlsec = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("xmlsec1-openssl")
        .unwrap_or_else(|e| panic!("xmlsec1-openssl not found ({e}); {APT_HINT}"));
    let mut build = cc::Build::new();
    build
        .file("native/dsig_verify.c")
        .includes(&xmlsec.include_paths)
        .warnings_into_errors(true);
    for (name, value) in &xmlsec.defines {
        build.define(name, value.as_deref());
    }
    build.compile("identity_dsig");
}

/// `dir/lib{name}.a` → `archive`.
fn link_into(dir: &Path, archive: &Path, name: &str) {
    let link = dir.join(format!("lib{name}.a"));
    std::os::unix::fs::symlink(archive, &link)
        .unwrap_or_else(|e| panic!("link {} → {}: {e}", link.display(), archive.display()));
    println!("cargo:rerun-if-changed={}", archive.display());
}

//! Finds or builds the Tachyon C library, and nothing else.
//!
//! Three ways, tried in this order:
//! 1. `TACHYON_LIB_DIR=/prefix/lib`: link the library installed there
//!    (`TACHYON_STATIC=1` for `libtachyon.a`, otherwise `libtachyon.so`);
//!    the header is taken from `TACHYON_INCLUDE_DIR`, or `/prefix/include`.
//! 2. `TACHYON_USE_PKG_CONFIG=1`: ask pkg-config for `tachyon`.
//! 3. Otherwise compile the C core of this repository (`../../../src/*.c`)
//!    with the `cc` crate and link it statically.
//!
//! It also compiles `csrc/layout_probe.c` against the same header: a tiny
//! static library that only the layout test links, so that the test compares
//! the Rust declarations with what the C compiler sees.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    for var in ["TACHYON_LIB_DIR", "TACHYON_INCLUDE_DIR", "TACHYON_STATIC", "TACHYON_USE_PKG_CONFIG"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/layout_probe.c");

    let include_dir = if let Ok(lib_dir) = env::var("TACHYON_LIB_DIR") {
        link_installed(Path::new(&lib_dir))
    } else if env::var("TACHYON_USE_PKG_CONFIG").is_ok_and(|v| v == "1") {
        link_with_pkg_config()
    } else {
        build_bundled()
    };
    // Dependents (and their build scripts) see it as DEP_TACHYON_INCLUDE.
    println!("cargo:include={}", include_dir.display());
    build_layout_probe(&include_dir);
}

fn link_installed(lib_dir: &Path) -> PathBuf {
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    let kind = if env::var("TACHYON_STATIC").is_ok_and(|v| v == "1") { "static" } else { "dylib" };
    println!("cargo:rustc-link-lib={kind}=tachyon");
    match env::var("TACHYON_INCLUDE_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => lib_dir.join("../include"),
    }
}

fn link_with_pkg_config() -> PathBuf {
    let lib = pkg_config::Config::new()
        .probe("tachyon")
        .unwrap_or_else(|e| panic!("TACHYON_USE_PKG_CONFIG=1 but pkg-config cannot find tachyon: {e}"));
    lib.include_paths.into_iter().next().unwrap_or_else(|| PathBuf::from("/usr/include"))
}

/// The repository root seen from this crate: bindings/rust/tachyon-sys/../../..
fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest.join("../../..")
}

fn build_bundled() -> PathBuf {
    let root = repo_root();
    let src = root.join("src");
    let include = root.join("include");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read the C sources in {}: {e}; set TACHYON_LIB_DIR or TACHYON_USE_PKG_CONFIG=1 \
                 to link an installed libtachyon",
                src.display()
            )
        })
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "c"))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no C sources found in {}", src.display());

    let mut build = cc::Build::new();
    build
        .files(&sources)
        .include(&include)
        .include(&src)
        .flag("-std=c11")
        .opt_level(2)
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter");
    build.compile("tachyon");

    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", include.display());
    for entry in std::fs::read_dir(&src).into_iter().flatten().flatten() {
        println!("cargo:rerun-if-changed={}", entry.path().display());
    }
    println!("cargo:rerun-if-changed={}", include.join("tachyon.h").display());
    include
}

fn build_layout_probe(include_dir: &Path) {
    cc::Build::new()
        .file("csrc/layout_probe.c")
        .include(include_dir)
        .flag("-std=c11")
        .compile("tachyon_sys_layout_probe");
}

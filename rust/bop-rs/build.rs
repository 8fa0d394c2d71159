//! Builds bop's C++ core (the repository two levels up) with CMake into
//! OUT_DIR and links its static library `libbop.a`.
//!
//! Only the `bop` library target is built: tests, benchmarks and examples of
//! the C++ project are switched off.  The core needs no libstdc++ at run time
//! (it is compiled without exceptions and RTTI and calls only libc), so the
//! Rust program links nothing but libbop.a and the libc it already uses.
//!
//! Cargo reruns this script only when the core's sources or CMake files
//! change; CMake's own dependency tracking then rebuilds what changed.
//! `BOP_RS_CHECKED=1` builds the checked core (double/invalid free detection).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| {
        panic!(
            "bop-rs: cannot run {:?} (is cmake installed?): {}",
            command, e
        )
    });
    if !status.success() {
        panic!("bop-rs: {:?} failed with {}", command, status);
    }
}

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let source = manifest.join("..").join("..");
    if !source.join("CMakeLists.txt").is_file() {
        panic!(
            "bop-rs: the C++ core was not found at {} (the crate lives in rust/bop-rs of the bop tree)",
            source.display()
        );
    }
    for input in ["CMakeLists.txt", "include", "src"] {
        println!("cargo:rerun-if-changed={}", source.join(input).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BOP_RS_CHECKED");
    let checked = env::var_os("BOP_RS_CHECKED").map_or(false, |v| v == "1");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let build: &Path = &out.join("bop-cmake");
    run(Command::new("cmake")
        .arg("-S")
        .arg(&source)
        .arg("-B")
        .arg(build)
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .arg("-DBOP_BUILD_TESTS=OFF")
        .arg("-DBOP_BUILD_BENCH=OFF")
        .arg("-DBOP_BUILD_EXAMPLES=OFF")
        .arg(format!(
            "-DBOP_CHECKED={}",
            if checked { "ON" } else { "OFF" }
        )));
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".to_string());
    run(Command::new("cmake")
        .arg("--build")
        .arg(build)
        .arg("--target")
        .arg("bop")
        .arg("-j")
        .arg(jobs));

    println!("cargo:rustc-link-search=native={}", build.display());
    println!("cargo:rustc-link-lib=static=bop");
}

//! What must not compile, with the reason pinned: a `compile_fail` doctest passes on any
//! error on stable Rust, so these check that each is refused for the reason its docs give.
//!
//! - `tests/ui/`: type errors, checked with trybuild against the `.stderr` beside each.
//! - `tests/build_fail/`: the no-capture check of `Process` and `Pool`, a constant evaluated
//!   once the function is known — after type checking, so `cargo check` (and trybuild,
//!   which uses it) cannot see it; each is built with `cargo build` in a scratch crate and
//!   must fail with the check's own message.
//!
//! They run on the host only: compile errors do not depend on the target, and a Windows
//! test binary under wine has no cargo to call.
#![cfg(unix)]

use std::path::Path;
use std::process::Command;

#[test]
fn type_errors_are_refused_for_their_reason() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

#[test]
fn a_capturing_closure_is_refused_by_the_no_capture_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = root.join("target/build-fail");
    let facade = root.join("crates/procs");
    for case in ["capturing_closure_process", "capturing_closure_pool"] {
        let dir = scratch.join(case);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [dependencies]\nprocs = {{ path = {:?} }}\n\n[workspace]\n",
                case.replace('_', "-"),
                facade
            ),
        )
        .unwrap();
        std::fs::copy(
            root.join("tests/build_fail").join(format!("{case}.rs")),
            dir.join("src/main.rs"),
        )
        .unwrap();
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", scratch.join("target"))
            // The workspace's lock file pins the same versions for the scratch crate.
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case} compiled");
        assert!(
            stderr.contains("error[E0080]")
                && stderr.contains("the function must not capture anything"),
            "{case} failed for another reason:\n{stderr}"
        );
    }
}

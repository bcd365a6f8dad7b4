//! What the tasks share: the workspace root, cargo, steps with headers, environment flags.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The error of a task: a message for the person who ran it.
pub(crate) type Error = Box<dyn std::error::Error>;

/// The result of a task.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// The workspace root, where the root `Cargo.toml` is.
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one folder below the workspace root")
}

/// The workspace's target folder: `CARGO_TARGET_DIR` when set, `target/` otherwise.
pub(crate) fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// A `cargo` command run from the workspace root, with the cargo that runs this xtask (so the
/// toolchain stays the same).
pub(crate) fn cargo() -> Command {
    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
    cargo.current_dir(root());
    cargo
}

/// Prints a header that stands out in a long log.
pub(crate) fn header(title: &str) {
    println!("\n==> {title}");
}

/// Runs `command` as one step of a task: prints it as a header, lets it print to the
/// terminal, and fails unless it succeeds.
pub(crate) fn step(command: &mut Command) -> Result<()> {
    let title = describe(command);
    header(&title);
    let start = Instant::now();
    let status = command
        .status()
        .map_err(|error| format!("`{title}` could not start: {error}"))?;
    if !status.success() {
        return Err(format!("`{title}` failed ({status})").into());
    }
    println!(
        "--- `{title}` passed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The command as one would type it: the environment it sets, the program's file name and
/// the arguments.
pub(crate) fn describe(command: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            ));
        }
    }
    let program = Path::new(command.get_program());
    words.push(
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned(),
    );
    words.extend(command.get_args().map(|arg| quote(&arg.to_string_lossy())));
    words.join(" ")
}

fn quote(word: &str) -> String {
    if word.is_empty() || word.contains(char::is_whitespace) {
        format!("'{word}'")
    } else {
        word.to_string()
    }
}

/// Whether the environment variable is set to a true value (`1`, `true`, `yes`).
pub(crate) fn env_flag(name: &str) -> bool {
    env::var(name).is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes"
        )
    })
}

/// Prints a loud `SKIPPED:` line for a leg of a task that cannot run here; under CI
/// (`CI=true`) the skip fails the task, unless `PROCS_ALLOW_SKIP=1` lets it pass.
pub(crate) fn skipped(leg: &str, why: &str) -> Result<()> {
    println!("SKIPPED: {leg}: {why}");
    if env_flag("CI") && !env_flag("PROCS_ALLOW_SKIP") {
        return Err(format!(
            "the {leg} leg was skipped under CI ({why}); run it where it can run (install \
             what it names), or set PROCS_ALLOW_SKIP=1 to let the run pass without it"
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_shows_the_command_as_typed() {
        let mut command = Command::new("/usr/bin/cargo");
        command
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace"]);
        assert_eq!(
            describe(&command),
            "RUSTDOCFLAGS='-D warnings' cargo doc --workspace"
        );
    }

    #[test]
    fn root_holds_the_workspace_manifest() {
        assert!(root().join("Cargo.toml").is_file());
        assert!(root().join("xtask").is_dir());
    }
}

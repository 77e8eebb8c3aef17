//! Helpers that the CLI test files share.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use assert_cmd::Command;

/// The `harden` binary of this build.
pub fn harden() -> Command {
    Command::cargo_bin("harden").unwrap()
}

/// Runs `cmd` and asserts that it fails the way every user mistake must: exit code 2, exactly
/// one `error:` line on standard error, containing `needle`, and no panic.
///
/// # Panics
///
/// When any of that does not hold (the message shows the arguments and standard error).
pub fn assert_user_error(cmd: &mut Command, needle: &str) {
    let assert = cmd.assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    // Vulkan's loader may warn about XDG_RUNTIME_DIR on machines without a session.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error:") && !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(errors.len(), 1, "{cmd:?}: {stderr}");
    assert!(errors[0].contains(needle), "{cmd:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{cmd:?}: {stderr}");
}

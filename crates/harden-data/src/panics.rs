//! Containing a panic of a library harden calls, so that bad input it cannot reject first
//! becomes an error instead of a crash.

/// Runs `f`, returning the first line of its panic message if it panics, without printing
/// the panic (the caller reports the failure as an error).
///
/// The panic hook is process-wide: it is silenced while `f` runs, so a panic on another
/// thread in that time is not printed either.
///
/// # Errors
///
/// The panic's message (`"panicked"` when it carries none).
pub fn catch_quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".to_string());
        text.lines().next().unwrap_or_default().to_string()
    })
}

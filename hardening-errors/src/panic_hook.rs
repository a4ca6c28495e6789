//! A panic hook that prints what std's default one prints, with the message's secrets
//! redacted: the default hook writes a panic's text to stderr before any `catch_unwind` sees
//! it, so a handler's `panic!("… {database_url}")` would reach the logs as it is.

use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::Once;

use crate::redact::redact_secrets;

/// Replaces the process's panic hook with one that prints the panic like std's default hook
/// (thread, location, message, and a backtrace when `RUST_BACKTRACE` asks for one) with the
/// message passed through [`redact_secrets`](crate::redact_secrets). Once per process; later
/// calls do nothing. `hardening_core::serve` and `hardening_core::init_json_logs` call it. A
/// hook set after it replaces it (`std::panic::set_hook`): that is how to loosen it.
///
/// ```
/// hardening_errors::redact_panic_messages();
/// let caught = std::panic::catch_unwind(|| panic!("connect postgres://app:hunter2@db failed"));
/// assert!(caught.is_err()); // stderr said "connect postgres://app:[redacted]@db failed"
/// ```
pub fn redact_panic_messages() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| std::panic::set_hook(Box::new(print_redacted)));
}

fn print_redacted(info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let location = info.location().map_or_else(String::new, |l| {
        format!(" at {}:{}:{}", l.file(), l.line(), l.column())
    });
    let backtrace = std::backtrace::Backtrace::capture();
    let mut text = format!(
        "thread '{name}' panicked{location}:\n{}\n",
        redact_secrets(message)
    );
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
    }
    // One write, as the default hook does; nothing to do if stderr is gone.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    /// Runs this test's body in a child process (the hook is process-wide): the child panics
    /// with a secret under the hook, the parent reads its stderr.
    #[test]
    fn a_panics_secret_does_not_reach_stderr() {
        if std::env::var_os("HARDENING_PANIC_HOOK_CHILD").is_some() {
            super::redact_panic_messages();
            let password = "hunter2";
            let _ = std::panic::catch_unwind(|| {
                panic!("query failed on postgres://app:{password}@db-7/users; password={password}")
            });
            // Prose: only the token's shape gives it away.
            let token = "ghp_hunter2hunter2hunter2hunter2hunter2x";
            let _ = std::panic::catch_unwind(|| panic!("GitHub refused {token} again"));
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "panic_hook::tests::a_panics_secret_does_not_reach_stderr",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HARDENING_PANIC_HOOK_CHILD", "1")
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains(
                "query failed on postgres://app:[redacted]@db-7/users; password=[redacted]"
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains("GitHub refused ghp_[redacted] again"),
            "{stderr}"
        );
        assert!(stderr.contains("panicked at "), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

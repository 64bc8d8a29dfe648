//! Running user programs (external codecs and analyses) through `sh -c`, with a timeout.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often a running program is polled for its exit.
const POLL: Duration = Duration::from_millis(5);

/// Runs `line` through `sh -c` in the working directory, its stdout to the file `stdout` (else
/// discarded) and its stderr to a file in `scratch`; kills it after `timeout`. Errors name the
/// program as `shown` (the user's command template) with the exit status and the last line of
/// stderr, or the timeout.
pub fn run(
    line: &str,
    shown: &str,
    timeout: Duration,
    stdout: Option<&Path>,
    scratch: &Path,
) -> Result<(), String> {
    let stderr_path = scratch.join("stderr");
    let file = |path: &Path| fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()));
    let mut child = Command::new("sh")
        .args(["-c", line])
        .stdin(Stdio::null())
        .stdout(match stdout {
            Some(path) => Stdio::from(file(path)?),
            None => Stdio::null(),
        })
        .stderr(file(&stderr_path)?)
        .spawn()
        .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{shown}` timed out after {} s and was killed",
                    timeout.as_secs_f64()
                ));
            }
            None => std::thread::sleep(POLL),
        }
    };
    if status.success() {
        return Ok(());
    }
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("`{shown}` failed ({status}): {last}"))
}

/// `path` in single quotes for `sh`.
pub fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

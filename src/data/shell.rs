//! Running user programs (external codecs and analyses) through `sh -c`, with a timeout, and
//! shell-quoting the words photonqa writes into command lines and batch scripts.
//!
//! Each program runs in a process group of its own, and everything in that group is killed
//! (SIGKILL) when the program ends, when it times out, when its caller returns early (error or
//! panic: a guard kills it on drop) and when photonqa is stopped by SIGINT, SIGTERM or SIGHUP
//! (Ctrl-C, `scancel`): a handler kills the live groups, then photonqa dies of the signal as it
//! would have. So a `sleep 27 ; cp {input} {output}` past its timeout leaves no `sleep` behind.
//!
//! SIGKILL of photonqa itself cannot be caught: on Linux each program's shell is started with
//! the parent-death signal SIGKILL (`PR_SET_PDEATHSIG`), so the shell dies with photonqa, but
//! the processes it started (`sleep` above) live on until they end by themselves (on a Slurm
//! cluster, the job's cgroup ends them with the job).

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// How often a running program is polled for its exit.
const POLL: Duration = Duration::from_millis(5);

/// The process groups of the programs running now (0: a free slot), for the signal handler,
/// which may only read atomics. More programs than slots at once is refused: one per thread
/// runs at a time.
static LIVE: [AtomicI32; 1024] = [const { AtomicI32::new(0) }; 1024];

/// Runs `line` through `sh -c` in the working directory, its stdout to the file `stdout` (else
/// discarded) and its stderr to a file in `scratch`; kills its process group after `timeout`.
/// Errors name the program as `shown` (the user's command template) with the exit status and
/// the last line of stderr, or the timeout.
pub fn run(
    line: &str,
    shown: &str,
    timeout: Duration,
    stdout: Option<&Path>,
    scratch: &Path,
) -> Result<(), String> {
    let stderr_path = scratch.join("stderr");
    let file = |path: &Path| fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()));
    let mut command = Command::new("sh");
    command
        .args(["-c", line])
        .stdin(Stdio::null())
        .stdout(match stdout {
            Some(path) => Stdio::from(file(path)?),
            None => Stdio::null(),
        })
        .stderr(file(&stderr_path)?);
    let mut group =
        Group::spawn(&mut command).map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    let start = Instant::now();
    while !group.exited().map_err(|e| e.to_string())? {
        if start.elapsed() > timeout {
            let _ = group.end();
            return Err(format!(
                "`{shown}` timed out after {} s and was killed",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(POLL);
    }
    let status = group.end().map_err(|e| e.to_string())?;
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

/// A program running as the leader of its own process group, registered in [`LIVE`]; the
/// whole group is killed when it ends or is dropped.
struct Group {
    child: Child,
    /// Its slot in [`LIVE`] until the group is killed.
    slot: Option<&'static AtomicI32>,
}

impl Group {
    /// Starts `command` as the leader of a new process group (its id is the leader's pid).
    fn spawn(command: &mut Command) -> io::Result<Group> {
        static HANDLERS: Once = Once::new();
        HANDLERS.call_once(install_signal_handlers);
        command.process_group(0);
        #[cfg(target_os = "linux")]
        {
            let parent = std::process::id() as libc::pid_t;
            // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the
            // parent, as a closure run between fork and exec must.
            unsafe {
                command.pre_exec(move || {
                    // Sent when the spawning thread ends; each caller waits for its program,
                    // so that happens only when photonqa dies first.
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // photonqa died before the line above: do not run orphaned.
                    if libc::getppid() != parent {
                        return Err(io::Error::other("photonqa exited"));
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn()?;
        let id = child.id() as i32;
        let mut group = Group { child, slot: None };
        group.slot = LIVE.iter().find(|slot| {
            slot.compare_exchange(0, id, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        if group.slot.is_none() {
            let _ = group.end();
            return Err(io::Error::other(format!(
                "more than {} programs at once",
                LIVE.len()
            )));
        }
        Ok(group)
    }

    /// Whether the leader has exited, without reaping it: while it is a zombie its pid names
    /// the group and no other process can take it.
    fn exited(&self) -> io::Result<bool> {
        // SAFETY: waitid writes only into `info`, a zeroed siginfo_t it owns.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        if unsafe { libc::waitid(libc::P_PID, self.child.id(), &mut info, flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: filled by waitid above (0 while the leader runs, WNOHANG).
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// Kills every process of the group, then reaps the leader: its exit status (a signal if
    /// it was still running). Calling it again returns the same status.
    fn end(&mut self) -> io::Result<ExitStatus> {
        if let Some(slot) = self.slot.take() {
            kill_group(self.child.id() as i32);
            slot.store(0, Ordering::SeqCst);
        }
        self.child.wait()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// SIGKILL to every process of group `group` (a program's, never photonqa's own: > 1).
fn kill_group(group: i32) {
    if group > 1 {
        // SAFETY: kill is async-signal-safe; a group that is gone only gives ESRCH.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// Kills the live programs' groups on SIGINT, SIGTERM and SIGHUP, then lets the signal end
/// photonqa as it would have (a signal photonqa ignores, as `nohup` sets up, stays ignored).
fn install_signal_handlers() {
    extern "C" fn on_signal(signal: libc::c_int) {
        for slot in &LIVE {
            kill_group(slot.load(Ordering::SeqCst));
        }
        // SAFETY: signal and raise are async-signal-safe; the signal is blocked in its
        // handler, so it is delivered, with the default action, when the handler returns.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction with a handler that uses only async-signal-safe calls; `old` and
        // `action` are zeroed structs owned here.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// `text` as one word for `sh` and `bash`: in single quotes, each `'` written `'\''`. Nothing
/// in it is expanded, a newline included.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `path` as one word for `sh` (see [`quote`]).
pub fn quoted(path: &Path) -> String {
    quote(&path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_reach_the_program_unchanged() {
        let hostile = "a b'c\"d$(echo x)`echo y`\n;e\\";
        let output = Command::new("sh")
            .args(["-c", &format!("printf %s {}", quote(hostile))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), hostile);
        assert_eq!(quoted(Path::new("/a/it's")), r"'/a/it'\''s'");
    }
}

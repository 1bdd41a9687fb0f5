//! `launch`: start a program under latch, its output in the debug console or its own
//! terminal (DAP's `runInTerminal`), stopped before its first instruction until
//! configuration is done; and the stop at its entry point or at `main` if asked.
//!
//! The program is started by the ptrace thread (`ptrace/launch.rs`) and seized before its
//! exec, so breakpoints set during configuration are in before any of its code runs. From
//! the exec stop on, it is a process like an attached one: announced, configured, and
//! answered in `attach.rs`'s `finish_attach_if_ready`.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::{Phase, Session};
use crate::dap::{ConsoleKind, LaunchArguments, Request, Response};
use crate::ptrace::launch::{ForkSpec, Start};
use crate::ptrace::AttachReport;

/// How long the editor's terminal may take to start `latch run-in-terminal`.
const TERMINAL_DEADLINE: Duration = Duration::from_secs(30);

/// How long the end of a launched program waits for the rest of its output.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Where a launched program stops before running on its own, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EntryStop {
    /// The program's entry point (ELF `AT_ENTRY`): libraries loaded, nothing of it run.
    Entry,
    /// The first line of `main`.
    Main,
}

/// What the session keeps of a program it launched.
#[derive(Default)]
pub(super) struct Launched {
    /// Done when the readers of its stdout and stderr reach end of file.
    output_done: Vec<tokio::sync::oneshot::Receiver<()>>,
    /// The program is a script (`#!`): its first image is the interpreter, which the
    /// stop at entry or main skips.
    pub(super) script: bool,
}

/// A launch waiting for the editor's terminal to start the program.
pub(super) struct TerminalLaunch {
    pub(super) request_seq: i64,
    pub(super) entry: Option<EntryStop>,
    pub(super) result: tokio::sync::oneshot::Receiver<Result<AttachReport, String>>,
    pub(super) task: tokio::task::JoinHandle<()>,
    pub(super) script: bool,
}

/// The program, its arguments and environment, checked and made ready for execve.
struct Prepared {
    program: PathBuf,
    argv: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    cwd: Option<PathBuf>,
}

impl Session {
    pub(super) async fn launch(&mut self, request: &Request) {
        let Some(args) = self.arguments::<LaunchArguments>(request) else {
            return;
        };
        if let Some(target) = &self.target {
            let text = format!(
                "already debugging pid {}; one latch session debugs one process",
                target.pid
            );
            return self.fail(request, "already attached", &text);
        }
        self.go.configure(args.goroutines, args.max_goroutines);
        if let Some(bytes) = args.max_string_length {
            self.symbols
                .set_max_string(usize::try_from(bytes.clamp(1, 1 << 20)).unwrap_or(1 << 20));
        }
        if self.pending_attach.is_some() || self.waiting.is_some() || self.terminal.is_some() {
            return self.fail(
                request,
                "already attached",
                "an attach or launch is already in progress; one latch session debugs one process",
            );
        }
        let prepared = match prepare(&args) {
            Ok(prepared) => prepared,
            Err(text) => return self.fail(request, "invalid program", &text),
        };
        let entry = if args.stop_at_main.unwrap_or(false) {
            Some(EntryStop::Main)
        } else if args.stop_on_entry.unwrap_or(false) {
            Some(EntryStop::Entry)
        } else {
            None
        };
        let script = is_script(&prepared.program);
        self.backend
            .follow_forks(args.follow_forks.unwrap_or(false))
            .await;
        let console = args.console.unwrap_or(ConsoleKind::InternalConsole);
        if console != ConsoleKind::InternalConsole {
            if self.client_runs_terminals {
                return self.launch_in_terminal(request, &args, prepared, console, entry, script);
            }
            self.out.output(
                "console",
                "latch: this editor cannot open a terminal for the program (it does not support \
                 DAP's runInTerminal): its output comes here, and its input is empty",
            );
        }
        let pipes = match OutputPipes::new() {
            Ok(pipes) => pipes,
            Err(err) => {
                let text = format!("could not make pipes for the program's output: {err}");
                return self.fail(request, "launch failed", &text);
            }
        };
        let spec = match fork_spec(&prepared, args.disable_aslr.unwrap_or(false), pipes.child) {
            Ok(spec) => spec,
            Err(text) => return self.fail(request, "invalid arguments", &text),
        };
        match self.backend.launch(Start::Fork(spec)).await {
            Ok(report) => {
                let output_done = vec![
                    forward_output(pipes.stdout, "stdout", self.out.clone()),
                    forward_output(pipes.stderr, "stderr", self.out.clone()),
                ];
                self.launched = Some(Launched {
                    output_done,
                    script,
                });
                self.started(request.seq, report, entry).await;
            }
            Err(err) => self.fail(request, "launch failed", &err.to_string()),
        }
    }

    /// The program is stopped at its exec: announce it and wait for configuration.
    async fn started(&mut self, request_seq: i64, report: AttachReport, entry: Option<EntryStop>) {
        self.phase = Phase::Attached;
        self.program = None;
        self.announce_attached(&report, true);
        self.send_initialized();
        self.pending_attach = Some(super::PendingAttach {
            request_seq,
            command: "launch",
            stop_on_entry: false,
            entry,
            report: Some(report),
        });
        self.finish_attach_if_ready().await;
    }

    /// `console: integratedTerminal | externalTerminal`: the editor runs
    /// `latch run-in-terminal`, which connects back, waits to be seized, and execs the
    /// program (see `crate::terminal`).
    fn launch_in_terminal(
        &mut self,
        request: &Request,
        args: &LaunchArguments,
        prepared: Prepared,
        console: ConsoleKind,
        entry: Option<EntryStop>,
        script: bool,
    ) {
        let socket = match crate::children::private_socket_path("terminal") {
            Ok(path) => path,
            Err(err) => {
                let text = format!("could not make a socket for the terminal: {err}");
                return self.fail(request, "launch failed", &text);
            }
        };
        let listener = match tokio::net::UnixListener::bind(&socket) {
            Ok(listener) => listener,
            Err(err) => {
                let text = format!("could not listen on {}: {err}", socket.display());
                return self.fail(request, "launch failed", &text);
            }
        };
        let latch = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("latch"));
        let mut command = vec![
            latch.to_string_lossy().into_owned(),
            "run-in-terminal".to_string(),
            "--socket".to_string(),
            socket.to_string_lossy().into_owned(),
            "--debugger".to_string(),
            std::process::id().to_string(),
        ];
        if args.disable_aslr.unwrap_or(false) {
            command.push("--disable-aslr".into());
        }
        command.push("--".into());
        command.extend(prepared.argv.iter().enumerate().map(|(i, arg)| match i {
            0 => prepared.program.to_string_lossy().into_owned(),
            _ => arg.to_string_lossy().into_owned(),
        }));
        let env: serde_json::Map<String, serde_json::Value> = args
            .env
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        let cwd = prepared
            .cwd
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let kind = match console {
            ConsoleKind::ExternalTerminal => "external",
            _ => "integrated",
        };
        let name = prepared
            .program
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        self.out.request(
            "runInTerminal",
            json!({
                "kind": kind,
                "title": format!("latch: {name}"),
                "cwd": cwd,
                "args": command,
                "env": env,
                "argsCanBeInterpretedByShell": false,
            }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let backend = self.backend.clone();
        let task = tokio::spawn(async move {
            let result = adopt_from_terminal(listener, &socket, backend).await;
            let _ = std::fs::remove_file(&socket);
            let _ = tx.send(result);
        });
        self.phase = Phase::Attached;
        self.terminal = Some(TerminalLaunch {
            request_seq: request.seq,
            entry,
            result: rx,
            task,
            script,
        });
    }

    /// The terminal's program was seized (or could not be).
    pub(super) async fn on_terminal_outcome(&mut self, outcome: Result<AttachReport, String>) {
        let Some(terminal) = self.terminal.take() else {
            return;
        };
        match outcome {
            Ok(report) => {
                self.launched = Some(Launched {
                    output_done: Vec::new(),
                    script: terminal.script,
                });
                self.started(terminal.request_seq, report, terminal.entry)
                    .await;
            }
            Err(text) => {
                self.phase = Phase::Initialized;
                self.out.respond(Response::error(
                    terminal.request_seq,
                    "launch",
                    "launch failed",
                    &text,
                ));
            }
        }
    }

    /// The editor answered `runInTerminal`; only a refusal matters (success is seen
    /// when the program connects).
    pub(super) fn on_run_in_terminal_response(&mut self, response: &crate::dap::ClientResponse) {
        if response.success {
            return;
        }
        let Some(terminal) = self.terminal.take() else {
            return;
        };
        terminal.task.abort();
        self.phase = Phase::Initialized;
        let why = response.message.clone().unwrap_or_default();
        let text = format!(
            "the editor could not run the program in a terminal ({why}); use \
             \"console\": \"internalConsole\" to see its output in the debug console"
        );
        self.out.respond(Response::error(
            terminal.request_seq,
            "launch",
            "launch failed",
            &text,
        ));
    }

    /// Called once the launch is answered: runs the program to its entry point or
    /// `main` when asked, else lets it run. Returns false if nothing was armed (the
    /// caller lets the program run).
    pub(super) async fn arm_entry_stop(&mut self, tid: crate::procfs::Pid) -> bool {
        let Some(entry) = self.entry_stop else {
            return false;
        };
        let script_image = self.launched.as_ref().is_some_and(|l| l.script);
        if script_image {
            // The interpreter runs first; the stop is in the program it execs.
            if let Some(launched) = self.launched.as_mut() {
                launched.script = false;
            }
            return false;
        }
        let pid = self.target.as_ref().map_or(tid, |t| t.pid);
        let address = match entry {
            EntryStop::Entry => entry_point(pid),
            EntryStop::Main => self.main_address(pid).await,
        };
        let Some(address) = address else {
            // `main` is not in this program (a stripped binary): the stop waits for the
            // program's next exec, if any.
            let name = self.target.as_ref().map_or("the program", |t| &t.name);
            self.out.output(
                "console",
                &format!(
                    "latch: found no `main` in {name} (no symbols?): it runs; stopAtMain                      waits for a program it may start with exec"
                ),
            );
            return false;
        };
        match self.backend.run_to(tid, address, 0, false, None).await {
            Ok(()) => {
                self.entry_armed = true;
                true
            }
            Err(err) => {
                self.out.output(
                    "console",
                    &format!("latch: could not stop at the program's start: {err}"),
                );
                self.entry_stop = None;
                false
            }
        }
    }

    async fn main_address(&self, pid: crate::procfs::Pid) -> Option<u64> {
        let go = crate::symbols::gopclntab::is_go_program(pid);
        let name = if go { "main.main" } else { "main" };
        let found = self.symbols.resolve_function(name.to_string()).await.ok()?;
        // A Rust program has two: the C `main` the compiler writes, which starts the
        // runtime, and the crate's `main`, which is the user's.
        found
            .iter()
            .find(|f| f.name.ends_with("::main"))
            .or_else(|| found.iter().find(|f| f.name == name))
            .or(found.first())
            .map(|f| f.address)
    }

    /// A stop of the run to the entry point or `main`.
    pub(super) async fn report_entry_stop(&mut self, tid: crate::procfs::Pid, entry: EntryStop) {
        if let Some(target) = self.target.as_mut() {
            target.stopped = true;
        }
        self.symbols.refresh();
        self.announce_modules();
        let description = match entry {
            EntryStop::Entry => "Paused at the program's entry point",
            EntryStop::Main => "Paused at main",
        };
        self.report_stop(tid, "entry", description).await;
    }

    /// Waits (a little) for the rest of a launched program's output, so that it comes
    /// before the `exited` event, as it was written.
    pub(super) async fn drain_program_output(&mut self) {
        let Some(launched) = self.launched.as_mut() else {
            return;
        };
        let pending = std::mem::take(&mut launched.output_done);
        let all = futures_join_all(pending);
        let _ = tokio::time::timeout(OUTPUT_GRACE, all).await;
    }
}

async fn futures_join_all(receivers: Vec<tokio::sync::oneshot::Receiver<()>>) {
    for receiver in receivers {
        let _ = receiver.await;
    }
}

/// Accepts the connection of `latch run-in-terminal`, and seizes it.
async fn adopt_from_terminal(
    listener: tokio::net::UnixListener,
    socket: &Path,
    backend: crate::ptrace::BackendHandle,
) -> Result<AttachReport, String> {
    let accepted = tokio::time::timeout(TERMINAL_DEADLINE, listener.accept()).await;
    let stream = match accepted {
        Ok(Ok((stream, _))) => stream,
        Ok(Err(err)) => return Err(format!("waiting for the terminal failed: {err}")),
        Err(_) => {
            return Err(format!(
                "the editor's terminal did not start the program within {}s (nothing \
                 connected to {})",
                TERMINAL_DEADLINE.as_secs(),
                socket.display()
            ))
        }
    };
    let pid = stream
        .peer_cred()
        .ok()
        .and_then(|cred| cred.pid())
        .ok_or_else(|| "could not tell which process the terminal started".to_string())?;
    let stream = stream
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|()| s))
        .map_err(|err| format!("the terminal's connection: {err}"))?;
    backend
        .launch(Start::Adopt { pid, go: stream })
        .await
        .map_err(|err| err.to_string())
}

/// The child's ends of its stdio, and the reading ends of stdout and stderr.
struct OutputPipes {
    child: [OwnedFd; 3],
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl OutputPipes {
    fn new() -> std::io::Result<OutputPipes> {
        let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
        let (stdout, stdout_child) = nix::unistd::pipe2(cloexec)?;
        let (stderr, stderr_child) = nix::unistd::pipe2(cloexec)?;
        let stdin: OwnedFd = std::fs::File::open("/dev/null")?.into();
        Ok(OutputPipes {
            child: [stdin, stdout_child, stderr_child],
            stdout,
            stderr,
        })
    }
}

/// Reads a pipe of the program on a thread of its own and sends what comes as `output`
/// events; the receiver completes at end of file.
fn forward_output(
    pipe: OwnedFd,
    category: &'static str,
    out: crate::transport::Outbox,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("latch-{category}"))
        .spawn(move || {
            let mut pipe = std::fs::File::from(pipe);
            let mut buf = vec![0u8; 64 * 1024];
            let mut text = Utf8Chunks::default();
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = text.push(&buf[..n]);
                if !chunk.is_empty() {
                    out.event("output", json!({ "category": category, "output": chunk }));
                }
            }
            let rest = text.finish();
            if !rest.is_empty() {
                out.event("output", json!({ "category": category, "output": rest }));
            }
            let _ = done.send(());
        });
    if let Err(err) = spawned {
        tracing::warn!("could not start the reader of the program's {category}: {err}");
    }
    finished
}

/// Bytes to text, keeping a UTF-8 sequence that a read split in two for the next read.
#[derive(Default)]
struct Utf8Chunks {
    held: Vec<u8>,
}

impl Utf8Chunks {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.held.extend_from_slice(bytes);
        let keep = incomplete_tail(&self.held);
        let complete = self.held.len() - keep;
        let text = String::from_utf8_lossy(&self.held[..complete]).into_owned();
        self.held.drain(..complete);
        text
    }

    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.held).into_owned();
        self.held.clear();
        text
    }
}

/// How many bytes at the end of `bytes` start a UTF-8 sequence that is not complete yet.
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=3.min(bytes.len()) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match byte {
            b if b & 0xE0 == 0xC0 => 2,
            b if b & 0xF0 == 0xE0 => 3,
            b if b & 0xF8 == 0xF0 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// Checks the arguments against the file system: a clear error for each way they are
/// wrong, before anything is started.
fn prepare(args: &LaunchArguments) -> Result<Prepared, String> {
    if args.program.is_empty() {
        return Err("`launch` needs `program`: the path of the executable to start".into());
    }
    let cwd = args.cwd.as_ref().map(PathBuf::from);
    if let Some(cwd) = &cwd {
        match std::fs::metadata(cwd) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(format!("`cwd` {} is not a directory", cwd.display())),
            Err(err) => return Err(format!("`cwd` {}: {err}", cwd.display())),
        }
    }
    let given = PathBuf::from(&args.program);
    let program = match (&cwd, given.is_absolute()) {
        (_, true) => given.clone(),
        (Some(cwd), false) => cwd.join(&given),
        (None, false) => std::env::current_dir()
            .map(|dir| dir.join(&given))
            .unwrap_or_else(|_| given.clone()),
    };
    let meta = std::fs::metadata(&program).map_err(|err| {
        format!(
            "cannot start `program` {}: {err}. Give the path of an executable file (relative \
             paths are taken from `cwd`)",
            program.display()
        )
    })?;
    if !meta.is_file() {
        return Err(format!(
            "`program` {} is not a file; give the path of an executable file",
            program.display()
        ));
    }
    let path = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| "`program` contains a NUL byte".to_string())?;
    // SAFETY: access(2) with a valid C string.
    if unsafe { libc::access(path.as_ptr(), libc::X_OK) } != 0 {
        return Err(format!(
            "`program` {} is not executable (no execute permission): `chmod +x` it, or \
             check the path",
            program.display()
        ));
    }
    let argv = std::iter::once(given.into_os_string())
        .chain(args.args.iter().map(OsString::from))
        .collect();
    Ok(Prepared {
        program,
        argv,
        env: environment(&args.env),
        cwd,
    })
}

/// latch's environment without latch's own variables, with the user's over it.
fn environment(user: &BTreeMap<String, Option<String>>) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os()
        .filter(|(name, _)| !name.as_bytes().starts_with(b"LATCH_"))
        .collect();
    for (name, value) in user {
        match value {
            Some(value) => env.insert(name.into(), value.into()),
            None => env.remove(&OsString::from(name)),
        };
    }
    env
}

fn fork_spec(
    prepared: &Prepared,
    disable_aslr: bool,
    stdio: [OwnedFd; 3],
) -> Result<ForkSpec, String> {
    let c = |bytes: Vec<u8>, what: &str| {
        CString::new(bytes).map_err(|_| format!("{what} contains a NUL byte"))
    };
    let argv = prepared
        .argv
        .iter()
        .map(|a| c(a.clone().into_vec(), "an argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = prepared
        .env
        .iter()
        .map(|(name, value)| {
            let mut entry = name.clone().into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            c(entry, "an environment variable")
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ForkSpec {
        program: c(
            prepared.program.as_os_str().as_bytes().to_vec(),
            "`program`",
        )?,
        argv,
        envp,
        cwd: prepared
            .cwd
            .as_ref()
            .map(|cwd| c(cwd.as_os_str().as_bytes().to_vec(), "`cwd`"))
            .transpose()?,
        stdio,
        disable_aslr,
    })
}

fn is_script(program: &Path) -> bool {
    let mut start = [0u8; 2];
    std::fs::File::open(program)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| &start == b"#!")
}

/// The entry point of the program `pid` runs (`AT_ENTRY` in its auxiliary vector).
fn entry_point(pid: crate::procfs::Pid) -> Option<u64> {
    const AT_ENTRY: u64 = 9;
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).ok()?;
    auxv.chunks_exact(16).find_map(|pair| {
        let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
        let value = u64::from_ne_bytes(pair[8..].try_into().ok()?);
        (key == AT_ENTRY).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_utf8_sequence_waits_for_its_end() {
        let mut text = Utf8Chunks::default();
        let bytes = "né→".as_bytes();
        assert_eq!(text.push(&bytes[..2]), "n");
        assert_eq!(text.push(&bytes[2..4]), "é");
        assert_eq!(text.push(&bytes[4..]), "→");
        assert_eq!(text.finish(), "");
    }

    #[test]
    fn invalid_bytes_are_shown_replaced() {
        let mut text = Utf8Chunks::default();
        assert_eq!(text.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(text.push(b"\xe2\x86"), "");
        assert_eq!(text.finish(), "\u{fffd}");
    }

    #[test]
    fn the_environment_drops_latchs_variables_and_takes_the_users() {
        std::env::set_var("LATCH_SOMETHING_FOR_THIS_TEST", "1");
        let mut user = BTreeMap::new();
        user.insert("LATCH_TEST_USER_SET".to_string(), Some("yes".to_string()));
        user.insert("PATH".to_string(), None);
        let env = environment(&user);
        assert!(!env.contains_key(&OsString::from("LATCH_SOMETHING_FOR_THIS_TEST")));
        assert_eq!(
            env.get(&OsString::from("LATCH_TEST_USER_SET")),
            Some(&OsString::from("yes"))
        );
        assert!(!env.contains_key(&OsString::from("PATH")));
    }

    #[test]
    fn bad_programs_are_refused_with_the_reason() {
        let args = |program: &str| LaunchArguments {
            program: program.into(),
            ..Default::default()
        };
        let missing = prepare(&args("/nonexistent/program")).err().unwrap();
        assert!(missing.contains("No such file"), "{missing}");
        let dir = prepare(&args("/tmp")).err().unwrap();
        assert!(dir.contains("not a file"), "{dir}");
        let empty = prepare(&args("")).err().unwrap();
        assert!(empty.contains("needs `program`"), "{empty}");
        let plain = std::env::temp_dir().join(format!("latch-plain-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        let not_executable = prepare(&args(plain.to_str().unwrap())).err();
        std::fs::remove_file(&plain).unwrap();
        let not_executable = not_executable.unwrap();
        assert!(
            not_executable.contains("not executable"),
            "{not_executable}"
        );
        let bad_cwd = prepare(&LaunchArguments {
            program: "/bin/true".into(),
            cwd: Some("/nonexistent".into()),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(bad_cwd.contains("`cwd`"), "{bad_cwd}");
    }
}

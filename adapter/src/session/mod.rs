//! The DAP state machine. It runs on a single-threaded tokio runtime, never blocks, and
//! `select!`s over client messages, backend events, a waitFor in progress and latch's
//! own termination signals. Request families live in their own files.

mod attach;
mod breakpoints;
mod evaluate;
mod execution;
mod forks;
mod goroutines;
mod launch;
mod lifecycle;
mod memory;
mod stacks;
mod stepping;
mod threads;

/// How long `thread` events are held back and coalesced while the target runs.
pub use lifecycle::signal_name;
pub use threads::WINDOW as THREAD_EVENT_WINDOW;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::dap::{InitializeArguments, Request, Response};
use crate::procfs::Pid;
use crate::ptrace::{AttachReport, BackendEvent, BackendHandle};
use crate::symbols::SymbolService;
use crate::transport::{Incoming, Outbox};
use crate::waitfor::Canceller;

/// How long latch stays after `disconnect` for a client that has more to say.
const LINGER_AFTER_DISCONNECT: std::time::Duration = std::time::Duration::from_millis(500);

/// Where the session is in the DAP lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before `initialize`.
    New,
    /// After `initialize`, before a successful `attach`.
    Initialized,
    /// Attached (or waiting for a process).
    Attached,
    /// The client disconnected or went away: the loop ends.
    Ended,
}

/// The attached process as the session sees it.
struct Target {
    pid: Pid,
    main_tid: Pid,
    name: String,
    stopped: bool,
    exited: bool,
}

/// An attach request whose response waits for `configurationDone` (or for its process).
struct PendingAttach {
    request_seq: i64,
    /// `attach` or `launch`: the request to answer.
    command: &'static str,
    stop_on_entry: bool,
    /// A launch's stop at its entry point or `main`.
    entry: Option<launch::EntryStop>,
    /// Set once the process is attached; `None` while a waitFor is in progress.
    report: Option<AttachReport>,
}

/// A waitFor in progress.
struct Waiting {
    canceller: Canceller,
    progress_id: Option<String>,
    result: oneshot::Receiver<attach::WaitOutcome>,
}

/// Why the session ended, for the process exit path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Disconnected,
    ClientGone,
    Signal,
    /// The ptrace thread ended (it panicked): nothing more can be done for the target.
    BackendGone,
}

/// With `--accept-multiclient` the target outlives its client: still traced, and what
/// the next client's `attach` takes over instead of attaching again.
#[derive(Debug, Clone)]
pub struct HeldTarget {
    pub pid: Pid,
    pub main_tid: Pid,
    pub name: String,
    /// Left stopped (`suspendDebuggee`) rather than running.
    pub stopped: bool,
    program: Option<std::path::PathBuf>,
}

/// How a session ended, and the target it leaves attached for the next client.
#[derive(Debug)]
pub struct SessionEnd {
    pub reason: EndReason,
    pub held: Option<HeldTarget>,
}

/// latch's own termination signals, created once per process: a signal that arrives
/// between two clients of a multiclient server is still seen.
pub struct Signals {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
    hangup: Option<tokio::signal::unix::Signal>,
    /// A child session's (see `children.rs`): latch's end, told by the main session.
    ending: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Signals {
    /// Must be called inside the tokio runtime.
    pub fn install() -> Signals {
        use tokio::signal::unix::SignalKind;
        Signals {
            terminate: signal(SignalKind::terminate()),
            interrupt: signal(SignalKind::interrupt()),
            hangup: signal(SignalKind::hangup()),
            ending: None,
        }
    }

    /// A child session's: it ends when latch ends (the main session hears the signals).
    pub fn for_child(ending: tokio::sync::watch::Receiver<bool>) -> Signals {
        Signals {
            terminate: None,
            interrupt: None,
            hangup: None,
            ending: Some(ending),
        }
    }

    /// Resolves when SIGTERM, SIGINT or SIGHUP arrives.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = recv_signal(&mut self.terminate) => {}
            _ = recv_signal(&mut self.interrupt) => {}
            _ = recv_signal(&mut self.hangup) => {}
            _ = ended(&mut self.ending) => {}
        }
    }
}

pub struct Session {
    out: Outbox,
    backend: BackendHandle,
    phase: Phase,
    supports_progress: bool,
    configuration_done: bool,
    pending_attach: Option<PendingAttach>,
    waiting: Option<Waiting>,
    target: Option<Target>,
    end_reason: EndReason,
    /// `initialized` goes out once per session, even if a first attach failed.
    initialized_sent: bool,
    /// The target's exit, held back while its attach response is still pending so the
    /// client never hears `terminated` before `attach` succeeded.
    deferred_exit: Option<i32>,
    symbols: SymbolService,
    /// The `program` attach argument: read symbols from it instead of /proc/PID/exe.
    program: Option<std::path::PathBuf>,
    /// Stacks, frame ids and registers of the current stop.
    stop: stacks::StopState,
    /// Source files seen in frames: None when on disk, else their `sourceReference`.
    source_refs: std::collections::HashMap<String, Option<i64>>,
    /// sourceReference - 1 -> the path that is not on this machine.
    missing_sources: Vec<String>,
    /// Paths of the modules the client has heard of through `module` events.
    announced_modules: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// `--accept-multiclient`: a client leaving keeps the target attached for the next.
    keep_target_between_clients: bool,
    /// The target a previous client left attached, until this client's `attach` takes it.
    held: Option<HeldTarget>,
    /// `thread` events, coalesced while the target runs (see `threads.rs`).
    thread_events: threads::ThreadEvents,
    /// Ticks once a window while `thread_events` has something pending; created in
    /// `run`, inside the runtime.
    thread_ticker: Option<tokio::time::Interval>,
    /// Every breakpoint and exception filter of the session.
    breakpoints: breakpoints::Breakpoints,
    /// A step waiting for the ptrace thread.
    step_plan: Option<stepping::StepPlan>,
    /// The signal a thread stopped for, for `exceptionInfo`, until the target runs.
    exception: Option<(Pid, Value)>,
    /// The target is a program this session launched: it ends with the session.
    launched: Option<launch::Launched>,
    /// A launch waiting for the editor's terminal to start the program.
    terminal: Option<launch::TerminalLaunch>,
    /// A launch's stop at its entry point or `main`, until it is reported.
    entry_stop: Option<launch::EntryStop>,
    /// The run to `entry_stop` is under way (else it waits for the program's exec).
    entry_armed: bool,
    /// The client answers `runInTerminal` and `startDebugging`.
    client_runs_terminals: bool,
    client_starts_sessions: bool,
    /// The session of a followed child of a launched program: it ends its process as
    /// the launch session does.
    of_launch: bool,
    /// Children offered through `startDebugging`, oldest first, until the client answers.
    offered_children: std::collections::VecDeque<crate::children::Offer>,
    /// A Go program's goroutines, shown as its threads (see `goroutines.rs`).
    go: goroutines::GoView,
}

impl Session {
    pub fn new(out: Outbox, backend: BackendHandle, symbols: SymbolService) -> Session {
        Session {
            out,
            backend,
            phase: Phase::New,
            supports_progress: false,
            configuration_done: false,
            pending_attach: None,
            waiting: None,
            target: None,
            end_reason: EndReason::ClientGone,
            initialized_sent: false,
            deferred_exit: None,
            symbols,
            program: None,
            stop: stacks::StopState::default(),
            source_refs: std::collections::HashMap::new(),
            missing_sources: Vec::new(),
            announced_modules: Default::default(),
            keep_target_between_clients: false,
            held: None,
            thread_events: threads::ThreadEvents::default(),
            thread_ticker: None,
            breakpoints: breakpoints::Breakpoints::default(),
            step_plan: None,
            exception: None,
            launched: None,
            terminal: None,
            entry_stop: None,
            entry_armed: false,
            client_runs_terminals: false,
            client_starts_sessions: false,
            of_launch: false,
            offered_children: Default::default(),
            go: goroutines::GoView::default(),
        }
    }

    /// The session of a child of a launched program (see `children.rs`).
    pub fn child_of_launch(mut self) -> Session {
        self.of_launch = true;
        self
    }

    /// The target belongs to the debug session (launched, or forked by what was): by
    /// default it ends with the session.
    fn owns_target(&self) -> bool {
        self.launched.is_some() || self.of_launch
    }

    /// A session of a multiclient server: it leaves its target attached when its client
    /// goes, and takes over the one `held` from the previous client, if any.
    pub fn one_of_many(mut self, held: Option<HeldTarget>) -> Session {
        self.keep_target_between_clients = true;
        self.held = held;
        self
    }

    /// Serves one client until it disconnects or goes away, or latch is told to stop.
    /// Whatever the way out, the target is detached before this returns, unless this is
    /// one of many sessions and the target is handed back as `held`.
    pub async fn run(
        mut self,
        mut input: mpsc::UnboundedReceiver<Incoming>,
        backend_events: &mut mpsc::UnboundedReceiver<BackendEvent>,
        signals: &mut Signals,
    ) -> SessionEnd {
        // Ticks never come closer than a window apart, even after a wait (Delay): at
        // most one batch of `thread` events per window.
        let mut ticker = tokio::time::interval(threads::WINDOW);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.thread_ticker = Some(ticker);
        while self.phase != Phase::Ended {
            let tick_due = self.thread_events.pending();
            tokio::select! {
                message = input.recv() => match message {
                    Some(Incoming::Frame(body)) => self.on_frame(&body, backend_events).await,
                    Some(Incoming::Malformed(err)) => {
                        tracing::warn!("dropped malformed input: {err}");
                        self.out.output("console", &format!("latch: dropped malformed DAP input: {err}"));
                    }
                    Some(Incoming::Closed) | None => {
                        tracing::info!("the client closed the connection; detaching");
                        self.end(EndReason::ClientGone).await;
                    }
                },
                event = backend_events.recv() => match event {
                    Some(event) => self.on_backend_event(event).await,
                    None => self.backend_gone(),
                },
                _ = tick(&mut self.thread_ticker), if tick_due => self.send_thread_events(),
                outcome = terminal_result(&mut self.terminal) => self.on_terminal_outcome(outcome).await,
                outcome = wait_result(&mut self.waiting) => self.on_wait_outcome(outcome).await,
                _ = signals.recv() => self.end(EndReason::Signal).await,
            }
        }
        if self.end_reason == EndReason::Disconnected {
            self.linger(&mut input).await;
        }
        SessionEnd {
            reason: self.end_reason,
            held: self.held.take(),
        }
    }

    /// After `disconnect`, some clients (Microsoft's DebugClient among them) send a
    /// second `disconnect` before closing the stream; answer it rather than vanish
    /// mid-write. Ends at end of input or after a short grace period.
    async fn linger(&mut self, input: &mut mpsc::UnboundedReceiver<Incoming>) {
        let grace = tokio::time::sleep(LINGER_AFTER_DISCONNECT);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                _ = &mut grace => return,
                message = input.recv() => match message {
                    Some(Incoming::Frame(body)) => {
                        let Ok(request) = serde_json::from_slice::<Request>(&body) else { continue };
                        if request.command == "disconnect" {
                            self.out.respond(Response::ok(&request, None));
                        } else {
                            self.fail(&request, "session ended", "the debug session has ended (disconnected)");
                        }
                    }
                    Some(Incoming::Malformed(_)) => {}
                    Some(Incoming::Closed) | None => return,
                },
            }
        }
    }

    async fn on_frame(
        &mut self,
        body: &[u8],
        backend_events: &mut mpsc::UnboundedReceiver<BackendEvent>,
    ) {
        tracing::trace!(target: "latch::dap", "<- {}", String::from_utf8_lossy(body));
        // Straight into a request: a thousand pipelined stackTrace requests should not
        // each be parsed twice. Only a message that is not a well-formed request is
        // looked at again, to say what is wrong with it.
        let request = match serde_json::from_slice::<Request>(body) {
            Ok(request) if request.kind == "request" => request,
            Ok(other) if other.kind == "response" => {
                match serde_json::from_slice::<crate::dap::ClientResponse>(body) {
                    Ok(response) => self.on_client_response(&response),
                    Err(err) => tracing::debug!("ignored a client response: {err}"),
                }
                return;
            }
            Ok(other) => {
                tracing::debug!("ignored a client {} message", other.kind);
                return;
            }
            Err(err) => return self.on_malformed(body, err),
        };
        self.dispatch(request, backend_events).await;
    }

    /// A message that is not a request latch can read: answered when it names a
    /// request (its `seq` and `command`), reported when it is not JSON or looks like a
    /// broken request, and otherwise (a client's event or response) dropped.
    fn on_malformed(&self, body: &[u8], err: serde_json::Error) {
        let value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!("dropped a message that is not JSON: {err}");
                self.out.output(
                    "console",
                    &format!("latch: dropped a DAP message that is not valid JSON: {err}"),
                );
                return;
            }
        };
        match (
            value.get("seq").and_then(Value::as_i64),
            value.get("command").and_then(Value::as_str),
        ) {
            (Some(seq), Some(command)) => self.out.respond(Response::error(
                seq,
                command,
                "invalid request",
                &format!("latch could not read this request: {err}"),
            )),
            _ => {
                if value.get("type").and_then(Value::as_str) == Some("request")
                    || value.get("command").is_some()
                {
                    self.out.output(
                        "console",
                        &format!("latch: dropped a malformed DAP request: {err}"),
                    );
                }
            }
        }
    }

    async fn dispatch(
        &mut self,
        request: Request,
        backend_events: &mut mpsc::UnboundedReceiver<BackendEvent>,
    ) {
        // Debug builds only: lets the end-to-end tests prove that a panic still detaches.
        #[cfg(debug_assertions)]
        if std::env::var("LATCH_TEST_PANIC_ON").is_ok_and(|c| c == request.command) {
            panic!("LATCH_TEST_PANIC_ON={}", request.command);
        }
        if self.phase == Phase::New
            && request.command != "initialize"
            && request.command != "disconnect"
        {
            return self.fail(
                &request,
                "not initialized",
                "the client must send `initialize` first",
            );
        }
        match request.command.as_str() {
            "initialize" => self.initialize(&request),
            "attach" => self.attach(&request).await,
            "launch" => self.launch(&request).await,
            "configurationDone" => self.configuration_done(&request).await,
            "cancel" => self.cancel(&request),
            "threads" => self.threads(&request).await,
            "pause" => self.pause(&request, backend_events).await,
            "continue" => self.continue_(&request).await,
            "stackTrace" => self.stack_trace(&request).await,
            "scopes" => self.scopes(&request).await,
            "variables" => self.variables(&request).await,
            "evaluate" => self.evaluate(&request).await,
            "completions" => self.completions(&request).await,
            "readMemory" => self.read_memory(&request).await,
            "writeMemory" => self.write_memory(&request).await,
            "setVariable" => self.set_variable(&request).await,
            "disassemble" => self.disassemble(&request).await,
            "source" => self.source(&request),
            "modules" => self.modules(&request).await,
            "setBreakpoints" => self.set_breakpoints(&request).await,
            "setFunctionBreakpoints" => self.set_function_breakpoints(&request).await,
            "setInstructionBreakpoints" => self.set_instruction_breakpoints(&request).await,
            "setExceptionBreakpoints" => self.set_exception_breakpoints(&request).await,
            "breakpointLocations" => self.breakpoint_locations(&request).await,
            "exceptionInfo" => self.exception_info(&request),
            "next" => self.step(&request, stepping::StepKind::Over).await,
            "stepIn" => self.step(&request, stepping::StepKind::Into).await,
            "stepOut" => self.step(&request, stepping::StepKind::Out).await,
            "disconnect" => self.disconnect(&request).await,
            "terminate" => self.terminate(&request).await,
            other => self.fail(
                &request,
                "unsupported request",
                &format!(
                    "latch does not support the `{other}` request (unknown or not supported yet)"
                ),
            ),
        }
    }

    fn initialize(&mut self, request: &Request) {
        let Some(args) = self.arguments::<InitializeArguments>(request) else {
            return;
        };
        if self.phase != Phase::New {
            return self.fail(
                request,
                "already initialized",
                "`initialize` may be sent only once",
            );
        }
        self.supports_progress = args.supports_progress_reporting.unwrap_or(false);
        self.client_runs_terminals = args.supports_run_in_terminal_request.unwrap_or(false);
        self.client_starts_sessions = args.supports_start_debugging_request.unwrap_or(false);
        tracing::info!(client = ?args.client_id, "initialize");
        self.phase = Phase::Initialized;
        self.out.respond(Response::ok(
            request,
            Some(crate::dap::capabilities(breakpoints::exception_filters())),
        ));
    }

    /// Parses a request's arguments, answering with an error that names the offending
    /// argument when they do not fit.
    fn arguments<T: DeserializeOwned + Default>(&self, request: &Request) -> Option<T> {
        let value = match &request.arguments {
            None | Some(Value::Null) => return Some(T::default()),
            Some(value) => value,
        };
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(args) => Some(args),
            Err(err) => {
                let path = err.path().to_string();
                let text = if path == "." {
                    format!(
                        "invalid arguments for `{}`: {}",
                        request.command,
                        err.inner()
                    )
                } else {
                    format!(
                        "invalid argument `{path}` for `{}`: {}",
                        request.command,
                        err.inner()
                    )
                };
                self.fail(request, "invalid arguments", &text);
                None
            }
        }
    }

    /// The target runs again: what this stop computed is stale.
    fn running(&mut self) {
        if let Some(target) = self.target.as_mut() {
            target.stopped = false;
        }
        self.stop = stacks::StopState::after(&self.stop);
        self.exception = None;
    }

    fn fail(&self, request: &Request, short: &str, text: &str) {
        self.out
            .respond(Response::error(request.seq, &request.command, short, text));
    }

    fn require_target(&self, request: &Request) -> Option<&Target> {
        match &self.target {
            Some(target) if !target.exited => Some(target),
            Some(_) => {
                self.fail(request, "process exited", "the debugged process has exited");
                None
            }
            None => {
                self.fail(
                    request,
                    "not attached",
                    "not attached to a process yet: send `attach` first",
                );
                None
            }
        }
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

async fn recv_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn ended(ending: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    match ending {
        Some(ending) => {
            if ending.wait_for(|ended| *ended).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn terminal_result(
    terminal: &mut Option<launch::TerminalLaunch>,
) -> Result<crate::ptrace::AttachReport, String> {
    match terminal {
        Some(terminal) => (&mut terminal.result)
            .await
            .unwrap_or_else(|_| Err("the terminal launch ended unexpectedly (a latch bug)".into())),
        None => std::future::pending().await,
    }
}

async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn wait_result(waiting: &mut Option<Waiting>) -> attach::WaitOutcome {
    match waiting {
        Some(waiting) => (&mut waiting.result)
            .await
            .unwrap_or(attach::WaitOutcome::Lost),
        None => std::future::pending().await,
    }
}

/// The thread name shown in editors: the kernel's name and the tid, the main thread
/// marked, and a thread that still runs while the rest is stopped said to.
fn thread_name(info: &crate::ptrace::ThreadInfo) -> String {
    let main = if info.is_main { " [main]" } else { "" };
    let running = if info.running_while_held {
        " [running: blocked in the kernel]"
    } else {
        ""
    };
    format!("{} ({}){running}{main}", info.name, info.tid)
}

/// A stop's description, naming the threads that could not stop: the editor shows
/// every thread paused, and the user must know which ones are not.
fn stop_description(what: &str, running: &[Pid]) -> String {
    if running.is_empty() {
        return what.to_string();
    }
    let tids: Vec<String> = running.iter().map(Pid::to_string).collect();
    format!(
        "{what}; still running, blocked in the kernel (vfork or uninterruptible sleep): \
         thread {}. Each stops and stays stopped as soon as the kernel lets it",
        tids.join(", ")
    )
}

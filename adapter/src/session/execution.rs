//! `threads`, `pause`, `continue`, the stops the target makes on its own (breakpoints,
//! signals) and `exceptionInfo`.

use serde_json::json;

use super::{thread_name, Session};
use crate::dap::Request;
use crate::dap::Response;
use crate::ptrace::{StopReason, ThreadInfo};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadArguments {
    #[serde(default)]
    thread_id: Option<i64>,
    #[serde(default)]
    single_thread: Option<bool>,
}

/// A signal a thread stopped for, as `exceptionInfo` describes it.
#[derive(Debug, Clone)]
pub(super) struct Exception {
    pub signal: i32,
    pub code: i32,
    pub address: Option<u64>,
    pub caught: bool,
}

impl Exception {
    fn name(&self) -> String {
        super::lifecycle::signal_name(self.signal)
    }

    /// The `exceptionInfo` answer.
    pub(super) fn info(&self) -> serde_json::Value {
        let break_mode = if self.caught { "always" } else { "unhandled" };
        let mut details = json!({
            "message": self.description(),
            "typeName": self.name(),
        });
        if let Some(address) = self.address {
            details["faultAddress"] = json!(format!("{address:#x}"));
        }
        json!({
            "exceptionId": self.name(),
            "description": self.description(),
            "breakMode": break_mode,
            "details": details,
        })
    }

    /// "SIGSEGV (invalid memory access) at 0x0: address not mapped (SEGV_MAPERR)".
    pub(super) fn description(&self) -> String {
        let mut text = format!("{} ({})", self.name(), signal_meaning(self.signal));
        if let Some(address) = self.address {
            text.push_str(&format!(" at {address:#x}"));
        }
        if let Some(code) = code_words(self.signal, self.code) {
            text.push_str(&format!(": {code}"));
        }
        text
    }
}

fn signal_meaning(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "invalid memory access",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "arithmetic error",
        libc::SIGILL => "illegal instruction",
        libc::SIGABRT => "aborted",
        libc::SIGTRAP => "trace trap",
        libc::SIGPIPE => "broken pipe",
        libc::SIGTERM => "termination request",
        libc::SIGINT => "interrupt",
        libc::SIGUSR1 | libc::SIGUSR2 => "user-defined signal",
        _ => "signal",
    }
}

/// `si_code` in words, as siginfo(2) and the kernel's headers name them.
fn code_words(signal: i32, code: i32) -> Option<String> {
    let words = match (signal, code) {
        (_, 0) => "sent by kill() (SI_USER)",
        (_, -6) => "sent by tkill()/raise() (SI_TKILL)",
        (_, -1) => "sent by sigqueue() (SI_QUEUE)",
        (_, 0x80) => "sent by the kernel (SI_KERNEL)",
        (libc::SIGSEGV, 1) => "address not mapped to an object (SEGV_MAPERR)",
        (libc::SIGSEGV, 2) => "no permission for the mapped object (SEGV_ACCERR)",
        (libc::SIGSEGV, 3) => "failed address bound checks (SEGV_BNDERR)",
        (libc::SIGSEGV, 4) => "failed protection key checks (SEGV_PKUERR)",
        (libc::SIGBUS, 1) => "invalid address alignment (BUS_ADRALN)",
        (libc::SIGBUS, 2) => "nonexistent physical address (BUS_ADRERR)",
        (libc::SIGBUS, 3) => "object-specific hardware error (BUS_OBJERR)",
        (libc::SIGFPE, 1) => "integer divide by zero (FPE_INTDIV)",
        (libc::SIGFPE, 2) => "integer overflow (FPE_INTOVF)",
        (libc::SIGFPE, 3) => "floating-point divide by zero (FPE_FLTDIV)",
        (libc::SIGFPE, 4) => "floating-point overflow (FPE_FLTOVF)",
        (libc::SIGFPE, 5) => "floating-point underflow (FPE_FLTUND)",
        (libc::SIGFPE, 6) => "floating-point inexact result (FPE_FLTRES)",
        (libc::SIGFPE, 7) => "invalid floating-point operation (FPE_FLTINV)",
        (libc::SIGILL, 1) => "illegal opcode (ILL_ILLOPC)",
        (libc::SIGILL, 2) => "illegal operand (ILL_ILLOPN)",
        (libc::SIGILL, 4) => "illegal trap (ILL_ILLTRP)",
        (libc::SIGILL, 5) => "privileged opcode (ILL_PRVOPC)",
        _ => return Some(format!("si_code {code}")),
    };
    Some(words.to_string())
}

impl Session {
    /// Truthful at any time, and never stops a running target: the backend answers from
    /// its thread table, kept current by clone and exit events.
    pub(super) async fn threads(&mut self, request: &Request) {
        let alive = self.target.as_ref().is_some_and(|target| !target.exited);
        let stopped = alive && self.target.as_ref().is_some_and(|target| target.stopped);
        // A Go program's goroutines: this stop's, or while it runs, the last stop's.
        let goroutines = match (stopped, alive) {
            (true, _) => self.goroutine_threads().await,
            (false, true) if self.go.is_active() => self.go.last_list.clone(),
            _ => None,
        };
        if let Some(threads) = goroutines {
            self.out
                .respond(Response::ok(request, Some(json!({ "threads": threads }))));
            self.walk_ahead().await;
            return;
        }
        let asked: Vec<ThreadInfo>;
        // During a stop, the list read ahead; otherwise the ptrace thread's table.
        let threads: &[ThreadInfo] = match self.listed_threads() {
            Some(listed) if alive => listed,
            _ if alive => {
                asked = self.backend.threads().await.unwrap_or_default();
                &asked
            }
            _ => &[],
        };
        #[derive(serde::Serialize)]
        struct Thread {
            id: crate::procfs::Pid,
            name: String,
        }
        #[derive(serde::Serialize)]
        struct ThreadsBody {
            threads: Vec<Thread>,
        }
        let body = ThreadsBody {
            threads: threads
                .iter()
                .map(|t| Thread {
                    id: t.tid,
                    name: thread_name(t),
                })
                .collect(),
        };
        self.out.respond(Response::ok_typed(request, &body));
        self.walk_ahead().await;
    }

    pub(super) async fn pause(
        &mut self,
        request: &Request,
        backend_events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::ptrace::BackendEvent>,
    ) {
        let Some(args) = self.arguments::<ThreadArguments>(request) else {
            return;
        };
        let Some(target) = self.require_target(request) else {
            return;
        };
        let (main_tid, already_stopped) = (target.main_tid, target.stopped);
        if already_stopped {
            return self.out.respond(Response::ok(request, None));
        }
        self.step_plan = None;
        match self.backend.stop_all().await {
            // The process exited while we stopped it: its exit events tell the rest.
            Ok(stopped) if stopped.tids.is_empty() => self.out.respond(Response::ok(request, None)),
            Ok(stopped) => {
                let threads = &stopped.tids;
                self.out.respond(Response::ok(request, None));
                // The ptrace thread sent every event of the run before its answer: take
                // them now, so none is handled after the stop as if it were news.
                while let Ok(event) = backend_events.try_recv() {
                    Box::pin(self.on_backend_event(event)).await;
                }
                let batch = self.thread_events.sync(threads);
                // A breakpoint or signal stopped the target just before the pause did:
                // that stop was reported (above, from its event), and is the one shown.
                if self.target.as_ref().is_some_and(|t| t.stopped) {
                    self.write_thread_events(&batch);
                    return;
                }
                tracing::debug!(
                    started = batch.started.len(),
                    exited = batch.exited.len(),
                    "thread events synced at a stop"
                );
                self.write_thread_events(&batch);
                let asked = args
                    .thread_id
                    .and_then(|id| self.thread_for(id).ok())
                    .and_then(|asked| threads.iter().find(|tid| **tid == asked));
                // The main thread may have left (pthread_exit): report a live one.
                let main_alive = threads.contains(&main_tid);
                let fallback = if main_alive { main_tid } else { threads[0] };
                let thread_id = asked.copied().unwrap_or(fallback);
                if let Some(target) = self.target.as_mut() {
                    target.stopped = true;
                }
                // Libraries may have come or gone while it ran.
                self.symbols.refresh();
                self.announce_modules();
                let description = super::stop_description("Paused", &stopped.running);
                self.report_stop(thread_id, "pause", &description).await;
            }
            Err(err) => self.fail(request, "pause failed", &format!("could not pause: {err}")),
        }
    }

    pub(super) async fn continue_(&mut self, request: &Request) {
        let Some(args) = self.arguments::<ThreadArguments>(request) else {
            return;
        };
        if self.require_target(request).is_none() {
            return;
        }
        if self.pending_attach.is_some() {
            return self.fail(
                request,
                "not ready",
                "the attach is not finished: send `configurationDone` first",
            );
        }
        let Some(target) = self.target.as_ref() else {
            return;
        };
        if !target.stopped {
            // Already running: nothing to resume (and a stop the ptrace thread is
            // reporting right now must not be resumed unseen).
            return self.out.respond(Response::ok(
                request,
                Some(json!({ "allThreadsContinued": true })),
            ));
        }
        let only = match (args.single_thread, args.thread_id) {
            (Some(true), Some(id)) => match self.thread_for(id) {
                Ok(tid) => Some(tid),
                Err(text) => return self.fail(request, "no such thread", &text),
            },
            _ => None,
        };
        let resumed = match only {
            Some(tid) => self.backend.resume_thread(tid).await,
            None => self.backend.resume_all().await,
        };
        match resumed {
            Ok(()) => {
                self.running();
                self.out.respond(Response::ok(
                    request,
                    Some(json!({ "allThreadsContinued": only.is_none() })),
                ));
            }
            Err(err) => self.fail(
                request,
                "continue failed",
                &format!("could not continue: {err}"),
            ),
        }
    }

    /// The target stopped on its own: a breakpoint, a step's end, a signal, or the
    /// dynamic loader's hook (not the user's business: breakpoints are resolved again
    /// and the thread goes on).
    pub(super) async fn on_stopped(&mut self, tid: crate::procfs::Pid, reason: StopReason) {
        if let StopReason::Libraries | StopReason::Exec = reason {
            if reason == StopReason::Exec {
                self.exec_happened(tid);
            }
            self.symbols.refresh();
            self.announce_modules();
            self.resolve_all_breakpoints(true).await;
            // A launch's stop at entry or `main` that waited for the real program (a
            // script's interpreter ran first) may be armed in this one.
            let waiting_entry =
                reason == StopReason::Exec && self.entry_stop.is_some() && !self.entry_armed;
            if waiting_entry && self.arm_entry_stop(tid).await {
                return;
            }
            self.backend.release(tid).await;
            return;
        }
        if self.target.as_ref().is_none_or(|t| t.exited) {
            return;
        }
        if let StopReason::Step = reason {
            if self.entry_armed && self.step_plan.is_none() {
                if let Some(entry) = self.entry_stop.take() {
                    self.entry_armed = false;
                    return self.report_entry_stop(tid, entry).await;
                }
            }
            return self.on_step_stop(tid).await;
        }
        // Any other stop ends a step in progress, and the run to a launch's entry.
        self.step_plan = None;
        self.entry_stop = None;
        self.entry_armed = false;
        if let Some(target) = self.target.as_mut() {
            target.stopped = true;
        }
        // Libraries may have come or gone while it ran.
        self.symbols.refresh();
        self.announce_modules();
        match reason {
            StopReason::Breakpoint(ids) => {
                let (kind, description) = self.breakpoints.stop_reason(&ids);
                let shown: Vec<i64> = ids.iter().copied().filter(|id| *id > 0).collect();
                let mut body = json!({ "reason": kind, "description": description });
                if self.breakpoints.is_panic(&ids) {
                    body["text"] = json!("panic");
                    let unrecovered = ids.contains(&super::breakpoints::GO_PANIC_ID);
                    let description = if unrecovered {
                        "an unrecovered Go panic: the program ends when it continues, and \
                         prints the panic's value and goroutines first"
                    } else {
                        "a Go panic (it may still be recovered by a deferred function)"
                    };
                    self.exception = Some((
                        tid,
                        json!({
                            "exceptionId": "panic",
                            "description": description,
                            "breakMode": if unrecovered { "unhandled" } else { "always" },
                        }),
                    ));
                } else {
                    body["hitBreakpointIds"] = json!(shown);
                }
                self.report_stop_with(tid, body).await;
            }
            StopReason::Signal {
                signal,
                code,
                address,
                caught,
            } => {
                let exception = Exception {
                    signal,
                    code,
                    address,
                    caught,
                };
                let description = exception.description();
                let name = exception.name();
                self.exception = Some((tid, exception.info()));
                self.report_stop_with(
                    tid,
                    json!({ "reason": "exception", "description": description, "text": name }),
                )
                .await;
            }
            StopReason::Step | StopReason::Libraries | StopReason::Exec => {
                unreachable!("handled above")
            }
        }
    }

    /// The target started another program: what latch knew of the old one is gone
    /// (its breakpoints' addresses, the displaced-stepping slot), and the editor is told.
    fn exec_happened(&mut self, tid: crate::procfs::Pid) {
        self.breakpoints.forget_process();
        // Whether goroutines can be shown is the new program's question.
        self.go.forget_program();
        let Some(target) = self.target.as_mut() else {
            return;
        };
        target.name = crate::procfs::comm(target.pid).unwrap_or_else(|_| target.name.clone());
        let line = format!(
            "latch: process {} started another program (exec by thread {tid}): {}",
            target.pid, target.name
        );
        self.out.output("console", &line);
        self.out.event(
            "process",
            json!({
                "name": target.name,
                "systemProcessId": target.pid,
                "isLocalProcess": true,
                "startMethod": if self.launched.is_some() { "launch" } else { "attach" },
            }),
        );
    }

    pub(super) fn exception_info(&mut self, request: &Request) {
        let Some(args) = self.arguments::<ThreadArguments>(request) else {
            return;
        };
        let asked = args.thread_id.unwrap_or(0);
        let thread = self.thread_for(asked).ok();
        match &self.exception {
            Some((tid, info)) if thread == Some(*tid) => {
                self.out.respond(Response::ok(request, Some(info.clone())));
            }
            _ => self.fail(
                request,
                "no exception",
                &format!("thread {asked} did not stop for a signal in this stop"),
            ),
        }
    }
}

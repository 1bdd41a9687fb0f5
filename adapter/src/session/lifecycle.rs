//! Ending: `disconnect`, `terminate`, the target's own exit, and every other way out
//! (client gone, signals), all of which detach before the session ends.

use std::time::Duration;

use serde_json::json;

use super::{EndReason, Phase, Session};
use crate::dap::{DisconnectArguments, Request, Response};
use crate::ptrace::{BackendEvent, DetachMode};

/// How long the end of a session waits for a waitFor that is attaching: the attach's
/// own stop deadline, and more.
const STOP_WAITING: Duration = Duration::from_secs(10);

impl Session {
    pub(super) async fn disconnect(&mut self, request: &Request) {
        let Some(args) = self.arguments::<DisconnectArguments>(request) else {
            return;
        };
        // A launched program ends with its session unless the client says otherwise
        // (DAP: terminateDebuggee's default is the adapter's choice).
        let mode = if args.terminate_debuggee.unwrap_or(self.owns_target()) {
            DetachMode::Kill
        } else if args.suspend_debuggee.unwrap_or(false) {
            DetachMode::LeaveStopped
        } else {
            DetachMode::Run
        };
        self.stop_waiting().await;
        if self.keep_target_between_clients && mode != DetachMode::Kill {
            self.hold_for_next_client(mode == DetachMode::LeaveStopped)
                .await;
            self.out.respond(Response::ok(request, None));
            self.end_reason = EndReason::Disconnected;
            self.phase = Phase::Ended;
            return;
        }
        self.backend.detach(mode).await;
        if let Some(target) = &self.target {
            let what = match mode {
                DetachMode::Run => "detached; it runs on",
                DetachMode::LeaveStopped => {
                    "detached and left stopped (SIGSTOP); send SIGCONT to resume it"
                }
                DetachMode::Kill => "killed",
            };
            if !target.exited {
                self.out
                    .output("console", &format!("latch: pid {} {what}", target.pid));
            }
        }
        self.out.respond(Response::ok(request, None));
        self.target = None;
        self.end_reason = EndReason::Disconnected;
        self.phase = Phase::Ended;
    }

    pub(super) async fn terminate(&mut self, request: &Request) {
        if self.require_target(request).is_none() {
            return;
        }
        if let Err(err) = self.backend.signal(libc::SIGTERM).await {
            let text = format!("could not send SIGTERM: {err}");
            return self.fail(request, "terminate failed", &text);
        }
        self.out.respond(Response::ok(request, None));
        // A stopped target cannot act on the signal: let it run so it can end (its
        // handler, if any, runs as it would without a debugger).
        let stopped_main = self
            .target
            .as_ref()
            .filter(|t| t.stopped)
            .map(|t| t.main_tid);
        if let (Some(main_tid), None) = (stopped_main, &self.pending_attach) {
            if let Err(err) = self.backend.resume_all().await {
                tracing::warn!("resuming after SIGTERM failed: {err}");
            }
            self.running();
            let body = json!({ "threadId": main_tid, "allThreadsContinued": true });
            self.out.event("continued", body);
        }
    }

    pub(super) async fn on_backend_event(&mut self, event: BackendEvent) {
        match event {
            BackendEvent::Stopped { tid, reason } => self.on_stopped(tid, reason).await,
            BackendEvent::Output(line) => self.out.output("console", &line),
            BackendEvent::ChildProcess { pid, parent } => self.on_child_process(pid, parent),
            BackendEvent::StepAbandoned(why) => {
                if self.step_plan.take().is_some() {
                    self.out.output("console", &format!("latch: {why}"));
                }
            }
            // Written at the next tick, if at all (see `threads.rs`).
            BackendEvent::ThreadStarted(info) => self.thread_events.started(info.tid),
            BackendEvent::ThreadExited(tid) => self.thread_events.exited(tid),
            BackendEvent::ProcessExited { code } => {
                let Some(target) = self.target.as_mut() else {
                    // The process a previous client left held exited before this
                    // client took it: let go of it, or every attach would be refused.
                    if let Some(held) = self.held.take() {
                        let line = format!(
                            "latch: pid {} ({}), held for the next client, exited ({code})",
                            held.pid, held.name
                        );
                        self.out.output("console", &line);
                    }
                    return;
                };
                target.exited = true;
                // Every announced thread that was seen to exit hears of it before the
                // process's end, without waiting for a tick.
                let exited = self.thread_events.retire_now();
                self.write_thread_events(&super::threads::Batch {
                    exited,
                    started: Vec::new(),
                });
                // Its last words come before its end, as it wrote them.
                self.drain_program_output().await;
                if self.pending_attach.is_some() {
                    self.deferred_exit = Some(code);
                } else {
                    self.announce_exit(code);
                }
            }
        }
    }

    /// The ptrace thread is gone (a panic there: a latch bug). Its unwinding detached
    /// the target; every later request would fail, so the session says what happened
    /// and ends, as a debugger whose engine failed does.
    pub(super) fn backend_gone(&mut self) {
        tracing::error!("the ptrace thread ended; ending the session");
        let what = match &self.target {
            Some(target) if !target.exited => {
                format!("; pid {} was detached and runs on", target.pid)
            }
            _ => String::new(),
        };
        self.out.output(
            "stderr",
            &format!(
                "latch: internal error: the ptrace thread ended (a latch bug; the log says \
                 why){what}. The debug session ends"
            ),
        );
        if let Some(pending) = self.pending_attach.take() {
            let text = "latch's ptrace thread ended (a latch bug)";
            self.out.respond(Response::error(
                pending.request_seq,
                pending.command,
                "internal error",
                text,
            ));
        }
        if let Some(waiting) = self.waiting.take() {
            waiting.canceller.cancel();
        }
        self.out.event("terminated", json!({}));
        self.target = None;
        self.held = None;
        self.end_reason = EndReason::BackendGone;
        self.phase = Phase::Ended;
    }

    /// A tick of the reporting window: what it holds goes out as one batch.
    pub(super) fn send_thread_events(&mut self) {
        let batch = self.thread_events.tick();
        if !batch.is_empty() {
            // Counted by the end-to-end tests: one line per batch, at most one a window.
            tracing::debug!(
                started = batch.started.len(),
                exited = batch.exited.len(),
                "thread events flushed"
            );
            self.write_thread_events(&batch);
        }
    }

    pub(super) fn write_thread_events(&self, batch: &super::threads::Batch) {
        // The goroutine view lists goroutines: OS threads coming and going are not news
        // to the client (it reads `threads` again at each stop).
        if self.go.is_active() {
            return;
        }
        for tid in &batch.exited {
            self.out
                .event("thread", json!({ "reason": "exited", "threadId": tid }));
        }
        for tid in &batch.started {
            self.out
                .event("thread", json!({ "reason": "started", "threadId": tid }));
        }
    }

    pub(super) fn announce_exit(&mut self, code: i32) {
        let Some(target) = &self.target else { return };
        if code > 128 {
            let signal = signal_name(code - 128);
            let line = format!("latch: pid {} was killed by signal {signal}", target.pid);
            self.out.output("console", &line);
        }
        self.out.event("exited", json!({ "exitCode": code }));
        self.out.event("terminated", json!({}));
    }

    /// Cancels a waitFor and waits for its thread to finish, so that a process it caught
    /// at the last moment is attached before, not after, the detach that follows.
    async fn stop_waiting(&mut self) {
        let Some(mut waiting) = self.waiting.take() else {
            return;
        };
        waiting.canceller.cancel();
        let outcome = match tokio::time::timeout(STOP_WAITING, &mut waiting.result).await {
            Ok(outcome) => outcome.ok(),
            Err(_) => {
                tracing::warn!(
                    "the waitFor's attach did not finish within {STOP_WAITING:?}; going on \
                     without it (it lets its process go when it finishes)"
                );
                // Closed first: a result sent from now on goes back to the waitFor
                // thread, which detaches; one sent just before is taken here.
                waiting.result.close();
                waiting.result.try_recv().ok()
            }
        };
        if let Some(super::attach::WaitOutcome::Attached { report, .. }) = outcome {
            self.target = Some(super::Target {
                pid: report.pid,
                main_tid: report.main_tid,
                name: report.name.clone(),
                stopped: true,
                exited: false,
            });
        }
        // The session is ending: the attach that was waiting gets its answer.
        if let Some(pending) = self.pending_attach.take() {
            let text = "the wait for the process ended because the session ended";
            self.out.respond(Response::error(
                pending.request_seq,
                pending.command,
                "cancelled",
                text,
            ));
        }
    }

    /// The way out when the client did not say goodbye: detach and let the target run
    /// (a multiclient server keeps it attached, running, for the next client).
    pub(super) async fn end(&mut self, reason: EndReason) {
        self.stop_waiting().await;
        if let Some(terminal) = self.terminal.take() {
            terminal.task.abort();
        }
        if self.keep_target_between_clients && reason == EndReason::ClientGone {
            self.hold_for_next_client(false).await;
        } else {
            // A launched program does not outlive its session (gdb and lldb-dap kill
            // it too); an attached one runs on.
            let mode = if self.owns_target() {
                DetachMode::Kill
            } else {
                DetachMode::Run
            };
            self.backend.detach(mode).await;
            self.held = None;
        }
        self.end_reason = reason;
        self.phase = Phase::Ended;
    }

    /// `--accept-multiclient`: the client leaves, the target stays traced for the next
    /// one, running unless the client asked for it to stay suspended.
    async fn hold_for_next_client(&mut self, leave_stopped: bool) {
        let Some(target) = self.target.take() else {
            return;
        };
        if target.exited {
            return;
        }
        let mut stopped = target.stopped;
        if stopped && !leave_stopped {
            match self.backend.resume_all().await {
                Ok(()) => stopped = false,
                Err(err) => tracing::warn!("resuming for the next client failed: {err}"),
            }
        }
        let state = if stopped { "stays stopped" } else { "runs on" };
        self.out.output(
            "console",
            &format!(
                "latch: pid {} {state}, still attached: latch serves it to the next client (--accept-multiclient); stop latch to detach",
                target.pid
            ),
        );
        self.held = Some(super::HeldTarget {
            pid: target.pid,
            main_tid: target.main_tid,
            name: target.name.clone(),
            stopped,
            program: self.program.clone(),
        });
    }
}

pub fn signal_name(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) => format!("{signal}"),
    }
}

//! Ending: `disconnect`, `terminate`, the target's own exit, and every other way out
//! (client gone, signals), all of which detach before the session ends.

use serde_json::json;

use super::{EndReason, Phase, Session};
use crate::dap::{DisconnectArguments, Request, Response};
use crate::ptrace::{BackendEvent, DetachMode};

impl Session {
    pub(super) async fn disconnect(&mut self, request: &Request) {
        let Some(args) = self.arguments::<DisconnectArguments>(request) else {
            return;
        };
        let mode = if args.terminate_debuggee.unwrap_or(false) {
            DetachMode::Kill
        } else if args.suspend_debuggee.unwrap_or(false) {
            DetachMode::LeaveStopped
        } else {
            DetachMode::Run
        };
        self.stop_waiting();
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
            if let Some(target) = self.target.as_mut() {
                target.stopped = false;
            }
            let body = json!({ "threadId": main_tid, "allThreadsContinued": true });
            self.out.event("continued", body);
        }
    }

    pub(super) fn on_backend_event(&mut self, event: BackendEvent) {
        match event {
            BackendEvent::ThreadStarted(info) => {
                self.out.event(
                    "thread",
                    json!({ "reason": "started", "threadId": info.tid }),
                );
            }
            BackendEvent::ThreadExited(tid) => {
                self.out
                    .event("thread", json!({ "reason": "exited", "threadId": tid }));
            }
            BackendEvent::ProcessExited { code } => {
                let Some(target) = self.target.as_mut() else {
                    return;
                };
                target.exited = true;
                if code > 128 {
                    self.out.output(
                        "console",
                        &format!(
                            "latch: pid {} was killed by signal {}",
                            target.pid,
                            signal_name(code - 128)
                        ),
                    );
                }
                self.out.event("exited", json!({ "exitCode": code }));
                self.out.event("terminated", json!({}));
            }
        }
    }

    fn stop_waiting(&mut self) {
        if let Some(waiting) = &self.waiting {
            waiting.canceller.cancel();
        }
    }

    /// The way out when the client did not say goodbye: detach and let the target run.
    pub(super) async fn end(&mut self, reason: EndReason) {
        self.stop_waiting();
        self.backend.detach(DetachMode::Run).await;
        self.end_reason = reason;
        self.phase = Phase::Ended;
    }
}

fn signal_name(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) => format!("{signal}"),
    }
}

//! `attach` (by pid or waitFor), `configurationDone` and `cancel`.
//!
//! Sequencing (DESIGN.md section 6): attach and fail fast, then the `initialized` event,
//! configuration, `configurationDone`, and only then the attach response. A waitFor sends
//! `initialized` at once so the client can finish configuring while we wait (as
//! CodeLLDB does), and answers `attach` when the process has been caught.

use std::time::Duration;

use serde_json::json;

use super::{Phase, Session, Target, Waiting};
use crate::dap::{AttachArguments, CancelArguments, Request, Response, WaitForMatch};
use crate::ptrace::{AttachError, AttachReport, BackendError, BackendHandle};
use crate::waitfor::{Canceller, Found, MatchMode, WaitError, WaitSpec, Waiter};
use crate::words::counted;

/// How a waitFor ended, sent from its thread to the session.
pub(super) enum WaitOutcome {
    Attached {
        found: Found,
        report: AttachReport,
    },
    AttachFailed(AttachError),
    WaitFailed(WaitError),
    /// The wait thread vanished (a bug); reported as an error.
    Lost,
}

impl Session {
    pub(super) async fn attach(&mut self, request: &Request) {
        let Some(args) = self.arguments::<AttachArguments>(request) else {
            return;
        };
        if let Some(target) = &self.target {
            let text = AttachError::AlreadyAttached(target.pid).to_string();
            return self.fail(request, "already attached", &text);
        }
        if self.pending_attach.is_some() || self.waiting.is_some() {
            return self.fail(request, "already attached", "an attach is already in progress (already attached or waiting); one latch session debugs one process");
        }
        let stop_on_entry = args.stop_on_entry.unwrap_or(false);
        self.go.configure(args.goroutines, args.max_goroutines);
        if let Some(bytes) = args.max_string_length {
            self.symbols
                .set_max_string(usize::try_from(bytes.clamp(1, 1 << 20)).unwrap_or(1 << 20));
        }
        if let Some(program) = &args.program {
            if let Err(err) = std::fs::File::open(program) {
                return self.fail(
                    request,
                    "invalid program",
                    &format!(
                        "cannot read `program` {program}: {err}. Give the path of the executable \
                         to read symbols from, or leave `program` out to use the one the \
                         process runs"
                    ),
                );
            }
        }
        self.program = args.program.as_ref().map(std::path::PathBuf::from);
        if let Some(held) = self.held.clone() {
            return self.take_over_held(request, &args, held).await;
        }
        match (args.pid, args.wait_for.as_deref()) {
            (Some(_), Some(_)) => self.fail(
                request,
                "invalid arguments",
                "give either `pid` or `waitFor`, not both",
            ),
            (None, None) => self.fail(
                request,
                "invalid arguments",
                "`attach` needs `pid` (a process id) or `waitFor` (a process name to wait for)",
            ),
            (Some(pid), None) => {
                self.backend
                    .follow_forks(args.follow_forks.unwrap_or(false))
                    .await;
                // The backend validates before it touches the process.
                match self.backend.attach(pid).await {
                    Ok(mut report) => {
                        if args.latch_child_session.is_some() && report.was_job_stopped {
                            // The stop is the one latch handed the child over in, not
                            // the user's job control: it ends now, and the child runs
                            // when configuration is done, as an attached process does.
                            self.backend.end_hand_over_stop().await;
                            report.was_job_stopped = false;
                        }
                        self.attached(request, report, stop_on_entry, true).await
                    }
                    Err(err) => self.fail(request, "attach failed", &err.to_string()),
                }
            }
            (None, Some(pattern)) => {
                self.start_wait(request, &args, pattern.to_string(), stop_on_entry)
            }
        }
    }

    /// `--accept-multiclient`: a previous client left this target attached. The new
    /// client gets it as if it had just attached: stopped, announced, and run on at
    /// `configurationDone` unless `stopOnEntry`.
    async fn take_over_held(
        &mut self,
        request: &Request,
        args: &AttachArguments,
        held: super::HeldTarget,
    ) {
        let same_process = match (args.pid, &args.wait_for) {
            // A thread id of the held process names it too.
            (Some(pid), None) => {
                pid == i64::from(held.pid)
                    || crate::procfs::Pid::try_from(pid)
                        .is_ok_and(|tid| crate::procfs::process_of(tid) == held.pid)
            }
            // An attach with neither names "the process this server holds".
            (None, None) => true,
            _ => false,
        };
        if !same_process {
            let text = format!(
                "this latch server (--accept-multiclient) holds pid {} ({}) for its clients; attach to pid {}, or stop latch (Ctrl-C or SIGTERM) to detach from it and start another for a different process",
                held.pid, held.name, held.pid
            );
            return self.fail(request, "already attached", &text);
        }
        let stop_on_entry = args.stop_on_entry.unwrap_or(false);
        let started = std::time::Instant::now();
        let stopped = if held.stopped {
            self.backend
                .threads()
                .await
                .map(|threads| crate::ptrace::Stopped {
                    running: threads
                        .iter()
                        .filter(|t| t.running_while_held)
                        .map(|t| t.tid)
                        .collect(),
                    tids: threads.into_iter().map(|t| t.tid).collect(),
                })
        } else {
            self.backend.stop_all().await
        };
        let stopped = match stopped {
            Ok(stopped) if !stopped.tids.is_empty() => stopped,
            Ok(_) => {
                self.held = None;
                let text = format!("pid {} has exited", held.pid);
                return self.fail(request, "process exited", &text);
            }
            Err(err) => {
                // Not attached any more (it exited and the event is still on its way):
                // nothing is held now.
                if matches!(err, BackendError::NotAttached | BackendError::Exited) {
                    self.held = None;
                }
                let text = format!("could not stop pid {}: {err}", held.pid);
                return self.fail(request, "attach failed", &text);
            }
        };
        self.held = None;
        // The symbols thread still has this process from the previous client; it reads
        // again only for a different `program`.
        let read_symbols = self.program.is_some() && self.program != held.program;
        if self.program.is_none() {
            self.program = held.program.clone();
        }
        let report = AttachReport {
            pid: held.pid,
            name: held.name.clone(),
            tids: stopped.tids,
            stragglers: stopped.running,
            refused: Vec::new(),
            main_tid: held.main_tid,
            was_job_stopped: false,
            named_thread: None,
            elapsed: started.elapsed(),
        };
        self.attached(request, report, stop_on_entry, read_symbols)
            .await;
    }

    /// The process is stopped and ours: announce it, and answer the attach once
    /// configuration is done.
    async fn attached(
        &mut self,
        request: &Request,
        report: AttachReport,
        stop_on_entry: bool,
        read_symbols: bool,
    ) {
        self.phase = Phase::Attached;
        self.announce_attached(&report, read_symbols);
        self.send_initialized();
        self.pending_attach = Some(super::PendingAttach {
            request_seq: request.seq,
            command: "attach",
            stop_on_entry,
            entry: None,
            report: Some(report),
        });
        self.finish_attach_if_ready().await;
    }

    fn start_wait(
        &mut self,
        request: &Request,
        args: &AttachArguments,
        pattern: String,
        stop_on_entry: bool,
    ) {
        if pattern.is_empty() {
            return self.fail(request, "invalid arguments", "`waitFor` must not be empty");
        }
        let spec = WaitSpec {
            pattern: pattern.clone(),
            mode: match args.wait_for_match {
                Some(WaitForMatch::Cmdline) => MatchMode::Cmdline,
                _ => MatchMode::Name,
            },
            existing: args.wait_for_existing.unwrap_or(false),
            interval: Duration::from_millis(args.wait_for_interval.unwrap_or(1).max(1)),
            timeout: args.wait_for_timeout.map(Duration::from_millis),
        };
        let canceller = match Canceller::new() {
            Ok(c) => c,
            Err(err) => {
                return self.fail(
                    request,
                    "waitFor failed",
                    &format!("could not start waiting: {err}"),
                )
            }
        };
        let waiter = match Waiter::start(spec) {
            Ok(w) => w,
            Err(err) => {
                return self.fail(
                    request,
                    "waitFor failed",
                    &format!("could not start waiting: {err}"),
                )
            }
        };
        let what = match args.wait_for_match {
            Some(WaitForMatch::Cmdline) => format!("whose command line starts with '{pattern}'"),
            _ => format!("named '{pattern}'"),
        };
        self.out.output(
            "console",
            &format!(
                "latch: waiting for a process {what} to start, {}; cancel or disconnect to stop waiting",
                waiter.method()
            ),
        );
        let progress_id = self
            .supports_progress
            .then(|| format!("latch-waitfor-{}", request.seq));
        if let Some(id) = &progress_id {
            self.out.event(
                "progressStart",
                json!({
                    "progressId": id,
                    "title": "Waiting for process",
                    "message": format!("a process {what}"),
                    "cancellable": true,
                    "requestId": request.seq,
                }),
            );
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let backend = self.backend.clone();
        let thread_canceller = canceller.clone();
        let spawned = std::thread::Builder::new()
            .name("latch-waitfor".into())
            .spawn(move || {
                let outcome = wait_and_attach(waiter, &thread_canceller, &backend);
                if let Err(outcome) = tx.send(outcome) {
                    let_go_unclaimed(outcome, &backend);
                }
            });
        if let Err(err) = spawned {
            return self.fail(
                request,
                "waitFor failed",
                &format!("could not start waiting: {err}"),
            );
        }
        self.phase = Phase::Attached;
        self.waiting = Some(Waiting {
            canceller,
            progress_id,
            result: rx,
        });
        self.pending_attach = Some(super::PendingAttach {
            request_seq: request.seq,
            command: "attach",
            stop_on_entry,
            entry: None,
            report: None,
        });
        // The client may configure while we wait; see the module comment.
        self.send_initialized();
    }

    pub(super) async fn on_wait_outcome(&mut self, outcome: WaitOutcome) {
        let Some(waiting) = self.waiting.take() else {
            return;
        };
        let Some(mut pending) = self.pending_attach.take() else {
            return;
        };
        let end_progress = |out: &crate::transport::Outbox, message: &str| {
            if let Some(id) = &waiting.progress_id {
                out.event(
                    "progressEnd",
                    json!({ "progressId": id, "message": message }),
                );
            }
        };
        let (short, text) = match outcome {
            WaitOutcome::Attached { found, report } => {
                end_progress(&self.out, &format!("attached to pid {}", report.pid));
                if !found.others.is_empty() {
                    self.out.output(
                        "console",
                        &format!(
                            "latch: {} at the same time ({}); attached to the first, pid {}",
                            counted(
                                found.others.len(),
                                "other process matched",
                                "other processes matched"
                            ),
                            found
                                .others
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            found.pid
                        ),
                    );
                }
                self.announce_attached(&report, true);
                pending.report = Some(report);
                self.pending_attach = Some(pending);
                self.finish_attach_if_ready().await;
                return;
            }
            WaitOutcome::WaitFailed(WaitError::Cancelled) => (
                "cancelled",
                "the wait for the process was cancelled".to_string(),
            ),
            WaitOutcome::WaitFailed(err) => ("waitFor failed", err.to_string()),
            WaitOutcome::AttachFailed(err) => ("attach failed", err.to_string()),
            WaitOutcome::Lost => (
                "waitFor failed",
                "the wait ended unexpectedly (a latch bug)".to_string(),
            ),
        };
        end_progress(&self.out, short);
        self.phase = Phase::Initialized;
        self.out
            .respond(Response::error(pending.request_seq, "attach", short, &text));
    }

    /// The `process` event and a `thread` event per thread: clients that learn threads
    /// only from events (nvim-dap) need them to pause.
    pub(super) fn announce_attached(&mut self, report: &AttachReport, read_symbols: bool) {
        if read_symbols {
            self.symbols.attach(report.pid, self.program.clone());
            if self.go.enabled {
                self.symbols.goroutines_ahead();
            }
        }
        self.announce_modules();
        self.target = Some(Target {
            pid: report.pid,
            main_tid: report.main_tid,
            name: report.name.clone(),
            stopped: true,
            exited: false,
        });
        self.out.event(
            "process",
            json!({
                "name": report.name,
                "systemProcessId": report.pid,
                "isLocalProcess": true,
                "startMethod": if self.launched.is_some() { "launch" } else { "attach" },
                "pointerSize": 64,
            }),
        );
        // At once, not at a tick: a client that learns threads from events needs one
        // to pause, and these are the threads the attach stopped.
        for tid in self.thread_events.announce_all(&report.tids) {
            self.out
                .event("thread", json!({ "reason": "started", "threadId": tid }));
        }
        if let Some(note) = report.named_thread_note() {
            self.out.output("console", &format!("latch: {note}"));
        }
        let mut line = if self.launched.is_some() {
            format!(
                "latch: started pid {} ({}) in {:.1} ms; it is stopped before its first instruction",
                report.pid,
                report.name,
                report.elapsed.as_secs_f64() * 1000.0
            )
        } else {
            format!(
                "latch: attached to pid {} ({}): {} stopped in {:.1} ms",
                report.pid,
                report.name,
                counted(report.tids.len(), "thread", "threads"),
                report.elapsed.as_secs_f64() * 1000.0
            )
        };
        if !report.stragglers.is_empty() {
            line.push_str(&format!(
                "; {} not be stopped yet, blocked in the kernel (vfork or \
                 uninterruptible sleep): {:?}",
                counted(report.stragglers.len(), "thread could", "threads could"),
                report.stragglers
            ));
        }
        if let Some(note) = report.refused_note() {
            line.push_str(&format!("; {note}"));
        }
        if report.was_job_stopped {
            line.push_str(
                "; the process was stopped by job control (SIGSTOP) before the attach: it stays \
                 stopped until it gets SIGCONT, and is left stopped after detach",
            );
        }
        self.out.output("console", &line);
    }

    pub(super) fn send_initialized(&mut self) {
        if !self.initialized_sent {
            self.initialized_sent = true;
            self.out.event("initialized", json!({}));
        }
    }

    pub(super) async fn configuration_done(&mut self, request: &Request) {
        self.configuration_done = true;
        self.out.respond(Response::ok(request, None));
        self.finish_attach_if_ready().await;
    }

    /// Answers the attach once both the process is attached and configuration is done,
    /// then either reports the entry stop or lets the target run.
    pub(super) async fn finish_attach_if_ready(&mut self) {
        let ready = self.configuration_done
            && self
                .pending_attach
                .as_ref()
                .is_some_and(|p| p.report.is_some());
        if !ready {
            return;
        }
        let pending = self.pending_attach.take().expect("checked above");
        // Breakpoints the client set before the process was there (a waitFor) are
        // resolved now, before it runs a single instruction more.
        self.breakpoints_for_attach().await;
        self.out.respond(Response {
            request_seq: pending.request_seq,
            success: true,
            command: pending.command.into(),
            message: None,
            body: None,
        });
        if let Some(code) = self.deferred_exit.take() {
            return self.announce_exit(code);
        }
        let Some(target) = self.target.as_mut() else {
            return;
        };
        if target.exited {
            return;
        }
        if pending.stop_on_entry {
            let focus = pending
                .report
                .as_ref()
                .map_or(target.main_tid, AttachReport::focus_tid);
            let running = pending
                .report
                .as_ref()
                .map_or(&[][..], |report| &report.stragglers[..]);
            let description = super::stop_description("Paused on attach", running);
            self.report_stop(focus, "entry", &description).await;
        } else {
            let main_tid = target.main_tid;
            self.running();
            self.entry_stop = pending.entry;
            if self.arm_entry_stop(main_tid).await {
                return;
            }
            if let Err(err) = self.backend.resume_all().await {
                tracing::warn!("resuming after attach failed: {err}");
            }
        }
    }

    pub(super) fn cancel(&mut self, request: &Request) {
        let Some(args) = self.arguments::<CancelArguments>(request) else {
            return;
        };
        if let (Some(waiting), Some(pending)) = (&self.waiting, &self.pending_attach) {
            let matches_request = args.request_id == Some(pending.request_seq);
            let matches_progress =
                args.progress_id.is_some() && args.progress_id == waiting.progress_id;
            if matches_request || matches_progress {
                waiting.canceller.cancel();
            }
        }
        // Cancelling something that already finished is not an error (DAP `cancel`).
        self.out.respond(Response::ok(request, None));
    }
}

/// Runs on the waitFor thread when the session stopped waiting for it (it gives up
/// after a while at its end: see `stop_waiting`): a process attached now belongs to
/// nobody, and a multiclient server would keep it traced, stopped, with no client to
/// resume it. Let it go at once.
fn let_go_unclaimed(outcome: WaitOutcome, backend: &BackendHandle) {
    if let WaitOutcome::Attached { report, .. } = outcome {
        tracing::warn!(
            pid = report.pid,
            "the waitFor attach to pid {} finished after its session had ended: detached, it runs on",
            report.pid
        );
        backend.detach_pid_blocking(report.pid);
    }
}

/// A test hook (debug builds only): `LATCH_TEST_DELAY_ATTACH_MS=N` makes a waitFor
/// wait N ms between finding its process and attaching, so that the end-to-end tests
/// can end the session while an attach is still to finish (a slow attach of a busy
/// process does the same).
#[cfg(debug_assertions)]
fn test_delay_attach() {
    if let Some(ms) = std::env::var("LATCH_TEST_DELAY_ATTACH_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        tracing::warn!("LATCH_TEST_DELAY_ATTACH_MS: waiting {ms} ms before the attach");
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Runs on the waitFor thread: wait, then attach straight away from this thread, so no
/// hop through the session delays the stop. Raised priority makes us win the race
/// against the new process's start-up on a busy machine.
fn wait_and_attach(
    mut waiter: Waiter,
    canceller: &Canceller,
    backend: &BackendHandle,
) -> WaitOutcome {
    let _boost = crate::priority::Boost::raise();
    backend.arm_for_attach(true);
    match waiter.wait(canceller) {
        Ok(found) => {
            tracing::debug!(pid = found.pid, "waitFor matched");
            #[cfg(debug_assertions)]
            test_delay_attach();
            match backend.attach_blocking(found.pid as i64) {
                Ok(report) => WaitOutcome::Attached { found, report },
                Err(err) => WaitOutcome::AttachFailed(err),
            }
        }
        Err(err) => {
            backend.arm_for_attach(false);
            WaitOutcome::WaitFailed(err)
        }
    }
}

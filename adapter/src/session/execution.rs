//! `threads`, `pause`, `continue`, and the placeholder for breakpoints (`setBreakpoints`).

use serde_json::json;

use super::{thread_name, Session};
use crate::dap::Request;
use crate::dap::Response;
use crate::ptrace::ThreadInfo;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadArguments {
    #[serde(default)]
    thread_id: Option<i64>,
}

impl Session {
    /// Truthful at any time, and never stops a running target: the backend answers from
    /// its thread table, kept current by clone and exit events.
    pub(super) async fn threads(&mut self, request: &Request) {
        let alive = self.target.as_ref().is_some_and(|target| !target.exited);
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
        match self.backend.stop_all().await {
            // The process exited while we stopped it: its exit events tell the rest.
            Ok(stopped) if stopped.tids.is_empty() => self.out.respond(Response::ok(request, None)),
            Ok(stopped) => {
                let threads = &stopped.tids;
                self.out.respond(Response::ok(request, None));
                // The ptrace thread sent every event of the run before its answer: take
                // them now, so none is handled after the stop as if it were news.
                while let Ok(event) = backend_events.try_recv() {
                    self.on_backend_event(event);
                }
                let batch = self.thread_events.sync(threads);
                tracing::debug!(
                    started = batch.started.len(),
                    exited = batch.exited.len(),
                    "thread events synced at a stop"
                );
                self.write_thread_events(&batch);
                let asked = args
                    .thread_id
                    .and_then(|id| threads.iter().find(|tid| i64::from(**tid) == id));
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
                self.report_stop(thread_id, "pause", &description);
            }
            Err(err) => self.fail(request, "pause failed", &format!("could not pause: {err}")),
        }
    }

    pub(super) async fn continue_(&mut self, request: &Request) {
        if self.arguments::<ThreadArguments>(request).is_none() {
            return;
        }
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
        match self.backend.resume_all().await {
            Ok(()) => {
                self.running();
                self.out.respond(Response::ok(
                    request,
                    Some(json!({ "allThreadsContinued": true })),
                ));
            }
            Err(err) => self.fail(
                request,
                "continue failed",
                &format!("could not continue: {err}"),
            ),
        }
    }

    /// Breakpoints are not implemented yet: each one is reported unverified, with why.
    pub(super) fn set_breakpoints(&mut self, request: &Request) {
        let count = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("breakpoints"))
            .and_then(|b| b.as_array())
            .map_or(0, Vec::len);
        let breakpoints: Vec<_> = (0..count)
            .map(|_| json!({ "verified": false, "message": "latch does not support breakpoints yet" }))
            .collect();
        self.out.respond(Response::ok(
            request,
            Some(json!({ "breakpoints": breakpoints })),
        ));
    }
}

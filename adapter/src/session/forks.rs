//! `followForks`: a child the target forked is offered to the editor as a session of its
//! own (DAP's `startDebugging`), served by this latch (see `crate::children`).

use serde_json::json;

use super::Session;
use crate::dap::ClientResponse;
use crate::procfs::Pid;

impl Session {
    /// The ptrace thread handed `pid` over, stopped and clean of breakpoints.
    pub(super) fn on_child_process(&mut self, pid: Pid, parent: Pid) {
        if !self.client_starts_sessions {
            let_run(pid);
            self.out.output(
                "console",
                &format!(
                    "latch: pid {parent} started child process {pid}; following it needs an \
                     editor that supports DAP's startDebugging: it runs on, not debugged"
                ),
            );
            return;
        }
        let offer = match crate::children::offer(pid, self.owns_target(), self.out.clone()) {
            Ok(offer) => offer,
            Err(err) => {
                let_run(pid);
                self.out.output(
                    "console",
                    &format!(
                        "latch: could not offer child process {pid} to the editor ({err}); it \
                         runs on, not debugged"
                    ),
                );
                return;
            }
        };
        let name = crate::procfs::comm(pid).unwrap_or_else(|_| "child".into());
        self.out.output(
            "console",
            &format!(
                "latch: pid {parent} started child process {pid} ({name}); it waits, stopped, \
                 for a debug session of its own"
            ),
        );
        self.out.request(
            "startDebugging",
            json!({
                "request": "attach",
                "configuration": {
                    "type": "latch",
                    "request": "attach",
                    "name": format!("{name} (pid {pid}, child of {parent})"),
                    "pid": pid,
                    "followForks": true,
                    "latchChildSession": offer.socket,
                },
            }),
        );
        self.offered_children.push_back(offer);
    }

    pub(super) fn on_client_response(&mut self, response: &ClientResponse) {
        match response.command.as_str() {
            "runInTerminal" => self.on_run_in_terminal_response(response),
            "startDebugging" => {
                let Some(offer) = self.offered_children.pop_front() else {
                    return;
                };
                if !response.success {
                    offer.cancel();
                    let why = response.message.clone().unwrap_or_default();
                    self.out.output(
                        "console",
                        &format!(
                            "latch: the editor did not start a session for child process {} \
                             ({why}); it runs on, not debugged",
                            offer.pid
                        ),
                    );
                }
            }
            other => tracing::debug!("ignored the client's response to `{other}`"),
        }
    }
}

/// Ends the stop a handed-over child waits in: it runs as if never followed.
fn let_run(pid: Pid) {
    // SAFETY: kill on a child process the ptrace thread stopped and let go.
    unsafe { libc::kill(pid, libc::SIGCONT) };
}

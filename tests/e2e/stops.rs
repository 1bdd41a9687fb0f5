//! Stops and detaches at the edges: threads that cannot stop when asked (blocked in
//! the kernel), a panic on the ptrace thread, a client that stopped reading.

use serde_json::json;

use crate::require_harness;
use crate::support::procfs;
use crate::support::{secs, Dap, Fixture, Target};

/// The vforker of the vfork fixture sleeps uninterruptibly until its child exits: it
/// misses the stop deadline at the attach, and cannot be detached while it runs. What
/// latch still traces after it answered `disconnect` (while it lingers for the
/// client) is what it would leave stopped: the vforker's pending interrupt stops it
/// as soon as its vfork returns, with nobody left to resume it.
#[test]
fn a_thread_that_never_stopped_is_released_at_detach() {
    require_harness!();
    let mut target = Target::start(Fixture::Vfork, &[]);
    let vforker = target.tid_named("vforker");
    let mut dap = Dap::attached(target.pid, true);
    dap.next_event("stopped", secs(10));
    dap.ok("disconnect", json!({}));
    assert!(dap.is_running(), "latch should linger after disconnect");
    let traced: Vec<_> = procfs::all_tasks(target.pid)
        .into_iter()
        .filter(|t| t.tracer_pid != 0)
        .collect();
    assert!(
        traced.is_empty(),
        "after disconnect latch still traces {traced:?} (the vforker is {vforker})"
    );
    // Its vfork returns and it runs on, untraced.
    target.send_line("release");
    assert!(
        target.next_line("vfork-done", secs(10)).is_some(),
        "the vforker did not run on after its child exited: {:?}",
        procfs::all_tasks(target.pid)
    );
    assert!(dap.wait_exit(secs(10)).success());
    target.assert_runs_on(false);
}

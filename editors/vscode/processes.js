// Turning `latch ps --json` into QuickPick rows. Kept apart from extension.js (which needs
// the `vscode` module) so the tests can run it under plain node.
'use strict';

/** One QuickPick row per process; already-traced ones say by whom (attaching will fail). */
function toQuickPickItem(proc) {
  let traced = '';
  if (proc.tracer_pid) {
    traced = proc.tracer_name ? ` · traced by ${proc.tracer_name} (pid ${proc.tracer_pid})` : ` · traced by pid ${proc.tracer_pid}`;
  }
  return {
    label: proc.name,
    description: `pid ${proc.pid} · ${proc.user ?? `uid ${proc.uid}`}${traced}`,
    detail: proc.cmdline || proc.exe || undefined,
    pid: proc.pid,
  };
}

module.exports = { toQuickPickItem };

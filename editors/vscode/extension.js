// The latch extension: tells VS Code to run `latch dap` for debug type `latch` (or, for a
// child session latch offers through `startDebugging`, to connect to the socket of the
// latch that already holds the child), finds the binary, and contributes
// `${command:pickProcess}` (a QuickPick over `latch ps --json`). Everything else (launch,
// attach, threads, stacks, detach) is latch's DAP.
'use strict';

const vscode = require('vscode');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { toQuickPickItem } = require('./processes');

const INSTALL_HINT = 'Install it with `cargo install --path adapter` in a latch checkout, or set `latch.path`.';

/** Raised when there is no usable latch binary; the message says how to fix it. */
class LatchNotFound extends Error {}

function isExecutableFile(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The latch binary: the `latch.path` setting when set, else the first `latch` on PATH. */
function findLatch() {
  let configured = vscode.workspace.getConfiguration('latch').get('path', '').trim();
  if (configured) {
    if (configured === '~' || configured.startsWith('~/')) configured = path.join(os.homedir(), configured.slice(1));
    if (isExecutableFile(configured)) return configured;
    throw new LatchNotFound(`The latch binary set in \`latch.path\` (${configured}) does not exist or is not executable. ${INSTALL_HINT}`);
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'latch');
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new LatchNotFound(`latch was not found on PATH and \`latch.path\` is not set. ${INSTALL_HINT}`);
}

/** Shows why latch can't run, with a button that opens the `latch.path` setting. */
async function reportNotFound(err) {
  const open = 'Open latch.path Setting';
  const choice = await vscode.window.showErrorMessage(err.message, open);
  if (choice !== open) return;
  // latch.path is machine-overridable: in a remote window (SSH, containers, code-server)
  // its machine-wide value lives in the Remote settings, which the User tab does not show.
  const command = vscode.env.remoteName ? 'workbench.action.openRemoteSettings' : 'workbench.action.openSettings';
  await vscode.commands.executeCommand(command, { query: 'latch.path' });
}

/** `latch ps --json`: the processes this user may attach to. */
function listProcesses(latch) {
  return new Promise((resolve, reject) => {
    execFile(latch, ['ps', '--json'], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`\`${latch} ps --json\` failed: ${stderr.trim() || err.message}`));
      try {
        resolve(JSON.parse(stdout));
      } catch (parseErr) {
        reject(new Error(`\`${latch} ps --json\` printed something that is not JSON: ${parseErr.message}`));
      }
    });
  });
}

/**
 * The `latch.pickProcess` command behind `${command:pickProcess}`: the chosen pid as a
 * string (latch accepts numeric strings), or undefined when cancelled, which makes VS
 * Code abandon the launch.
 */
async function pickProcess() {
  let latch;
  try {
    latch = findLatch();
  } catch (err) {
    if (err instanceof LatchNotFound) await reportNotFound(err);
    else throw err;
    return undefined;
  }
  const quickPick = vscode.window.createQuickPick();
  quickPick.title = 'Attach to process (latch)';
  quickPick.placeholder = 'Pick the process to attach to (type to filter by name, pid, user or command line)';
  quickPick.matchOnDescription = true;
  quickPick.matchOnDetail = true;
  quickPick.busy = true;
  quickPick.show();
  const chosen = new Promise((resolve) => {
    quickPick.onDidAccept(() => resolve(quickPick.selectedItems[0]));
    quickPick.onDidHide(() => resolve(undefined));
  });
  try {
    quickPick.items = (await listProcesses(latch)).map(toQuickPickItem);
  } catch (err) {
    quickPick.dispose();
    vscode.window.showErrorMessage(err.message);
    return undefined;
  }
  quickPick.busy = false;
  const item = await chosen;
  quickPick.dispose();
  return item ? String(item.pid) : undefined;
}

/**
 * A child session's socket, checked: the path latch put in `latchChildSession` must be a
 * unix socket. Throws an Error saying what is wrong otherwise.
 */
function childSessionSocket(socket) {
  if (typeof socket !== 'string' || socket === '') {
    throw new Error(`latch: \`latchChildSession\` must be the path of latch's unix socket, not ${JSON.stringify(socket)}`);
  }
  let stat;
  try {
    stat = fs.statSync(socket);
  } catch (err) {
    throw new Error(`latch: the child session's socket ${socket} is gone (${err.code ?? err.message}): the latch that offered it has ended`);
  }
  if (!stat.isSocket()) throw new Error(`latch: ${socket} (\`latchChildSession\`) is not a unix socket`);
  return socket;
}

/**
 * Runs `latch dap` (DAP over stdio), except for a child session: a process the debuggee
 * forked, which latch offers through DAP's `startDebugging` with `latchChildSession` in
 * its configuration. VS Code runs that configuration through this factory like any
 * other; the child is held by the latch already running, so the session connects to its
 * socket instead of starting a new latch.
 */
class LatchAdapterFactory {
  createDebugAdapterDescriptor(session) {
    const child = session.configuration.latchChildSession;
    if (child !== undefined) return new vscode.DebugAdapterNamedPipeServer(childSessionSocket(child));
    // resolveDebugConfiguration already checked; this throws (and VS Code shows the
    // message) only if latch vanished in between.
    return new vscode.DebugAdapterExecutable(findLatch(), ['dap']);
  }
}

class LatchConfigurationProvider {
  /** Runs before `${command:pickProcess}` is substituted, so a missing binary is reported
   * before the picker would fail. */
  async resolveDebugConfiguration(folder, config) {
    // A child session from latch's `startDebugging`: complete as it is, and served by the
    // running latch (no binary needed).
    if (config.latchChildSession !== undefined) return config;
    // F5 with no launch.json (or an empty one): VS Code passes {} (or just the type
    // chosen from its debugger list): attach to a picked process.
    if (!config.request && !config.name) {
      config = { type: 'latch', request: 'attach', name: 'latch: attach to a process', pid: '${command:pickProcess}' };
    }
    // An attach that names no target: pick one rather than fail.
    if (config.request === 'attach' && config.pid === undefined && config.processId === undefined && !config.waitFor) {
      config.pid = '${command:pickProcess}';
    }
    try {
      findLatch();
    } catch (err) {
      if (!(err instanceof LatchNotFound)) throw err;
      await reportNotFound(err);
      return undefined; // abandons the launch; the message says why
    }
    return config;
  }
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('latch.pickProcess', pickProcess),
    vscode.debug.registerDebugAdapterDescriptorFactory('latch', new LatchAdapterFactory()),
    vscode.debug.registerDebugConfigurationProvider('latch', new LatchConfigurationProvider()),
  );
}

function deactivate() {}

// The factory and the provider are exported for test/extension.test.mjs.
module.exports = { activate, deactivate, LatchAdapterFactory, LatchConfigurationProvider };

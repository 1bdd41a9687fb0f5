// latch driven by Microsoft's DebugClient (@vscode/debugadapter-testsupport), the client
// VS Code's own adapters are tested with: attach by pid, threads, pause, continue,
// disconnect; stack traces, registers, sources and modules; a Go program's goroutines
// as its threads; waitFor; clients of a
// `latch dap --listen --accept-multiclient` server over TCP; and launch: output events,
// exit codes, `runInTerminal` and a followed fork's child session over latch's socket
// (the reverse requests answered here, as an editor does). Targets are the e2e
// fixtures, built here with cc.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, copyFileSync, rmSync, openSync, readSync, closeSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { DebugClient } from '@vscode/debugadapter-testsupport';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const latch = process.env.LATCH_BIN ?? join(root, 'target', 'debug', 'latch');
const work = mkdtempSync(join(tmpdir(), 'latch-dc-'));
const sleeping = join(work, 'sleeping');
const sleepingSource = join(root, 'tests', 'fixtures', 'sleeping.c');
// The same program built from a copy of its sources that is deleted afterwards: its
// frames name files that are not on this machine.
const moved = join(work, 'moved');
const movedSources = join(work, 'moved-src');

// The stepping fixture (work() every 20 ms with `loop`) and its library without lines.
const stepping = join(work, 'stepping');
const steppingSource = join(root, 'tests', 'fixtures', 'breakpoints', 'stepping.c');

// The program the launch tests start (tests/fixtures/launchee.c).
const valuesProgram = join(work, 'values-stopped');
const valuesSource = join(root, 'tests', 'fixtures', 'values', 'stopped.c');
const launchee = join(work, 'launchee');
const launcheeSource = join(root, 'tests', 'fixtures', 'launchee.c');

/** The line of the unique `line:NAME` marker in a fixture's source. */
function markerLine(path, name) {
  const lines = readFileSync(path, 'utf8').split('\n');
  const found = lines.flatMap((text, i) => (new RegExp(`line:${name}(\\s|\\*|$)`).test(text) ? [i + 1] : []));
  assert.equal(found.length, 1, `marker line:${name} in ${path}`);
  return found[0];
}

/** The bytes of the file mapped at `address` in process `pid`, as the file has them. */
function fileBytesAt(pid, address, length) {
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const [start, end, offset] = [BigInt('0x' + m[1]), BigInt('0x' + m[2]), BigInt('0x' + m[3])];
    if (address >= start && address < end) {
      const at = Number(address - start + offset);
      return readFileSync(m[4]).subarray(at, at + length);
    }
  }
  assert.fail(`no file mapped at ${address.toString(16)} in ${pid}`);
}

function memoryAt(pid, address, length) {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, address);
    return buffer;
  } finally {
    closeSync(fd);
  }
}

before(() => {
  execFileSync('cc', ['-O0', '-g0', '-shared', '-fPIC', '-o', join(work, 'libstepnolines.so'),
    join(root, 'tests', 'fixtures', 'breakpoints', 'nolines.c')]);
  execFileSync('cc', ['-O0', '-g', '-pthread', '-o', stepping, steppingSource, `-L${work}`, '-lstepnolines', `-Wl,-rpath,${work}`]);
  execFileSync('cc', ['-O1', '-g', '-pthread', '-o', sleeping, sleepingSource]);
  execFileSync('cc', ['-O0', '-g', '-Wall', '-o', launchee, launcheeSource]);
  execFileSync('cc', ['-O0', '-g', '-pthread', '-o', valuesProgram, valuesSource]);
  mkdirSync(movedSources);
  for (const file of ['sleeping.c', 'common.h']) copyFileSync(join(root, 'tests', 'fixtures', file), join(movedSources, file));
  execFileSync('cc', ['-O1', '-g', '-pthread', '-o', moved, join(movedSources, 'sleeping.c')]);
  rmSync(movedSources, { recursive: true });
});

const started = [];
after(() => { for (const child of started) child.kill('SIGKILL'); });

/** Starts a fixture and resolves with it once it prints `ready <pid>`. */
function startTarget(path, args, env = {}) {
  const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  started.push(child);
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path} never printed ready`)), 10000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('ready')) { clearTimeout(timer); resolveReady(child); }
    });
  });
}

function procTasks(pid) {
  return readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
}

function taskStatus(pid, tid) {
  const text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
  return {
    state: /^State:\s+(\S)/m.exec(text)[1],
    tracer: Number(/^TracerPid:\s+(\d+)/m.exec(text)[1]),
  };
}

/** After detach: no thread stopped or traced (polled briefly: detach is asynchronous). */
async function assertRunsOn(pid) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const bad = procTasks(pid).map((tid) => ({ tid, ...taskStatus(pid, tid) }))
      .filter((t) => t.tracer !== 0 || t.state === 't' || t.state === 'T');
    if (bad.length === 0) return;
    if (Date.now() > deadline) assert.fail(`threads still stopped or traced: ${JSON.stringify(bad)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The user stack pointer and program counter of a thread that is not running, as the
 * kernel reports them (the last two fields of /proc/PID/task/TID/syscall). */
function kernelSpPc(pid, tid) {
  const text = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').trim();
  const fields = text.split(/\s+/);
  assert.ok(fields.length >= 3 && fields.at(-1).startsWith('0x'), `no sp and pc in /proc/${pid}/task/${tid}/syscall: ${text}`);
  return { sp: BigInt(fields.at(-2)), pc: BigInt(fields.at(-1)) };
}

/** The fixture's heartbeat counter, kept in the file LATCH_HEARTBEAT names. */
function heartbeat(path) {
  return readFileSync(path).readBigUInt64LE(0);
}

/** The target runs: no thread stopped, and its heartbeat goes on (polled, with a deadline). */
async function assertRunning(pid, heartbeatPath) {
  const deadline = Date.now() + 5000;
  const start = heartbeat(heartbeatPath);
  for (;;) {
    const stopped = procTasks(pid).map((tid) => ({ tid, ...taskStatus(pid, tid) }))
      .filter((t) => t.state === 't' || t.state === 'T');
    if (stopped.length === 0 && heartbeat(heartbeatPath) >= start + 3n) return;
    if (Date.now() > deadline) {
      assert.fail(`not running: stopped threads ${JSON.stringify(stopped)}, heartbeat ${start} -> ${heartbeat(heartbeatPath)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function newClient() {
  const dc = new DebugClient(latch, 'dap', 'latch');
  dc.defaultTimeout = 10000;
  await dc.start();
  await dc.initializeRequest({ adapterID: 'latch', clientID: 'debugclient', supportsProgressReporting: true });
  return dc;
}

/** The attach response comes after configurationDone, which follows `initialized`. */
function attach(dc, args) {
  return Promise.all([
    dc.attachRequest(args),
    dc.waitForEvent('initialized').then(() => dc.configurationDoneRequest()),
  ]);
}

test('attach by pid, threads, pause, continue, disconnect', async () => {
  const target = await startTarget(sleeping, ['4']);
  const pid = target.pid;
  const dc = await newClient();
  try {
    const entry = dc.waitForEvent('stopped');
    await attach(dc, { pid: String(pid), stopOnEntry: true });
    const stopped = await entry;
    assert.equal(stopped.body.reason, 'entry');
    assert.equal(stopped.body.threadId, pid);
    const threads = (await dc.threadsRequest()).body.threads;
    assert.deepEqual(threads.map((t) => t.id).sort((a, b) => a - b), procTasks(pid));
    assert.match(threads.find((t) => t.id === pid).name, /\[main\]$/);
    for (const tid of procTasks(pid)) assert.equal(taskStatus(pid, tid).state, 't');

    await dc.continueRequest({ threadId: pid });
    const paused = dc.waitForEvent('stopped');
    await dc.pauseRequest({ threadId: pid });
    assert.equal((await paused).body.reason, 'pause');
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
  } finally {
    await dc.stop();
  }
});

test('a Go program: its threads are its goroutines, and a parked one\'s stack ends where it was created', async () => {
  // tests/fixtures/goroutines, built with the Go in PATH: it creates its third argument
  // once every goroutine waits where it should.
  const bin = join(work, 'goroutines');
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: join(root, 'tests', 'fixtures', 'goroutines'),
    env: { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off' },
  });
  const ready = join(work, 'goroutines-ready');
  const child = spawn(bin, ['5', join(work, 'goroutines-dump'), ready], { stdio: 'ignore' });
  started.push(child);
  const deadline = Date.now() + 30000;
  while (!existsSync(ready)) {
    assert.ok(Date.now() < deadline, 'the goroutines fixture never got ready');
    await new Promise((r) => setTimeout(r, 20));
  }
  const pid = child.pid;
  const dc = await newClient();
  try {
    const entry = dc.waitForEvent('stopped');
    await attach(dc, { pid: String(pid), stopOnEntry: true });
    await entry;
    const threads = (await dc.threadsRequest()).body.threads;
    const goroutines = threads.filter((t) => t.id > 2 ** 22);
    assert.ok(goroutines.length >= 15, `goroutines listed: ${JSON.stringify(threads)}`);
    const idle = goroutines.filter((t) => /^goroutine \d+ \[chan receive\]: main\.idle$/.test(t.name));
    assert.equal(idle.length, 5, JSON.stringify(threads));
    const frames = (await dc.stackTraceRequest({ threadId: idle[0].id })).body.stackFrames;
    const names = frames.map((f) => f.name);
    assert.ok(names.includes('main.idle'), JSON.stringify(names));
    assert.match(names.at(-1), /^created by main\.startIdle/);
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
  } finally {
    await dc.stop();
  }
});

test('a Go program: next over a sleep ends on the goroutine that stepped, though eight run the same loop', async () => {
  // tests/fixtures/gostep: eight goroutines in one loop that sleeps; built with the Go in PATH.
  const dir = join(root, 'tests', 'fixtures', 'gostep');
  const bin = join(work, 'gostep');
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: dir, env: { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off' } });
  const source = join(dir, 'main.go');
  const [sleepLine, afterLine] = [markerLine(source, 'gostep_sleep'), markerLine(source, 'gostep_after')];
  const target = await startTarget(bin, []);
  const pid = target.pid;
  const dc = await newClient();
  try {
    await attach(dc, { pid });
    for (let round = 0; round < 3; round++) {
      const hit = dc.waitForEvent('stopped');
      await dc.setBreakpointsRequest({ source: { path: source }, breakpoints: [{ line: sleepLine }] });
      const stopped = (await hit).body;
      assert.equal(stopped.reason, 'breakpoint', JSON.stringify(stopped));
      assert.ok(stopped.threadId > 2 ** 22, `a goroutine id: ${JSON.stringify(stopped)}`);
      await dc.setBreakpointsRequest({ source: { path: source }, breakpoints: [] });
      const stepped = dc.waitForEvent('stopped');
      await dc.nextRequest({ threadId: stopped.threadId });
      const step = (await stepped).body;
      assert.equal(step.reason, 'step', JSON.stringify(step));
      assert.equal(step.threadId, stopped.threadId, `round ${round}: the step ended on another goroutine`);
      const [top] = (await dc.stackTraceRequest({ threadId: step.threadId, levels: 1 })).body.stackFrames;
      assert.deepEqual([top.name, top.line], ['main.worker', afterLine]);
      // Its variables, from Go's DWARF: x = work(id) = id * 2.
      const [args, locals] = (await dc.scopesRequest({ frameId: top.id })).body.scopes;
      const id = (await dc.variablesRequest({ variablesReference: args.variablesReference })).body.variables.find((v) => v.name === 'id');
      const x = (await dc.variablesRequest({ variablesReference: locals.variablesReference })).body.variables.find((v) => v.name === 'x');
      assert.equal(x.type, 'int', JSON.stringify(x));
      assert.equal(Number(x.value), Number(id.value) * 2, `${JSON.stringify(id)} ${JSON.stringify(x)}`);
      await dc.continueRequest({ threadId: step.threadId });
    }
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
  } finally {
    await dc.stop();
  }
});

test('a stopped frame shows its arguments, locals and globals; watch and hover expressions are evaluated', async () => {
  const target = await startTarget(valuesProgram, []);
  const pid = target.pid;
  const dc = await newClient();
  try {
    await attach(dc, { pid });
    const hit = dc.waitForEvent('stopped');
    await dc.setBreakpointsRequest({ source: { path: valuesSource }, breakpoints: [{ line: markerLine(valuesSource, 'probe_stop') }] });
    const { threadId } = (await hit).body;
    const [frame] = (await dc.stackTraceRequest({ threadId, levels: 1 })).body.stackFrames;
    assert.equal(frame.name, 'probe');
    const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
    assert.deepEqual(scopes.map((s) => s.name), ['Arguments', 'Locals', 'Globals', 'Module globals', 'Registers']);
    const byName = async (ref) => Object.fromEntries((await dc.variablesRequest({ variablesReference: ref })).body.variables.map((v) => [v.name, v]));
    const args = await byName(scopes[0].variablesReference);
    assert.equal(args.round.value, '7');
    assert.equal(args.where.value, '{x = 10, y = 20}');
    const locals = await byName(scopes[1].variablesReference);
    assert.equal(locals.letter.value, "81 'Q'");
    assert.equal(locals.numbers.indexedVariables, 5);
    const head = await byName(locals.head.variablesReference);
    assert.equal(head.color.value, 'GREEN');
    const globals = await byName(scopes[2].variablesReference);
    assert.equal(globals.global_count.value, '42');
    for (const context of ['watch', 'hover', 'repl']) {
      const r = await dc.evaluateRequest({ expression: 'head.corners[1].y * 2', frameId: frame.id, context });
      assert.equal(r.body.result, '10', context);
    }
    // DebugClient rejects with the response's short message; the editor shows body.error.
    await assert.rejects(dc.evaluateRequest({ expression: 'nope', frameId: frame.id, context: 'watch' }), /cannot evaluate/);
    // The memory view of an array, and the disassembly view around the pc.
    const memory = (await dc.customRequest('readMemory', { memoryReference: locals.numbers.memoryReference, count: 20 })).body;
    const bytes = Buffer.from(memory.data, 'base64');
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => bytes.readInt32LE(i * 4)), [1, 1, 2, 3, 5]);
    const listing = (await dc.customRequest('disassemble', { memoryReference: frame.instructionPointerReference, instructionOffset: -2, instructionCount: 5 })).body.instructions;
    assert.equal(listing.length, 5);
    assert.equal(BigInt(listing[2].address), BigInt(frame.instructionPointerReference), JSON.stringify(listing));
    assert.equal(listing[2].symbol, 'probe');
    await dc.setBreakpointsRequest({ source: { path: valuesSource }, breakpoints: [] });
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
  } finally {
    await dc.stop();
  }
});

test('a condition decides at each hit, a logpoint shows values, a variable is set, the console completes', async () => {
  const target = await startTarget(valuesProgram, []);
  const pid = target.pid;
  const dc = await newClient();
  try {
    await attach(dc, { pid });
    const outputs = [];
    dc.on('output', (e) => outputs.push(e.body.output));
    const stopLine = markerLine(valuesSource, 'probe_stop');
    const stops = [];
    dc.on('stopped', (e) => stops.push(e.body));
    // A logpoint on the line before, and a condition that never holds (round is 7).
    const set = await dc.setBreakpointsRequest({ source: { path: valuesSource }, breakpoints: [
      { line: stopLine - 1, logMessage: 'round {round}, {label}, head {head.name}' },
      { line: stopLine, condition: 'round == 8' },
    ] });
    assert.deepEqual(set.body.breakpoints.map((b) => b.verified), [true, true], JSON.stringify(set.body));
    while (outputs.filter((o) => o.startsWith('round 7, ')).length < 3) await once(dc, 'output');
    assert.match(outputs.find((o) => o.startsWith('round 7, ')), /^round 7, 0x[0-9a-f]+ "label", head 0x[0-9a-f]+ "head"\n$/);
    assert.deepEqual(stops, [], 'the false condition stopped the program');
    // A condition that holds, reading through pointers: the program stops there.
    const hit = dc.waitForEvent('stopped');
    const again = await dc.setBreakpointsRequest({ source: { path: valuesSource }, breakpoints: [
      { line: stopLine, condition: 'round == 7 && cursor->next->color == RED' },
    ] });
    assert.equal(again.body.breakpoints[0].verified, true);
    const { threadId } = (await hit).body;
    const [frame] = (await dc.stackTraceRequest({ threadId, levels: 1 })).body.stackFrames;
    const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
    const set2 = await dc.setVariableRequest({ variablesReference: scopes[1].variablesReference, name: 'small', value: '-100' });
    assert.equal(set2.body.value, '-100');
    const r = await dc.evaluateRequest({ expression: 'small * 2', frameId: frame.id, context: 'repl' });
    assert.equal(r.body.result, '-200');
    const completions = (await dc.customRequest('completions', { text: 'cursor->ne', column: 11, frameId: frame.id })).body.targets;
    assert.deepEqual(completions.map((t) => t.label), ['next']);
    const bad = await dc.setBreakpointsRequest({ source: { path: valuesSource }, breakpoints: [{ line: stopLine, condition: 'rund == 7' }] });
    assert.equal(bad.body.breakpoints[0].verified, false);
    assert.match(bad.body.breakpoints[0].message, /no variable named 'rund'/);
    await dc.setBreakpointsRequest({ source: { path: valuesSource }, breakpoints: [] });
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
  } finally {
    await dc.stop();
  }
});

test('a line breakpoint set while configuring hits, next steps one line, the code is whole after disconnect', async () => {
  const target = await startTarget(stepping, ['loop']);
  const pid = target.pid;
  const dc = await newClient();
  try {
    const startLine = markerLine(steppingSource, 'work_start');
    const attached = dc.attachRequest({ pid });
    await dc.waitForEvent('initialized');
    const set = await dc.setBreakpointsRequest({ source: { path: steppingSource }, breakpoints: [{ line: startLine }] });
    const [bp] = set.body.breakpoints;
    assert.equal(bp.verified, true, JSON.stringify(bp));
    assert.equal(bp.line, startLine);
    const hit = dc.waitForEvent('stopped');
    await dc.configurationDoneRequest();
    await attached;
    const stopped = (await hit).body;
    assert.equal(stopped.reason, 'breakpoint');
    assert.deepEqual(stopped.hitBreakpointIds, [bp.id]);
    assert.equal(stopped.threadId, pid, 'the main thread calls work()');
    const top = async () => (await dc.stackTraceRequest({ threadId: pid, startFrame: 0, levels: 1 })).body.stackFrames[0];
    const first = await top();
    assert.deepEqual([first.name, first.line, first.source.path], ['work', startLine, steppingSource]);
    // The breakpoint's int3 is in memory now; what the editor reads must not matter.
    const address = BigInt(bp.instructionReference);
    assert.equal(memoryAt(pid, address, 1)[0], 0xcc, 'no int3 at the breakpoint');

    const stepped = dc.waitForEvent('stopped');
    await dc.nextRequest({ threadId: pid });
    assert.equal((await stepped).body.reason, 'step');
    const second = await top();
    assert.deepEqual([second.name, second.line], ['work', markerLine(steppingSource, 'work_inline')]);

    await dc.continueRequest({ threadId: pid });
    const again = dc.waitForEvent('stopped');
    assert.equal((await again).body.reason, 'breakpoint', 'the breakpoint hits again on the next call');
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
    assert.deepEqual(memoryAt(pid, address, 16), fileBytesAt(pid, address, 16), 'the code differs from the file after disconnect');
  } finally {
    await dc.stop();
  }
});

test('stack trace, registers, source and modules of a stopped thread', async () => {
  const target = await startTarget(sleeping, ['2']);
  const pid = target.pid;
  const dc = await newClient();
  try {
    const entry = dc.waitForEvent('stopped');
    const module = dc.waitForEvent('module');
    await attach(dc, { pid, stopOnEntry: true });
    await entry;
    assert.equal((await module).body.reason, 'new');

    // The way VS Code asks: the first frame, then the rest.
    const first = (await dc.stackTraceRequest({ threadId: pid, startFrame: 0, levels: 1 })).body;
    assert.equal(first.stackFrames.length, 1);
    const all = (await dc.stackTraceRequest({ threadId: pid, startFrame: 0, levels: 20 })).body;
    assert.equal(all.totalFrames, first.totalFrames);
    const main = all.stackFrames.find((f) => f.name === 'main');
    assert.ok(main, `no main in ${JSON.stringify(all.stackFrames.map((f) => f.name))}`);
    assert.equal(main.source.name, 'sleeping.c');
    // On this machine: shown by path, no reference to ask for.
    assert.equal(main.source.path, sleepingSource);
    assert.equal(main.source.sourceReference ?? 0, 0);
    assert.ok(main.line > 0);

    const scopes = (await dc.scopesRequest({ frameId: all.stackFrames[0].id })).body.scopes;
    // Arguments, Locals and Globals come first when DWARF describes the frame.
    const registersScope = scopes.find((s) => s.name === 'Registers');
    assert.ok(registersScope, JSON.stringify(scopes));
    const registers = (await dc.variablesRequest({ variablesReference: registersScope.variablesReference })).body.variables;
    const register = (name) => {
      const found = registers.find((v) => v.name === name);
      assert.ok(found, `no ${name} in ${JSON.stringify(registers.map((v) => v.name))}`);
      return BigInt(found.value);
    };
    assert.equal(register('rip'), BigInt(all.stackFrames[0].instructionPointerReference));
    // The kernel's view of the stopped thread, not latch's own.
    const kernel = kernelSpPc(pid, pid);
    assert.deepEqual({ sp: register('rsp'), pc: register('rip') }, kernel);

    const modules = (await dc.customRequest('modules', {})).body.modules;
    assert.ok(modules.some((m) => m.path === sleeping), JSON.stringify(modules.map((m) => m.path)));
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
  } finally {
    await dc.stop();
  }
});

test('a frame whose source is not on this machine carries a reference the client can open', async () => {
  const target = await startTarget(moved, ['1']);
  const pid = target.pid;
  const dc = await newClient();
  try {
    const entry = dc.waitForEvent('stopped');
    await attach(dc, { pid, stopOnEntry: true });
    await entry;
    const frames = (await dc.stackTraceRequest({ threadId: pid, startFrame: 0, levels: 20 })).body.stackFrames;
    const main = frames.find((f) => f.name === 'main');
    assert.ok(main, `no main in ${JSON.stringify(frames.map((f) => f.name))}`);
    assert.equal(main.source.name, 'sleeping.c');
    assert.ok(main.source.sourceReference > 0, `no sourceReference: ${JSON.stringify(main.source)}`);
    const content = (await dc.sourceRequest({ source: main.source, sourceReference: main.source.sourceReference })).body.content;
    assert.match(content, /not on this machine/);
    assert.ok(content.includes(join(movedSources, 'sleeping.c')), content);
    await dc.disconnectRequest({});
    await assertRunsOn(pid);
  } finally {
    await dc.stop();
  }
});

test('waitFor catches a process that starts after the request', async () => {
  const name = `dcwait${process.pid}`;
  const copy = join(work, name);
  copyFileSync(sleeping, copy);
  execFileSync('chmod', ['+x', copy]);
  const dc = await newClient();
  try {
    const output = dc.waitForEvent('output');
    const processEvent = dc.waitForEvent('process');
    const attached = attach(dc, { waitFor: name, waitForTimeout: 10000 });
    assert.match((await output).body.output, new RegExp(`waiting for a process named '${name}'`));
    const target = await startTarget(copy, ['2']);
    await attached;
    const process_ = await processEvent;
    assert.equal(process_.body.systemProcessId, target.pid);
    await dc.disconnectRequest({});
    await assertRunsOn(target.pid);
  } finally {
    await dc.stop();
  }
});

/** Starts `latch dap --listen 127.0.0.1:0 ...` and resolves with it and its port. */
function startServer(extra) {
  const server = spawn(latch, ['dap', '--listen', '127.0.0.1:0', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(server);
  return new Promise((resolveListening, reject) => {
    const timer = setTimeout(() => reject(new Error('latch --listen never announced its port')), 10000);
    createInterface({ input: server.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const port = /listening at 127\.0\.0\.1:(\d+)/.exec(line);
      if (port) resolveListening({ server, port: Number(port[1]) });
      else reject(new Error(`unexpected announcement: ${line}`));
    });
  });
}

test('over a socket, clients one after another share the attached process', async () => {
  const heartbeatPath = join(work, `heartbeat-${process.pid}`);
  const target = await startTarget(sleeping, ['2'], { LATCH_HEARTBEAT: heartbeatPath });
  const pid = target.pid;
  const { server, port } = await startServer(['--accept-multiclient']);
  for (const round of [1, 2]) {
    const dc = new DebugClient(latch, 'dap', 'latch');
    dc.defaultTimeout = 10000;
    await dc.start(port);
    try {
      await dc.initializeRequest({ adapterID: 'latch', clientID: `debugclient-${round}` });
      const entry = dc.waitForEvent('stopped');
      await attach(dc, { pid, stopOnEntry: true });
      assert.equal((await entry).body.reason, 'entry');
      const threads = (await dc.threadsRequest()).body.threads;
      assert.deepEqual(threads.map((t) => t.id).sort((a, b) => a - b), procTasks(pid));
      await dc.disconnectRequest({});
    } finally {
      await dc.stop();
    }
    // Between clients the process runs (no thread stopped, its heartbeat goes on),
    // still traced by the server. (TracerPid names latch's ptrace thread; its Tgid is
    // the server.)
    await assertRunning(pid, heartbeatPath);
    for (const tid of procTasks(pid)) {
      const tracer = taskStatus(pid, tid).tracer;
      const tgid = Number(/^Tgid:\s+(\d+)/m.exec(readFileSync(`/proc/${tracer}/status`, 'utf8'))[1]);
      assert.equal(tgid, server.pid);
    }
  }
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  await exited;
  await assertRunsOn(pid);
});

/** A promise awaited later: its rejection (a timeout, after the test failed earlier) must
 * not surface as an unhandled rejection in another test. */
function pending(promise) {
  promise.catch(() => {});
  return promise;
}

/**
 * DebugClient with reverse requests: DebugClient's dispatch takes every message that is
 * not an event for a response and drops latch's requests (`runInTerminal`,
 * `startDebugging`). This one emits them as `reverse:<command>` and answers them, as an
 * editor does.
 */
class EditorClient extends DebugClient {
  dispatch(body) {
    const message = JSON.parse(body);
    if (message.type === 'request') this.emit(`reverse:${message.command}`, message);
    else super.dispatch(body);
  }

  /** Resolves with the next reverse request `command` (rejects after defaultTimeout). */
  waitForReverseRequest(command) {
    return this.waitForEvent(`reverse:${command}`);
  }

  respond(request, body, error) {
    const response = { type: 'response', seq: this.sequence++, request_seq: request.seq, command: request.command, success: !error };
    if (error) response.message = error;
    if (body !== undefined) response.body = body;
    const json = JSON.stringify(response);
    this.outputStream.write(`Content-Length: ${Buffer.byteLength(json, 'utf8')}\r\n\r\n${json}`, 'utf8');
  }
}

async function newEditorClient(capabilities = {}, spawnOptions = undefined) {
  const dc = new EditorClient(latch, 'dap', 'latch', spawnOptions);
  dc.defaultTimeout = 10000;
  await dc.start();
  await dc.initializeRequest({ adapterID: 'latch', clientID: 'debugclient', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path', ...capabilities });
  return dc;
}

/** The launch response comes after configurationDone, which follows `initialized`. */
function launch(dc, args) {
  return Promise.all([
    dc.launchRequest(args),
    dc.waitForEvent('initialized').then(() => dc.configurationDoneRequest()),
  ]).then(([response]) => response);
}

/** Collects `output` events by category; `until(category, text)` resolves once that
 * category's output so far equals `text` (rejects when it can no longer, or after the
 * client's timeout). */
function outputOf(dc) {
  const seen = {};
  const waiters = [];
  const settle = () => {
    for (const w of [...waiters]) {
      const got = seen[w.category] ?? '';
      if (got === w.text) w.resolve(got);
      else if (!w.text.startsWith(got)) w.reject(new Error(`${w.category} output ${JSON.stringify(got)} is not a prefix of ${JSON.stringify(w.text)}`));
      else continue;
      clearTimeout(w.timer);
      waiters.splice(waiters.indexOf(w), 1);
    }
  };
  dc.on('output', (e) => {
    const category = e.body.category ?? 'console';
    seen[category] = (seen[category] ?? '') + e.body.output;
    settle();
  });
  return {
    seen,
    until(category, text) {
      return new Promise((resolveText, reject) => {
        const w = { category, text, resolve: resolveText, reject };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`${category} output is ${JSON.stringify(seen[category] ?? '')}, not ${JSON.stringify(text)}, after ${dc.defaultTimeout} ms`));
        }, dc.defaultTimeout);
        waiters.push(w);
        settle();
      });
    },
  };
}

/** What launchee prints on stdout for these arguments, greeting and cwd. */
function launcheeStdout(args, greeting, cwd) {
  return args.map((a, i) => `arg ${i + 1}: ${a}\n`).join('') + `greeting: ${greeting}\ncwd: ${cwd}\n`;
}

/** Whether no process has `pid` any more, or it is a zombie no one traces. */
function gone(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return /^State:\s+Z/m.test(status) && /^TracerPid:\s+0$/m.test(status);
  } catch {
    return true;
  }
}

test('launch: args, cwd and env reach the program, stopAtMain stops in main, its stdout and stderr come as output, exited has its code', async () => {
  const dc = await newEditorClient();
  try {
    const output = outputOf(dc);
    const stopped = pending(dc.waitForEvent('stopped'));
    const processEvent = pending(dc.waitForEvent('process'));
    const args = ['one', 'two words', ''];
    await launch(dc, { program: launchee, args, cwd: work, env: { LAUNCHEE_GREETING: 'from the DebugClient', LAUNCHEE_EXIT: '3' }, stopAtMain: true });
    const stop = (await stopped).body;
    const pid = (await processEvent).body.systemProcessId;
    assert.ok(pid > 0, 'no systemProcessId in the process event');
    assert.equal(stop.threadId, pid, 'the stop is on the program\'s main thread');
    const frames = (await dc.stackTraceRequest({ threadId: stop.threadId, startFrame: 0, levels: 20 })).body.stackFrames;
    assert.equal(frames[0].name, 'main', JSON.stringify(frames.map((f) => f.name)));
    assert.equal(frames[0].source?.path, launcheeSource);
    // Stopped in main: traced by latch, and nothing printed yet.
    assert.equal(taskStatus(pid, pid).state, 't');
    assert.equal(output.seen.stdout ?? '', '', 'the program printed before main');

    const exited = pending(dc.waitForEvent('exited'));
    const terminated = pending(dc.waitForEvent('terminated'));
    await dc.continueRequest({ threadId: stop.threadId });
    assert.equal((await exited).body.exitCode, 3);
    await output.until('stdout', launcheeStdout(args, 'from the DebugClient', work));
    await output.until('stderr', 'launchee stderr\n');
    await terminated;
    await dc.disconnectRequest({});
    assert.ok(gone(pid), `the program ${pid} is still there`);
  } finally {
    await dc.stop();
  }
});

test('launch: env merges over latch\'s environment and null removes a variable', async () => {
  // latch itself runs with LAUNCHEE_GREETING set.
  const spawnOptions = { env: { ...process.env, LAUNCHEE_GREETING: 'from latch\'s environment' } };
  for (const [env, greeting] of [[{}, 'from latch\'s environment'], [{ LAUNCHEE_GREETING: null }, '(unset)']]) {
    const dc = await newEditorClient({}, spawnOptions);
    try {
      const output = outputOf(dc);
      const exited = pending(dc.waitForEvent('exited'));
      await launch(dc, { program: launchee, cwd: work, env });
      assert.equal((await exited).body.exitCode, 0);
      await output.until('stdout', launcheeStdout([], greeting, work));
      await dc.disconnectRequest({});
    } finally {
      await dc.stop();
    }
  }
});

test('launch with console integratedTerminal: latch asks the client to runInTerminal, the program started there runs under latch to its exit', async () => {
  const dc = await newEditorClient({ supportsRunInTerminalRequest: true });
  // The "terminal": the program's stdout and stderr go to this file.
  const terminal = join(work, `terminal-${process.pid}.txt`);
  const terminalFd = openSync(terminal, 'w');
  try {
    const ran = pending(dc.waitForReverseRequest('runInTerminal'));
    const stopped = pending(dc.waitForEvent('stopped'));
    const launched = pending(launch(dc, {
      program: launchee, args: ['in', 'a terminal'], cwd: work, console: 'integratedTerminal',
      env: { LAUNCHEE_GREETING: 'through runInTerminal', LAUNCHEE_EXIT: '4' }, stopAtMain: true,
    }));
    const request = await ran;
    const { kind, args, cwd, env } = request.arguments;
    assert.equal(kind, 'integrated');
    assert.ok(Array.isArray(args) && args.length > 0, JSON.stringify(request.arguments));
    // As VS Code's terminal does: the arguments in cwd, env over the terminal's own
    // environment with null removing.
    const childEnv = { ...process.env };
    for (const [k, v] of Object.entries(env ?? {})) {
      if (v === null) delete childEnv[k];
      else childEnv[k] = v;
    }
    const child = spawn(args[0], args.slice(1), { cwd: cwd || undefined, env: childEnv, detached: true, stdio: ['ignore', terminalFd, terminalFd] });
    started.push(child);
    child.unref();
    dc.respond(request, { processId: child.pid });
    await launched;

    const stop = (await stopped).body;
    const frames = (await dc.stackTraceRequest({ threadId: stop.threadId, startFrame: 0, levels: 1 })).body.stackFrames;
    assert.equal(frames[0].name, 'main');
    const exited = pending(dc.waitForEvent('exited'));
    const terminated = pending(dc.waitForEvent('terminated'));
    await dc.continueRequest({ threadId: stop.threadId });
    assert.equal((await exited).body.exitCode, 4);
    await terminated;
    assert.equal(readFileSync(terminal, 'utf8'), launcheeStdout(['in', 'a terminal'], 'through runInTerminal', work) + 'launchee stderr\n');
    await dc.disconnectRequest({});
  } finally {
    closeSync(terminalFd);
    await dc.stop();
  }
});

test('launch with followForks: the forked child comes as startDebugging, a second client attaches to it over latchChildSession\'s socket', async () => {
  // As VS Code: it handles startDebugging and says so.
  const dc = await newEditorClient({ supportsStartDebuggingRequest: true });
  const release = join(work, `release-${process.pid}`);
  rmSync(release, { force: true });
  let childClient;
  let socket;
  try {
    const output = outputOf(dc);
    const offered = pending(dc.waitForReverseRequest('startDebugging'));
    const parentProcess = pending(dc.waitForEvent('process'));
    const parentExited = pending(dc.waitForEvent('exited', 30000));
    await launch(dc, { program: launchee, args: ['fork'], cwd: work, env: { LAUNCHEE_RELEASE: release }, followForks: true });
    const parentPid = (await parentProcess).body.systemProcessId;

    const request = await offered;
    assert.equal(request.arguments.request, 'attach');
    const config = request.arguments.configuration;
    assert.equal(config.type, 'latch');
    assert.equal(config.request, 'attach');
    assert.ok(Number.isInteger(config.pid) && config.pid !== parentPid, JSON.stringify(config));
    // Named for the user: the program, the child's pid and its parent's.
    assert.match(config.name, new RegExp(`^launchee \\(pid ${config.pid}, [a-z ]+ ${parentPid}\\)$`));
    assert.ok(statSync(config.latchChildSession).isSocket(), `${config.latchChildSession} is not a socket`);
    // The child is the parent's, held by the same latch (no second latch started).
    assert.equal(Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${config.pid}/status`, 'utf8'))[1]), parentPid);

    // As VS Code does: a session of its own, over the socket, with the configuration
    // latch sent; then the answer to startDebugging.
    socket = createConnection(config.latchChildSession);
    await once(socket, 'connect');
    childClient = new EditorClient(latch, 'dap', 'latch');
    childClient.defaultTimeout = 10000;
    childClient.connect(socket, socket);
    dc.respond(request, {});
    await childClient.initializeRequest({ adapterID: 'latch', clientID: 'debugclient-child', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
    const childProcess = pending(childClient.waitForEvent('process'));
    const childExited = pending(childClient.waitForEvent('exited', 30000));
    await attach(childClient, config);
    assert.equal((await childProcess).body.systemProcessId, config.pid);
    const threads = (await childClient.threadsRequest()).body.threads;
    assert.deepEqual(threads.map((t) => t.id), [config.pid]);

    // Let the child end: it exits 7, the parent reaps it, prints so and exits 0.
    writeFileSync(release, '');
    assert.equal((await childExited).body.exitCode, 7);
    assert.equal((await parentExited).body.exitCode, 0);
    await output.until('stdout', `${launcheeStdout(['fork'], '(unset)', work)}child ${config.pid}\nchild exited 7\n`);
    await childClient.disconnectRequest({}).catch(() => {});
    await dc.disconnectRequest({});
    assert.ok(gone(config.pid) && gone(parentPid), 'a process is left');
  } finally {
    socket?.destroy();
    await dc.stop();
  }
});

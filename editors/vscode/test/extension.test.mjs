// The extension without a VS Code: package.json's attach and launch attributes equal the
// schemas, its snippets and initial configurations are valid configurations of their
// request, the adapter factory connects child sessions to latch's socket, the process
// picker's rows come from the real `latch ps --json`, and it packages to a .vsix.
// (test/e2e/ runs it in a real VS Code.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expectedAttributes, extensionDir, latchDebugger, manifestPath, requests } from '../scripts/sync-schema.mjs';

const require = createRequire(import.meta.url);
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const dbg = latchDebugger(manifest);
const root = join(extensionDir, '..', '..');
const latch = process.env.LATCH_BIN ?? join(root, 'target', 'debug', 'latch');
// A test that cannot run fails, unless LATCH_ALLOW_SKIP is set outside CI (the rule of
// tests/skip.rs): node's runner counts a skipped test as passed.
const flag = (name) => { const v = (process.env[name] ?? '').trim().toLowerCase(); return !['', '0', 'false'].includes(v); };
const skipAllowed = flag('LATCH_ALLOW_SKIP') && !flag('CI');
const noLatch = !existsSync(latch) && `no latch binary at ${latch} (run \`cargo build\`)`;

test('configurationAttributes.attach and .launch equal schemas/attach.schema.json and schemas/launch.schema.json', () => {
  assert.deepEqual(requests, ['attach', 'launch']);
  assert.deepEqual(Object.keys(dbg.configurationAttributes).sort(), requests);
  for (const request of requests) {
    assert.deepEqual(
      dbg.configurationAttributes[request],
      expectedAttributes(request),
      `package.json's ${request} attributes are out of date with schemas/${request}.schema.json: run \`node editors/vscode/scripts/sync-schema.mjs\``,
    );
  }
  // VS Code marks a launch configuration without `program` in launch.json.
  assert.deepEqual(dbg.configurationAttributes.launch.required, ['program']);
});

test('the debugger contribution: type, label, languages, pickProcess variable, command', () => {
  assert.equal(dbg.label, 'latch');
  assert.deepEqual(dbg.languages, ['c', 'cpp', 'rust', 'go', 'zig']);
  assert.deepEqual(dbg.variables, { pickProcess: 'latch.pickProcess' });
  assert.ok(manifest.contributes.commands.some((c) => c.command === 'latch.pickProcess'));
  assert.ok(manifest.contributes.configuration.properties['latch.path']);
});

test('breakpoints may be set in the languages latch debugs', () => {
  // Without this contribution VS Code offers no breakpoint gutter in those files unless
  // another debugger happens to declare them.
  assert.deepEqual(manifest.contributes.breakpoints.map((b) => b.language), dbg.languages);
});

/** Every key is a property of its request's schema (or a key VS Code itself reads), the
 * schema's required keys are there, and an attach names a target. */
function assertValid(config, where) {
  const attributes = dbg.configurationAttributes[config.request];
  assert.ok(attributes, `${where}: request ${config.request} is neither attach nor launch`);
  const vscodeKeys = new Set(['type', 'request', 'name']);
  assert.equal(config.type, 'latch', where);
  for (const key of Object.keys(config)) {
    assert.ok(vscodeKeys.has(key) || key in attributes.properties, `${where}: ${key} is not a ${config.request} argument`);
  }
  for (const key of attributes.required ?? []) assert.ok(key in config, `${where}: the required ${key} is missing`);
  if (config.request === 'attach') assert.ok(config.pid !== undefined || config.waitFor !== undefined, `${where}: names no target`);
}

test('initialConfigurations and configurationSnippets are launch and attach configurations their schemas allow', () => {
  const kinds = (configs) => configs.map((c) => (c.request === 'launch' ? 'launch' : Object.keys(c).filter((k) => k === 'pid' || k === 'waitFor')[0]));
  assert.deepEqual(kinds(dbg.initialConfigurations), ['launch', 'pid', 'waitFor']);
  assert.deepEqual(kinds(dbg.configurationSnippets.map((s) => s.body)), ['launch', 'pid', 'waitFor']);
  dbg.initialConfigurations.forEach((c, i) => assertValid(c, `initialConfigurations[${i}]`));
  dbg.configurationSnippets.forEach((s, i) => assertValid(s.body, `configurationSnippets[${i}]`));
  assert.deepEqual(dbg.initialConfigurations[0], {
    type: 'latch', request: 'launch', name: 'latch: launch a program',
    program: '${workspaceFolder}/a.out', args: [], cwd: '${workspaceFolder}', stopAtMain: false,
  });
  assert.equal(dbg.configurationSnippets[0].label, 'latch: launch a program');
  assert.equal(dbg.initialConfigurations[1].pid, '${command:pickProcess}');
  // In a snippet body `^"..."` inserts the value unquoted-as-is and `\$` keeps VS Code's
  // snippet engine from eating the variable: the user gets "pid": "${command:pickProcess}".
  assert.equal(dbg.configurationSnippets[1].body.pid, '^"\\${command:pickProcess}"');
  assert.equal(dbg.configurationSnippets[0].body.program, '^"\\${workspaceFolder}/${1:a.out}"');
  assert.equal(dbg.configurationSnippets[0].body.cwd, '^"\\${workspaceFolder}"');
});

/** Just enough JSON Schema (type, enum, pattern, minimum, anyOf, items,
 * additionalProperties) to check a value the way VS Code's launch.json validation does,
 * for the keywords the attach and launch schemas use. */
function accepts(schema, value) {
  if (schema.anyOf && !schema.anyOf.some((s) => accepts(s, value))) return false;
  if (schema.enum && !schema.enum.includes(value)) return false;
  if (schema.type) {
    const types = [].concat(schema.type);
    const typeOf = value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
    if (!types.includes(typeOf) && !(typeOf === 'integer' && types.includes('number'))) return false;
  }
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) return false;
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) return false;
  if (Array.isArray(value) && schema.items && !value.every((v) => accepts(schema.items, v))) return false;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && typeof schema.additionalProperties === 'object') {
    if (!Object.values(value).every((v) => accepts(schema.additionalProperties, v))) return false;
  }
  return true;
}

test('the schemas accept the initial configurations as written, ${command:pickProcess} and ${workspaceFolder} included', () => {
  for (const config of dbg.initialConfigurations) {
    const { properties } = dbg.configurationAttributes[config.request];
    for (const [key, value] of Object.entries(config)) {
      if (key in properties) assert.ok(accepts(properties[key], value), `${config.name}: ${key}: ${JSON.stringify(value)} rejected`);
    }
  }
  // The checker itself rejects what the launch schema does not allow.
  const { properties } = dbg.configurationAttributes.launch;
  assert.ok(!accepts(properties.args, [1]), 'args of numbers accepted');
  assert.ok(!accepts(properties.env, { A: 1 }), 'an env value that is a number accepted');
  assert.ok(accepts(properties.env, { A: 'x', B: null }), 'env with a string and a null rejected');
  assert.ok(!accepts(properties.console, 'terminal'), 'an unknown console accepted');
});

test('process picker rows from the real `latch ps --json`, a traced process marked', { skip: skipAllowed && noLatch }, async () => {
  if (noLatch) assert.fail(`${noLatch}; set LATCH_ALLOW_SKIP=1 to skip this test`);
  const { toQuickPickItem } = require('../processes.js');
  // A real target, held stopped by a real `latch attach`, so it shows as traced.
  const work = mkdtempSync(join(tmpdir(), 'latch-vscode-ps-'));
  const sleeping = join(work, 'sleeping');
  execFileSync('cc', ['-O1', '-g', '-pthread', '-o', sleeping, join(root, 'tests', 'fixtures', 'sleeping.c')]);
  const target = spawn(sleeping, ['1'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const holder = [];
  try {
    await firstLine(target.stdout, /^ready/);
    const tracer = spawn(latch, ['attach', String(target.pid), '--hold', '60'], { stdio: ['ignore', 'pipe', 'inherit'] });
    holder.push(tracer);
    await firstLine(tracer.stdout, /^Thread /); // printed once it is attached
    const procs = JSON.parse(execFileSync(latch, ['ps', '--json'], { maxBuffer: 64 << 20 }));
    const item = toQuickPickItem(procs.find((p) => p.pid === target.pid));
    assert.equal(item.label, 'sleeping');
    // The tracing process by its own name and pid (not latch's ptrace thread).
    assert.equal(item.description.split(' · ').at(-1), `traced by latch (pid ${tracer.pid})`);
    assert.equal(item.detail, `${sleeping} 1`);
    assert.equal(item.pid, target.pid);
  } finally {
    for (const child of holder) child.kill('SIGINT'); // latch detaches on SIGINT
    target.kill('SIGKILL');
  }
});

test('packages to a .vsix with vsce', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'latch-vsix-')), 'latch.vsix');
  execFileSync(join(extensionDir, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '--allow-missing-repository', '-o', out], {
    cwd: extensionDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  assert.ok(statSync(out).size > 1000);
  const listing = execFileSync(join(extensionDir, 'node_modules', '.bin', 'vsce'), ['ls', '--no-dependencies'], { cwd: extensionDir, encoding: 'utf8' });
  for (const file of ['extension.js', 'processes.js', 'package.json', 'README.md', 'LICENSE']) {
    assert.ok(listing.split('\n').includes(file), `${file} missing from the package:\n${listing}`);
  }
  assert.ok(!/node_modules|test\//.test(listing), `the package holds test files or node_modules:\n${listing}`);

  // The README is the extension's page in the Marketplace, where vsce has turned every
  // relative link into one under the repository's root URL, without this folder's path:
  // `../../README.md` became a broken address, and so would `images/x.png`. So links and
  // images are absolute, and an image of this folder is a file committed here.
  const readme = readFileSync(join(extensionDir, 'README.md'), 'utf8');
  const links = [...readme.matchAll(/(!?)\[[^\]]*\]\(([^)\s]+)\)/g)];
  for (const [, image, target] of links) {
    assert.ok(/^(https?:|mailto:|#)/.test(target), `README link ${target} is relative: it breaks in the Marketplace`);
    const here = image && target.match(/\/editors\/vscode\/(.+)$/);
    if (here) assert.ok(existsSync(join(extensionDir, here[1])), `README image ${target}: no ${here[1]} in editors/vscode`);
  }
  assert.ok(links.some(([, image, target]) => image && /callstack\.png$/.test(target)), 'the README shows no picture of the CALL STACK');
});

/**
 * extension.js loaded with a stand-in for the `vscode` module (which exists only inside
 * VS Code; test/e2e/ runs the real one): just the descriptor classes the adapter factory
 * builds and the settings it reads, recording what the factory returned.
 */
function loadExtensionWithFakeVscode(latchPath) {
  const Module = require('node:module');
  const fake = {
    DebugAdapterExecutable: class { constructor(command, args) { Object.assign(this, { kind: 'executable', command, args }); } },
    DebugAdapterNamedPipeServer: class { constructor(path) { Object.assign(this, { kind: 'pipe', path }); } },
    workspace: { getConfiguration: () => ({ get: () => latchPath }) },
  };
  const fakePath = join(extensionDir, 'test', '.fake-vscode.js');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    return request === 'vscode' ? fakePath : resolve.call(this, request, ...rest);
  };
  require.cache[fakePath] = { id: fakePath, filename: fakePath, loaded: true, exports: fake };
  try {
    delete require.cache[require.resolve('../extension.js')];
    return require('../extension.js');
  } finally {
    Module._resolveFilename = resolve;
    delete require.cache[fakePath];
  }
}

test('the adapter factory connects a child session to latchChildSession\'s socket, else runs `latch dap`', { skip: skipAllowed && noLatch }, async () => {
  if (noLatch) assert.fail(`${noLatch}; set LATCH_ALLOW_SKIP=1 to skip this test`);
  const { LatchAdapterFactory } = loadExtensionWithFakeVscode(latch);
  const factory = new LatchAdapterFactory();
  const descriptor = (configuration) => factory.createDebugAdapterDescriptor({ configuration });

  // A session of its own: latch runs as a stdio adapter.
  assert.deepEqual({ ...descriptor({ type: 'latch', request: 'launch', program: '/bin/true' }) },
    { kind: 'executable', command: latch, args: ['dap'] });

  // A child session, as VS Code creates it from latch's startDebugging: a real listening
  // unix socket, connected to, no new latch.
  const dir = mkdtempSync(join(tmpdir(), 'latch-vscode-child-'));
  const socket = join(dir, 'child.sock');
  const server = createServer();
  await new Promise((r) => server.listen(socket, r));
  try {
    const child = { type: 'latch', request: 'attach', name: 'a.out (pid 12, forked by 11)', pid: 12, latchChildSession: socket };
    assert.deepEqual({ ...descriptor(child) }, { kind: 'pipe', path: socket });
    // A resolved configuration provider leaves the child's configuration as latch sent it.
    const { LatchConfigurationProvider } = loadExtensionWithFakeVscode(join(dir, 'no-latch-needed'));
    assert.deepEqual(await new LatchConfigurationProvider().resolveDebugConfiguration(undefined, { ...child }), child);
  } finally {
    await new Promise((r) => server.close(r));
  }
  // Not a socket, or gone: an error that says which.
  const file = join(dir, 'plain-file');
  writeFileSync(file, '');
  assert.throws(() => descriptor({ type: 'latch', request: 'attach', pid: 12, latchChildSession: file }), /is not a unix socket/);
  assert.throws(() => descriptor({ type: 'latch', request: 'attach', pid: 12, latchChildSession: socket }), /socket .* is gone .*ENOENT.*has ended/);
  assert.throws(() => descriptor({ type: 'latch', request: 'attach', pid: 12, latchChildSession: '' }), /must be the path of latch's unix socket/);
});

/** Resolves with the first line of `stream` matching `re` (rejects after 20 s). */
function firstLine(stream, re) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${re}`)), 20000);
    const lines = createInterface({ input: stream });
    lines.on('line', (line) => {
      if (re.test(line)) { clearTimeout(timer); resolve(line); }
    });
    lines.on('close', () => reject(new Error(`stream ended before a line matching ${re}`)));
  });
}

test('sync-schema inlines $defs references and keeps required/anyOf as they are', async () => {
  const { configurationAttributes } = await import('../scripts/sync-schema.mjs');
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'latch attach arguments',
    $defs: { Pid: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^[0-9]+$' }] } },
    type: 'object',
    properties: { pid: { $ref: '#/$defs/Pid', description: 'the pid' }, processId: { $ref: '#/$defs/Pid' } },
    anyOf: [{ required: ['pid'] }, { required: ['processId'] }],
  };
  assert.deepEqual(configurationAttributes(schema), {
    type: 'object',
    properties: {
      pid: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^[0-9]+$' }], description: 'the pid' },
      processId: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^[0-9]+$' }] },
    },
    anyOf: [{ required: ['pid'] }, { required: ['processId'] }],
  });
  assert.throws(() => configurationAttributes({ properties: { x: { $ref: '#/$defs/Missing' } } }), /unresolvable/);
});

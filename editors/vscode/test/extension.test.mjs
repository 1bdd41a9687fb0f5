// The extension without a VS Code: package.json's attach attributes equal the schema,
// its snippets and initial configurations are valid attach configurations, the process
// picker's rows come from the real `latch ps --json`, and it packages to a .vsix.
// (test/e2e/ runs it in a real VS Code.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expectedAttach, extensionDir, latchDebugger, manifestPath } from '../scripts/sync-schema.mjs';

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

test('configurationAttributes.attach equals schemas/attach.schema.json', () => {
  assert.deepEqual(
    dbg.configurationAttributes.attach,
    expectedAttach(),
    'package.json is out of date with the schema: run `node editors/vscode/scripts/sync-schema.mjs`',
  );
});

test('the debugger contribution: type, label, languages, pickProcess variable, command', () => {
  assert.equal(dbg.label, 'latch: attach to process');
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

/** Every key is a schema property (or a key VS Code itself reads) and a target is named. */
function assertValidAttach(config, where) {
  const attach = dbg.configurationAttributes.attach;
  const vscodeKeys = new Set(['type', 'request', 'name']);
  assert.equal(config.type, 'latch', where);
  assert.equal(config.request, 'attach', where);
  for (const key of Object.keys(config)) {
    assert.ok(vscodeKeys.has(key) || key in attach.properties, `${where}: ${key} is not an attach argument`);
  }
  assert.ok(config.pid !== undefined || config.waitFor !== undefined, `${where}: names no target`);
}

test('initialConfigurations and configurationSnippets are attach configurations the schema allows', () => {
  const names = (configs) => configs.map((c) => Object.keys(c).filter((k) => k === 'pid' || k === 'waitFor')[0]);
  assert.deepEqual(names(dbg.initialConfigurations), ['pid', 'waitFor']);
  assert.deepEqual(names(dbg.configurationSnippets.map((s) => s.body)), ['pid', 'waitFor']);
  dbg.initialConfigurations.forEach((c, i) => assertValidAttach(c, `initialConfigurations[${i}]`));
  dbg.configurationSnippets.forEach((s, i) => assertValidAttach(s.body, `configurationSnippets[${i}]`));
  assert.equal(dbg.initialConfigurations[0].pid, '${command:pickProcess}');
  // In a snippet body `^"..."` inserts the value unquoted-as-is and `\$` keeps VS Code's
  // snippet engine from eating the variable: the user gets "pid": "${command:pickProcess}".
  assert.equal(dbg.configurationSnippets[0].body.pid, '^"\\${command:pickProcess}"');
});

/** Just enough JSON Schema (type, enum, pattern, minimum, anyOf) to check a value the way
 * VS Code's launch.json validation does, for the keywords the attach schema uses. */
function accepts(schema, value) {
  if (schema.anyOf && !schema.anyOf.some((s) => accepts(s, value))) return false;
  if (schema.enum && !schema.enum.includes(value)) return false;
  if (schema.type) {
    const types = [].concat(schema.type);
    const typeOf = value === null ? 'null' : Number.isInteger(value) ? 'integer' : typeof value;
    if (!types.includes(typeOf) && !(typeOf === 'integer' && types.includes('number'))) return false;
  }
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) return false;
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) return false;
  return true;
}

test('the attach schema accepts the initial configurations as written, ${command:pickProcess} included', () => {
  const attach = dbg.configurationAttributes.attach;
  for (const config of dbg.initialConfigurations) {
    for (const [key, value] of Object.entries(config)) {
      if (key in attach.properties) assert.ok(accepts(attach.properties[key], value), `${config.name}: ${key}: ${JSON.stringify(value)} rejected`);
    }
  }
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
  const { attachAttributes } = await import('../scripts/sync-schema.mjs');
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'latch attach arguments',
    $defs: { Pid: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^[0-9]+$' }] } },
    type: 'object',
    properties: { pid: { $ref: '#/$defs/Pid', description: 'the pid' }, processId: { $ref: '#/$defs/Pid' } },
    anyOf: [{ required: ['pid'] }, { required: ['processId'] }],
  };
  assert.deepEqual(attachAttributes(schema), {
    type: 'object',
    properties: {
      pid: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^[0-9]+$' }], description: 'the pid' },
      processId: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^[0-9]+$' }] },
    },
    anyOf: [{ required: ['pid'] }, { required: ['processId'] }],
  });
  assert.throws(() => attachAttributes({ properties: { x: { $ref: '#/$defs/Missing' } } }), /unresolvable/);
});

// Writes package.json's contributes.debuggers[type=latch].configurationAttributes.attach
// from schemas/attach.schema.json, the single source of truth for the attach arguments
// (generated from latch's Rust type). Run it after the schema changes:
//
//   node editors/vscode/scripts/sync-schema.mjs
//
// test/schema.test.mjs fails while package.json and the schema differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const extensionDir = join(here, '..');
export const schemaPath = join(extensionDir, '..', '..', 'schemas', 'attach.schema.json');
export const manifestPath = join(extensionDir, 'package.json');

/**
 * The schema as VS Code wants it in configurationAttributes: every `$ref` to `#/$defs/X`
 * replaced by X itself (VS Code resolves no references there), and the document-level
 * keywords (`$schema`, `$defs`, `title`) dropped. Everything else (`type`,
 * `properties`, `required`, `anyOf`, ...) is kept exactly.
 */
export function attachAttributes(schema) {
  const defs = schema.$defs ?? schema.definitions ?? {};
  const inline = (value) => {
    if (Array.isArray(value)) return value.map(inline);
    if (value === null || typeof value !== 'object') return value;
    if (typeof value.$ref === 'string') {
      const name = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(value.$ref)?.[1];
      if (name === undefined || !(name in defs)) throw new Error(`unresolvable $ref ${value.$ref}`);
      const { $ref, ...rest } = value;
      return inline({ ...defs[name], ...rest });
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inline(v)]));
  };
  const { $schema, $defs, definitions, title, ...rest } = schema;
  return inline(rest);
}

export function latchDebugger(manifest) {
  const debuggers = manifest.contributes?.debuggers ?? [];
  const found = debuggers.find((d) => d.type === 'latch');
  if (!found) throw new Error('package.json contributes no debugger of type latch');
  return found;
}

export function expectedAttach() {
  return attachAttributes(JSON.parse(readFileSync(schemaPath, 'utf8')));
}

// Run as a script (not imported by the test): rewrite package.json in place.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const dbg = latchDebugger(manifest);
  dbg.configurationAttributes = { ...dbg.configurationAttributes, attach: expectedAttach() };
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote configurationAttributes.attach of ${manifestPath} from ${schemaPath}`);
}

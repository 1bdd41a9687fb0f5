// Writes package.json's contributes.debuggers[type=latch].configurationAttributes.attach
// and .launch from schemas/attach.schema.json and schemas/launch.schema.json, the single
// source of truth for each request's arguments (generated from latch's Rust types). Run
// it after a schema changes:
//
//   node editors/vscode/scripts/sync-schema.mjs
//
// test/extension.test.mjs fails while package.json and either schema differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const extensionDir = join(here, '..');
export const schemasDir = join(extensionDir, '..', '..', 'schemas');
/** The requests VS Code gets attributes for, each from `schemas/<request>.schema.json`. */
export const requests = ['attach', 'launch'];
export const schemaPath = (request) => join(schemasDir, `${request}.schema.json`);
export const manifestPath = join(extensionDir, 'package.json');

/**
 * The schema as VS Code wants it in configurationAttributes: every `$ref` to `#/$defs/X`
 * replaced by X itself (VS Code resolves no references there), and the document-level
 * keywords (`$schema`, `$defs`, `title`) dropped. Everything else (`type`,
 * `properties`, `required`, `anyOf`, ...) is kept exactly.
 */
export function configurationAttributes(schema) {
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

/** What configurationAttributes[request] must be, from that request's schema file. */
export function expectedAttributes(request) {
  return configurationAttributes(JSON.parse(readFileSync(schemaPath(request), 'utf8')));
}

// Run as a script (not imported by the test): rewrite package.json in place.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const dbg = latchDebugger(manifest);
  const attributes = { ...dbg.configurationAttributes };
  for (const request of requests) attributes[request] = expectedAttributes(request);
  dbg.configurationAttributes = attributes;
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  for (const request of requests) {
    console.log(`wrote configurationAttributes.${request} of ${manifestPath} from ${schemaPath(request)}`);
  }
}

import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer } from './server-process.ts';
import { runCommand } from '../test/command.ts';
import { bundle } from './bundle.ts';

/**
 * `npm run build`, the bundle the image runs (scripts/dockerfile.test.ts runs the wasm image's).
 * Here: what each flavour takes in, and the tensorflow image's, which imports TensorFlow.js from
 * node_modules, serving (on wasm: tfjs-node cannot install here).
 */
describe('the bundle', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'bundle-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('for wasm: TensorFlow.js core, layers and the two backends, none of its parts the server never calls', async () => {
    const packages = await bundle('wasm', path.join(scratch, 'wasm'));
    expect(packages.filter((name) => name.startsWith('@tensorflow/'))).toEqual(['@tensorflow/tfjs', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']);
    expect(packages).toEqual(expect.arrayContaining(['hono', 'pino', 'prom-client', 'zod']));
    expect((await readdir(path.join(scratch, 'wasm'))).filter((file) => file.endsWith('.wasm'))).toHaveLength(3);
  });

  it('for tensorflow: no TensorFlow.js inside; it serves with the one in node_modules', async () => {
    const out = path.join(scratch, 'tensorflow', 'build');
    const packages = await bundle('tensorflow', out);
    expect(packages.filter((name) => name.startsWith('@tensorflow/'))).toEqual([]);
    await symlink(path.resolve('node_modules'), path.join(scratch, 'tensorflow', 'node_modules'));
    const server = await spawnServer({ BACKEND: 'wasm' }, { command: [process.execPath, path.join(out, 'server.mjs')] });
    try {
      const response = await fetch(`${server.url}/v2/health/ready`);
      expect(response.status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('refuses a backend no image is built for, with exit 2', async () => {
    const result = await runCommand('lib/bundle.ts', ['--backend', 'cpu']);
    expect([result.code, result.stderr]).toEqual([2, expect.stringMatching(/--backend must be tensorflow or wasm .*got "cpu"/)]);
  });
});

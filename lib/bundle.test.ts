import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedError, runCommand } from '../test/command.ts';
import { bundle } from './bundle.ts';

/**
 * `npm run build`, the bundle the image runs (scripts/dockerfile.test.ts runs the wasm image's;
 * loadtest/bundled-server.test.ts the tensorflow image's). Here: what the wasm bundle takes in.
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

  it.each([
    [['--backend', 'cpu'], /--backend must be tensorflow or wasm .*got "cpu"/],
    [['--out', 'dist'], /Unknown option '--out'/],
    [['build'], /unexpected argument "build"/],
  ])('refuses %j with its usage and exit 2', async (args, message) => {
    const result = await runCommand('lib/bundle.ts', args);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(message);
    expect(result.stderr).toMatch(/Usage: npm run build/);
  });
});

import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SERVER_NODE_FLAGS, spawnServer } from '../lib/server-process.ts';
import type { BackendName } from '../model/backend.ts';
import { bundle } from '../lib/bundle.ts';

/**
 * The server as the image runs it, for the benchmark and the capacity plan: the image's bundle
 * (`npm run build`) for `backend`, written to a folder of its own and run from the repository, on
 * the bundled model. The folder sees the repository's node_modules, as the tensorflow image's
 * bundle sees the image's.
 */
export interface BundledServer {
  /** The command that starts it, for spawnServer. */
  readonly command: readonly string[];
  /** The packages bundled in it (see bundle). */
  readonly packages: readonly string[];
  dispose(): Promise<void>;
}

export async function buildBundledServer(backend?: BackendName): Promise<BundledServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'anomaly-serve-bundle-'));
  await symlink(path.resolve('node_modules'), path.join(dir, 'node_modules'));
  const packages = await bundle(backend === 'tensorflow' ? 'tensorflow' : 'wasm', path.join(dir, 'build'));
  return { command: [process.execPath, ...SERVER_NODE_FLAGS, path.join(dir, 'build', 'server.mjs')], packages, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Seconds from spawning `command` to its first "model loaded (ready)" with its port open (what a
 * pod's readiness probe waits for), once a run for each command in turn, `runs` rounds: the
 * machine's drift between rounds falls on both.
 */
export async function startupSeconds(commands: readonly (readonly string[])[], runs: number, env: Record<string, string> = {}): Promise<number[][]> {
  const samples = commands.map((): number[] => []);
  for (let run = 0; run < runs; run++) {
    for (const [i, command] of commands.entries()) {
      const started = performance.now();
      const server = await spawnServer(env, { command });
      samples[i]!.push((performance.now() - started) / 1000);
      await server.stop();
    }
  }
  return samples;
}

import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NODE_MAJOR } from '../lib/bundle.ts';
import { replayStages } from './dockerfile-replay.ts';

/**
 * `npm run image-size`: the files of the image's runtime stage, replayed without Docker for
 * `--build-arg BACKEND=wasm` (the tensorflow variant's install downloads libtensorflow, which this
 * cannot), by folder, with the largest files; the node binary it copies from the build's base
 * image is this machine's of the same line, and Debian's base is not counted.
 */
async function bytes(file: string): Promise<number> {
  const stat = await lstat(file);
  if (!stat.isDirectory()) return stat.size;
  let total = 0;
  for (const entry of await readdir(file)) total += await bytes(path.join(file, entry));
  return total;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const root = await mkdtemp(path.join(tmpdir(), 'image-size-'));
try {
  process.stderr.write('replaying the Dockerfile with BACKEND=wasm (the bundle, built with esbuild)...\n');
  const { stages, built, fromBase } = await replayStages(root, { BACKEND: 'wasm' });
  const runtime = built.get(stages.at(-1)!.name)!;
  const parts = await Promise.all(['build', 'model/artifacts', 'node_modules'].map(async (part) => [part, await bytes(path.join(runtime, part))] as const));
  const files = await Promise.all(
    (await readdir(path.join(runtime, 'build'))).map(async (name) => [`build/${name}`, await bytes(path.join(runtime, 'build', name))] as const),
  );
  files.sort((a, b) => b[1] - a[1]);
  const total = parts.reduce((sum, [, size]) => sum + size, 0);
  const node = process.versions.node.startsWith(`${NODE_MAJOR}.`) ? mib(await bytes(process.execPath)) : `not measured: this is Node.js ${process.versions.node}, the image's is ${NODE_MAJOR}`;
  process.stdout.write(
    [
      '| runtime stage, BACKEND=wasm | size |',
      '|---|---|',
      ...parts.map(([part, size]) => `| ${part} | ${mib(size)} |`),
      `| **the project's files** | **${mib(total)}** |`,
      ...fromBase.map(({ source }) => `| ${source} (from node:${NODE_MAJOR}-bookworm-slim) | ${node} |`),
      '',
      '| largest files | size |',
      '|---|---|',
      ...files.slice(0, 5).map(([name, size]) => `| ${name} | ${mib(size)} |`),
      '',
    ].join('\n'),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}

import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { replayStages } from './dockerfile-replay.ts';

/**
 * `npm run image-size`: the files of the image's runtime stage, replayed without Docker for
 * `--build-arg BACKEND=wasm` (the tensorflow variant's install downloads libtensorflow, which this
 * cannot), by folder, with the largest packages. The base image (node:20-bookworm-slim) is not counted.
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
  process.stderr.write('replaying the Dockerfile with BACKEND=wasm (an offline npm ci of the production dependencies)...\n');
  const { stages, built } = await replayStages(root, { BACKEND: 'wasm' });
  const runtime = built.get(stages.at(-1)!.name)!;
  const parts = await Promise.all(['node_modules', 'build', 'model/artifacts', 'package.json'].map(async (part) => [part, await bytes(path.join(runtime, part))] as const));
  const modules = path.join(runtime, 'node_modules');
  const packages: (readonly [string, number])[] = [];
  for (const entry of await readdir(modules)) {
    const names = entry.startsWith('@') ? (await readdir(path.join(modules, entry))).map((name) => `${entry}/${name}`) : [entry];
    for (const name of names) packages.push([name, await bytes(path.join(modules, name))]);
  }
  packages.sort((a, b) => b[1] - a[1]);
  const total = parts.reduce((sum, [, size]) => sum + size, 0);
  process.stdout.write(
    [
      '| runtime stage, BACKEND=wasm | size |',
      '|---|---|',
      ...parts.map(([part, size]) => `| ${part} | ${mib(size)} |`),
      `| **total** (on top of node:20-bookworm-slim) | **${mib(total)}** |`,
      '',
      '| largest packages | size |',
      '|---|---|',
      ...packages.slice(0, 6).map(([name, size]) => `| ${name} | ${mib(size)} |`),
      '',
    ].join('\n'),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}

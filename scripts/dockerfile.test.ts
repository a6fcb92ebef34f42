import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DockerfileParser, type Copy, type Instruction } from 'dockerfile-ast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINER_USER, SERVER_DEFAULTS } from '../app/contract.ts';
import { bundledExample } from '../test/bundled-model.ts';
import { spawnServer } from '../test/server-process.ts';

/** The Dockerfile's stages, each with its base image and instructions. */
async function stages() {
  const dockerfile = DockerfileParser.parse(await readFile('Dockerfile', 'utf8'));
  return dockerfile.getFROMs().map((from, index, froms) => {
    const start = from.getRange().start.line;
    const end = froms[index + 1]?.getRange().start.line ?? Infinity;
    const instructions = dockerfile.getInstructions().filter((i) => i.getRange().start.line > start && i.getRange().start.line < end);
    return { name: from.getBuildStage() ?? String(index), image: `${from.getImageName()}:${from.getImageTag()}`, instructions };
  });
}
type Stage = Awaited<ReturnType<typeof stages>>[number];

const keyword = (stage: Stage, name: string) => stage.instructions.filter((i) => i.getKeyword() === name);
const args = (instruction: Instruction) => instruction.getArguments().map((a) => a.getValue());
const fromStage = (instruction: Instruction) => (instruction as Copy).getFromFlag?.()?.getValue();

describe('the Dockerfile', () => {
  let all: Stage[];
  let runtime: Stage;
  beforeAll(async () => {
    all = await stages();
    runtime = all.at(-1)!;
  });

  it('builds every stage on a glibc Node 20 image (tfjs-node does not run on Alpine)', () => {
    for (const stage of all) expect(stage.image).toMatch(/^node:20-bookworm(-slim)?$/);
  });

  it('runs as the numeric non-root user the pods run as', () => {
    const [user] = keyword(runtime, 'USER');
    expect(user && args(user)[0]).toBe(`${CONTAINER_USER}:${CONTAINER_USER}`);
  });

  it('starts node itself in exec form, so SIGTERM reaches the server, and exposes its port', () => {
    const [cmd] = keyword(runtime, 'CMD');
    expect(JSON.parse(cmd!.getArgumentsContent()!)).toEqual(['node', 'build/app/server.js']);
    expect(keyword(runtime, 'EXPOSE').map((e) => args(e)[0])).toEqual([String(SERVER_DEFAULTS.port)]);
  });

  it('copies production dependencies with tfjs-node, the compiled server, the model and package.json', () => {
    const copies = keyword(runtime, 'COPY').map((c) => [fromStage(c), ...args(c)]);
    expect(copies).toEqual([
      ['deps', '/app/node_modules', './node_modules'],
      [undefined, 'package.json', './'],
      [undefined, 'model/artifacts', './model/artifacts'],
      ['build', '/app/build', './build'],
    ]);
    const deps = all.find((s) => s.name === 'deps')!;
    const install = keyword(deps, 'RUN').map((r) => r.getArgumentsContent()).join(' ');
    expect(install).toMatch(/npm ci --omit=dev/);
    expect(install).toMatch(/require\('@tensorflow\/tfjs-node'\)/);
    expect(keyword(runtime, 'RUN')).toEqual([]);
  });

  it('copies nothing that .dockerignore leaves out of the build context', async () => {
    const ignored = (await readFile('.dockerignore', 'utf8'))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#') && !line.includes('*'));
    const sources = all.flatMap((stage) => keyword(stage, 'COPY').filter((c) => !fromStage(c)).flatMap((c) => args(c).slice(0, -1)));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      expect(ignored.filter((pattern) => source === pattern || source.startsWith(`${pattern.replace(/\/$/, '')}/`))).toEqual([]);
    }
  });

  it('installs dependencies before copying code, so a code change keeps the dependency layers', () => {
    for (const stage of all) {
      const lines = stage.instructions.map((i) => `${i.getKeyword()} ${i.getArgumentsContent()}`);
      const install = lines.findIndex((l) => /^RUN npm ci/.test(l));
      const code = lines.findIndex((l) => /^COPY (app|model)\b/.test(l));
      if (install >= 0 && code >= 0) expect(install).toBeLessThan(code);
    }
  });
});

/**
 * The runtime stage without Docker: each stage is replayed in a folder of its own (COPY from the
 * repository or an earlier stage, RUN in that folder), then the runtime stage's CMD runs. A file the
 * Dockerfile forgets, or a runtime import of a dev dependency, makes the server fail here.
 */
describe('the runtime stage, reproduced', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'image-'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const run = promisify(execFile);

  async function replay(stage: Stage, built: Map<string, string>): Promise<string> {
    const dir = path.join(root, stage.name);
    await mkdir(dir, { recursive: true });
    const inStage = (from: string, p: string) => (p.startsWith('/app') ? path.join(from, p.slice('/app'.length)) : path.join(from, p));
    for (const instruction of stage.instructions) {
      const word = instruction.getKeyword();
      if (word === 'COPY') {
        const [...sources] = args(instruction);
        const target = inStage(dir, sources.pop()!);
        const from = fromStage(instruction);
        for (const source of sources) {
          const origin = from ? inStage(built.get(from)!, source) : source;
          const destination = target.endsWith('/') ? path.join(target, path.basename(source)) : target;
          await mkdir(path.dirname(destination), { recursive: true });
          // Moving node_modules is a copy that costs nothing.
          if (from && source.endsWith('node_modules')) await rename(origin, destination);
          else await cp(origin, destination, { recursive: true });
        }
      } else if (word === 'RUN') {
        for (const command of instruction.getArgumentsContent()!.split('&&').map((c) => c.trim())) {
          // Here, with no download of libtensorflow, tfjs-node is not installed: the image checks it.
          if (command.includes('tfjs-node') || command.startsWith('npm cache')) continue;
          if (command.startsWith('npm ci') && !command.includes('--omit=dev')) {
            // The full install is the repository's own (same lockfile); only the production one is redone.
            await symlink(path.resolve('node_modules'), path.join(dir, 'node_modules'));
            continue;
          }
          await run('sh', ['-c', command.replace(/^npm ci/, 'npm ci --prefer-offline')], { cwd: dir, env: { ...process.env, NODE_ENV: '' } });
        }
      }
    }
    return dir;
  }

  it('serves the bundled model, scores a beat and serves the web page, with production dependencies only', async () => {
    const all = await stages();
    const built = new Map<string, string>();
    for (const stage of all) built.set(stage.name, await replay(stage, built));
    const runtime = all.at(-1)!;
    const image = built.get(runtime.name)!;
    await expect(readFile(path.join(image, 'node_modules/@tensorflow/tfjs/package.json'))).resolves.toBeTruthy();
    await expect(readFile(path.join(image, 'node_modules/typescript/package.json'))).rejects.toThrow(/ENOENT/);

    const env = Object.fromEntries(keyword(runtime, 'ENV').map((e) => args(e)[0]!.split('=') as [string, string]));
    const command = JSON.parse(keyword(runtime, 'CMD')[0]!.getArgumentsContent()!) as string[];
    const server = await spawnServer(env, { command: [process.execPath, ...command.slice(1)], cwd: image });
    const response = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ instances: [bundledExample('anomalous')] }),
    });
    expect(await response.json()).toMatchObject({ predictions: [{ is_anomaly: true }] });
    for (const [page, type] of [
      ['/', /^text\/html/],
      ['/ui/app.js', /^text\/javascript/],
    ] as const) {
      const asset = await fetch(`${server.url}${page}`);
      expect([asset.status, asset.headers.get('content-type')]).toEqual([200, expect.stringMatching(type)]);
    }
    expect(await server.stop()).toBe(0);
  }, 240_000);
});

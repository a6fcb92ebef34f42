import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINER_USER } from '../app/contract.ts';
import { DEFAULTS } from '../app/settings.ts';
import { bundledExample } from '../test/bundled-model.ts';
import { spawnServer } from '../lib/server-process.ts';
import { args, dockerfileStages, fromStage, keyword, replayStages, type Stage } from './dockerfile-replay.ts';

describe('the Dockerfile', () => {
  let all: Stage[];
  let runtime: Stage;
  beforeAll(async () => {
    all = await dockerfileStages();
    runtime = all.at(-1)!;
  });

  it('builds every stage on a glibc Node 20 image (tfjs-node does not run on Alpine)', () => {
    for (const stage of all) expect(stage.image).toMatch(/^node:20-bookworm(-slim)?$/);
  });

  it('pins every stage to the same base image by its digest', () => {
    const digests = new Set(all.map((stage) => stage.digest));
    expect(digests.size).toBe(1);
    expect([...digests][0]).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('runs as the numeric non-root user the pods run as', () => {
    const [user] = keyword(runtime, 'USER');
    expect(user && args(user)[0]).toBe(`${CONTAINER_USER}:${CONTAINER_USER}`);
  });

  it('starts node itself in exec form, so SIGTERM reaches the server, and exposes its two ports', () => {
    const [cmd] = keyword(runtime, 'CMD');
    expect(JSON.parse(cmd!.getArgumentsContent()!)).toEqual(['node', 'build/app/server.js']);
    expect(keyword(runtime, 'EXPOSE').flatMap(args)).toEqual([String(DEFAULTS.port), String(DEFAULTS.metricsPort)]);
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
    expect(install).toMatch(/tensorflow\) npm ci --omit=dev --no-audit --no-fund --foreground-scripts\s*\\?\s*&& \{ node -e "require\('@tensorflow\/tfjs-node'\)"/);
    expect(install).toMatch(/wasm\) npm ci --omit=dev --omit=optional /);
    expect(keyword(runtime, 'RUN')).toEqual([]);
  });

  it('builds for tfjs-node by default, or with --build-arg BACKEND=wasm without it, and the server runs on that backend', () => {
    for (const stage of [all.find((s) => s.name === 'deps')!, runtime]) expect(keyword(stage, 'ARG').map(args)).toEqual([['BACKEND=tensorflow']]);
    expect(keyword(runtime, 'ENV').flatMap(args)).toContain('BACKEND=${BACKEND}');
  });

  it('says why a tfjs-node build fails: its install script in the foreground, then what to do', async () => {
    const [install] = keyword(all.find((s) => s.name === 'deps')!, 'RUN');
    const script = install!.getArgumentsContent()!.replace(/\\\n/g, '\n');
    expect(script).toMatch(/tensorflow\) npm ci --omit=dev [^\n]*--foreground-scripts/);
    // The branch run as the build runs it, with an npm whose optional tfjs-node did not install.
    const scratch = await mkdtemp(path.join(tmpdir(), 'deps-stage-'));
    await writeFile(path.join(scratch, 'npm'), '#!/bin/sh\necho "npm $*"\n', { mode: 0o755 });
    const failed = await promisify(execFile)('sh', ['-c', script], { cwd: scratch, env: { ...process.env, BACKEND: 'tensorflow', PATH: `${scratch}:${process.env.PATH}` } }).catch(
      (error: { code: number; stderr: string }) => error,
    );
    await rm(scratch, { recursive: true, force: true });
    expect((failed as { code: number }).code).toBe(1);
    expect((failed as { stderr: string }).stderr).toMatch(/@tensorflow\/tfjs-node did not install: its install script's own output is above .* build with --build-arg BACKEND=wasm/);
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

  // As `docker build --build-arg BACKEND=wasm`: tfjs-node's install would download libtensorflow.
  const BUILD_ARGS = { BACKEND: 'wasm' };

  it('serves the bundled model, scores a beat and serves the web page, with production dependencies only', async () => {
    const { stages: all, built } = await replayStages(root, BUILD_ARGS);
    const runtime = all.at(-1)!;
    const image = built.get(runtime.name)!;
    await expect(readFile(path.join(image, 'node_modules/@tensorflow/tfjs/package.json'))).resolves.toBeTruthy();
    await expect(readFile(path.join(image, 'node_modules/typescript/package.json'))).rejects.toThrow(/ENOENT/);
    await expect(readFile(path.join(image, 'node_modules/@tensorflow/tfjs-node/package.json'))).rejects.toThrow(/ENOENT/);
    // Nothing that only a debugger or a compiler reads: no source maps, no type declarations.
    const files = await readdir(image, { recursive: true });
    expect(files.length).toBeGreaterThan(1000);
    expect(files.filter((file) => /\.(map|d\.[cm]?ts)$/.test(file))).toEqual([]);

    const env = Object.fromEntries(
      keyword(runtime, 'ENV')
        .flatMap(args)
        .map((setting) => setting.replace(/\$\{(\w+)\}/g, (_, name: keyof typeof BUILD_ARGS) => BUILD_ARGS[name]).split('=') as [string, string]),
    );
    const command = JSON.parse(keyword(runtime, 'CMD')[0]!.getArgumentsContent()!) as string[];
    expect(env.BACKEND).toBe('wasm');
    const server = await spawnServer(env, { command: [process.execPath, ...command.slice(1)], cwd: image });
    expect(server.logs.find((line) => line.msg === 'model loaded (ready)')).toMatchObject({ backend: 'wasm' });
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
    // The HEALTHCHECK's command, as Docker runs it in the container: healthy while the server is, not after.
    const healthcheck = JSON.parse(keyword(runtime, 'HEALTHCHECK')[0]!.getArgumentsContent()!.replace(/^.*?CMD\s*/s, '')) as string[];
    const check = () =>
      promisify(execFile)(process.execPath, healthcheck.slice(1), { cwd: image, env: { ...process.env, ...env, PORT: new URL(server.url).port } }).then(
        () => 0,
        (error: { code: number }) => error.code,
      );
    expect(await check()).toBe(0);
    expect(await server.stop()).toBe(0);
    expect(await check()).toBe(1);
  }, 240_000);
});

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import dockerignoreModule from '@balena/dockerignore';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINER_USER } from '../app/contract.ts';
import { DEFAULTS } from '../app/settings.ts';
import { bundledExample } from '../test/bundled-model.ts';
import { runCommand } from '../test/command.ts';
import { expectations, FIXTURES, readReference } from '../test/keras-reference.ts';
import { SERVER_NODE_FLAGS, SOURCE_SERVER_COMMAND, spawnServer } from '../lib/server-process.ts';
import { BUNDLE_DIR, NODE_MAJOR } from '../lib/bundle.ts';
import { args, dockerfileStages, fromStage, keyword, replayStages, type Stage } from './dockerfile-replay.ts';

// A CommonJS module whose declarations say `export default`: under Node's ES modules, the default import is the function itself.
const dockerignore = dockerignoreModule as unknown as typeof dockerignoreModule.default;

describe('the Dockerfile', () => {
  let all: Stage[];
  let runtime: Stage;
  beforeAll(async () => {
    all = await dockerfileStages();
    runtime = all.at(-1)!;
  });

  it('builds on the Node.js line of engines and runs on Debian, both glibc (tfjs-node does not run on Alpine)', () => {
    const builders = all.slice(0, -1);
    expect(builders.map((stage) => stage.name)).toEqual(['build', 'deps']);
    for (const stage of builders) expect(stage.image).toBe(`node:${NODE_MAJOR}-bookworm-slim`);
    expect(runtime.image).toBe('debian:bookworm-slim');
  });

  it('pins every base image by its digest, the builders to the same one', () => {
    expect(new Set(all.slice(0, -1).map((stage) => stage.digest)).size).toBe(1);
    for (const stage of all) expect(stage.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('runs as the numeric non-root user the pods run as', () => {
    const [user] = keyword(runtime, 'USER');
    expect(user && args(user)[0]).toBe(`${CONTAINER_USER}:${CONTAINER_USER}`);
  });

  it('starts node itself in exec form, so SIGTERM reaches the server, with the server\'s V8 settings (as npm start does), and exposes its two ports', async () => {
    const [cmd] = keyword(runtime, 'CMD');
    expect(JSON.parse(cmd!.getArgumentsContent()!)).toEqual(['node', ...SERVER_NODE_FLAGS, `${BUNDLE_DIR}/server.mjs`]);
    const { scripts } = JSON.parse(await readFile('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.start).toBe(['node', ...SOURCE_SERVER_COMMAND.slice(1)].join(' '));
    expect(keyword(runtime, 'EXPOSE').flatMap(args)).toEqual([String(DEFAULTS.port), String(DEFAULTS.metricsPort)]);
  });

  it('runs the bundle on the node binary alone, with tfjs-node for the tensorflow backend', () => {
    const copies = keyword(runtime, 'COPY').map((c) => [fromStage(c), ...args(c)]);
    expect(copies).toEqual([
      ['build', '/usr/local/bin/node', '/usr/local/bin/node'],
      ['deps', '/app/node_modules', './node_modules'],
      [undefined, 'model/artifacts', './model/artifacts'],
      ['build', `/app/${BUNDLE_DIR}`, `./${BUNDLE_DIR}`],
    ]);
    const build = all.find((s) => s.name === 'build')!;
    expect(keyword(build, 'RUN').map((r) => r.getArgumentsContent())).toEqual(['npm ci --ignore-scripts --no-audit --no-fund', 'npm run build -- --backend "$BACKEND"']);
    const deps = all.find((s) => s.name === 'deps')!;
    const install = keyword(deps, 'RUN').map((r) => r.getArgumentsContent()).join(' ');
    expect(install).toMatch(/tensorflow\) npm ci --omit=dev --no-audit --no-fund --foreground-scripts\s*\\?\s*&& \{ node -e "require\('@tensorflow\/tfjs-node'\)"/);
    expect(install).toMatch(/wasm\) mkdir node_modules ;;/);
    expect(keyword(runtime, 'RUN')).toEqual([]);
  });

  it('builds for tfjs-node by default, or with --build-arg BACKEND=wasm without it, and the server runs on that backend', () => {
    for (const stage of all) expect(keyword(stage, 'ARG').map(args)).toEqual([['BACKEND=tensorflow']]);
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
    const context = dockerignore().add(await readFile('.dockerignore', 'utf8'));
    const sources = all.flatMap((stage) => keyword(stage, 'COPY').filter((c) => !fromStage(c)).flatMap((c) => args(c).slice(0, -1)));
    expect(sources.length).toBeGreaterThan(3);
    expect(sources.filter((source) => context.ignores(source))).toEqual([]);
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

  it('serves the bundled model, scores a beat and serves the web page, from the bundle alone', async () => {
    const { stages: all, built, fromBase } = await replayStages(root, BUILD_ARGS);
    const runtime = all.at(-1)!;
    const image = built.get(runtime.name)!;
    // Node.js is the base image's binary (here, the one running this test), and nothing else of it.
    expect(fromBase).toEqual([{ from: 'build', source: '/usr/local/bin/node', target: '/usr/local/bin/node' }]);
    // What the wasm image carries besides: the bundle with its page and WebAssembly binaries, and the model.
    const files = (await readdir(image, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => path.relative(image, path.join(entry.parentPath, entry.name)));
    expect(files.sort()).toEqual(
      [
        ...['server.mjs', 'healthcheck.mjs', 'index.html', 'app.js', 'tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'].map((name) => `${BUNDLE_DIR}/${name}`),
        ...['model.json', 'weights.bin', 'metadata.json'].map((name) => `model/artifacts/${name}`),
      ].sort(),
    );
    expect(await readdir(path.join(image, 'node_modules'))).toEqual([]);

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

    // A sequence model from a real Keras file, through a cluster of two workers: the bundle carries
    // the parts of TensorFlow.js an LSTM calls (the tensor methods the union package registers).
    const name = 'bearing_lstm_functional_k2.h5';
    const out = path.join(root, 'lstm');
    const imported = await runCommand('model/import.ts', [path.join(FIXTURES, name), '--out', out, '--name', 'corpus', '--normalisation', 'none', '--threshold', '0.05']);
    expect(imported.code, imported.stderr).toBe(0);
    const { instances, scores } = expectations(readReference(FIXTURES, name), 'mae');
    const cluster = await spawnServer({ ...env, MODEL_PATH: out, WEB_CONCURRENCY: '2' }, { command: [process.execPath, ...command.slice(1)], cwd: image });
    try {
      const served = await fetch(`${cluster.url}/v1/models/corpus:predict`, { method: 'POST', body: JSON.stringify({ instances }) });
      const { predictions } = (await served.json()) as { predictions: { reconstruction_error: number }[] };
      scores.forEach((expected, i) => expect(Math.abs(predictions[i]!.reconstruction_error - expected)).toBeLessThan(1e-5));
    } finally {
      expect(await cluster.stop()).toBe(0);
    }
  }, 240_000);
});

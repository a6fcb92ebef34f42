import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { loggedError, logLines, runCommand } from '../test/command.ts';
import { stepScript, stepWorkspace } from '../test/cloudbuild.ts';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const KEY = 'smoke-test-key-0123456789';
let scratch: string;
/** A site that answers 200 and a page to everything. */
let htmlSite: string;
let site: Server;
let keyed: ServerProcess;
let blind: ServerProcess;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'smoke-'));
  await writeFile(path.join(scratch, 'keys'), `${KEY}\n`);
  // The real server asking for a key, and one whose threshold calls every beat normal (a broken deploy).
  site = createServer((_, response) => response.end('<html>parked</html>')).listen(0, '127.0.0.1');
  await once(site, 'listening');
  htmlSite = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  [keyed, blind] = await Promise.all([spawnServer({ API_KEYS_FILE: path.join(scratch, 'keys') }), spawnServer({ THRESHOLD: '1' })]);
}, 60_000);
afterAll(async () => {
  site?.close();
  await Promise.all([keyed?.stop(), blind?.stop()]);
  await rm(scratch, { recursive: true, force: true });
});

const smoke = (url: string, key?: string) => runCommand('scripts/smoke-test.ts', [url], { env: key ? { API_KEY: key } : {} });

describe('npm run smoke', () => {
  it('passes a healthy deployment, with its API key: ready, the model, both protocols, the examples\' verdicts', async () => {
    const result = await smoke(keyed.url, KEY);
    expect(result.code, result.stderr).toBe(0);
    expect(logLines(result.stderr).at(-1)).toMatchObject({ msg: 'smoke test passed', model: 'ecg-autoencoder', examples: ['normal', 'anomalous'] });
  });

  it.each([
    ['without the key', () => smoke(keyed.url), /smoke test failed: \/ui\/model: 401/],
    ['with a wrong key', () => smoke(keyed.url, 'not-the-key'), /smoke test failed: \/ui\/model: 401/],
    ['a model that calls the anomalous example normal', () => smoke(blind.url), /smoke test failed: V2 called the anomalous example normal/],
    ['an endpoint that is not there', () => smoke('http://127.0.0.1:9'), /smoke test failed: \/v2\/health\/ready: http:\/\/127\.0\.0\.1:9 could not be reached/],
    ['an endpoint that answers something else (a page, a proxy\'s)', () => smoke(keyed.metricsUrl), /smoke test failed: \/v2\/health\/ready: 404 /],
    ['an endpoint whose 200 is not JSON (a captive portal, a parked domain)', () => smoke(htmlSite), /smoke test failed: \/v2\/health\/ready: answered 200 with a body that is not JSON: <html>parked<\/html>/],
  ])('fails %s, exit 1, saying why', async (_, run, message) => {
    const result = await run();
    expect(result.code).toBe(1);
    expect(loggedError(result.stderr)).toMatch(message);
  });

  it('refuses what is not a URL: exit 2', async () => {
    const result = await smoke('api.example.com');
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/give the endpoint's URL/);
  });
});

/**
 * The pipeline's rollout, endpoint, smoke and verify steps, run in a workspace with a stand-in for
 * the builder's kubectl (which logs its calls, answers the load balancer's address with a real
 * server's, the Secret with its key, and `rollout status` as told) against the real servers above.
 */
describe('the pipeline after the apply, run', () => {
  let workspace: string;
  let kubectl: string;
  beforeAll(async () => {
    workspace = await stepWorkspace(scratch);
    kubectl = path.join(scratch, 'kubectl.bash');
  });

  async function pipeline(server: ServerProcess, { rolloutCompletes = true, overrides = {} as Record<string, string> } = {}) {
    const calls = path.join(scratch, `kubectl-${Date.now()}.log`);
    const address = new URL(server.url).host;
    await writeFile(
      kubectl,
      [
        '#!/bin/bash',
        `echo "$*" >> ${calls}`,
        `[[ "$1 $2" == "rollout status" ]] && exit ${rolloutCompletes ? 0 : 1}`,
        `[[ "$1 $2" == "get service" ]] && printf %s ${address}`,
        `[[ "$1 $2" == "get secret" ]] && printf %s ${Buffer.from(`${KEY}\n`).toString('base64')}`,
        'exit 0',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const outcomes: { id: string; code: number; output: string }[] = [];
    for (const id of ['rollout', 'endpoint', 'smoke', 'verify']) {
      const script = stepScript(id, overrides).replaceAll('/builder/kubectl.bash', kubectl);
      const outcome = await promisify(execFile)('bash', ['-c', script], { cwd: workspace }).then(
        ({ stdout, stderr }) => ({ id, code: 0, output: stdout + stderr }),
        (error: { code: number; stdout: string; stderr: string }) => ({ id, code: error.code, output: error.stdout + error.stderr }),
      );
      outcomes.push(outcome);
      if (outcome.code !== 0) break;
    }
    return { outcomes, calls: (await readFile(calls, 'utf8')).trim().split('\n') };
  }

  it('smoke-tests a healthy rollout through its load balancer\'s address, with the Secret\'s key, and leaves it', async () => {
    const { outcomes, calls } = await pipeline(keyed);
    expect(outcomes.map((o) => [o.id, o.code])).toEqual([['rollout', 0], ['endpoint', 0], ['smoke', 0], ['verify', 0]]);
    expect(outcomes[2]!.output).toMatch(/smoke test passed/);
    expect(outcomes[2]!.output).not.toContain(KEY);
    expect(calls.filter((c) => c.startsWith('rollout undo'))).toEqual([]);
    await expect(readFile(path.join(workspace, '.smoke/key'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('rolls back a rollout that fails its smoke test, and fails the build saying why', async () => {
    const { outcomes, calls } = await pipeline(blind);
    expect(outcomes.map((o) => [o.id, o.code])).toEqual([['rollout', 0], ['endpoint', 0], ['smoke', 0], ['verify', 1]]);
    expect(outcomes[3]!.output).toMatch(/rolled back: smoke test failed: V2 called the anomalous example normal/);
    expect(calls).toContain('rollout undo deployment/anomaly-serve --namespace anomaly-serve');
    const withCanary = await pipeline(blind, { overrides: { _CANARY_MODEL_URI: 'gs://models/heartbeats/v2' } });
    expect(withCanary.calls.filter((c) => c.startsWith('rollout undo'))).toEqual([
      'rollout undo deployment/anomaly-serve --namespace anomaly-serve',
      'rollout undo deployment/anomaly-serve-canary --namespace anomaly-serve',
    ]);
  });

  it('rolls back a rollout that does not complete', async () => {
    const { outcomes, calls } = await pipeline(keyed, { rolloutCompletes: false });
    expect(outcomes.map((o) => [o.id, o.code])).toEqual([['rollout', 1]]);
    expect(outcomes[0]!.output).toMatch(/rolled back: the rollout of anomaly-serve did not complete in 300 s/);
    expect(calls).toContain('rollout undo deployment/anomaly-serve --namespace anomaly-serve');
  });

  it('waits for a canary\'s rollout too, and undoes it when it does not complete', async () => {
    const { outcomes, calls } = await pipeline(keyed, { rolloutCompletes: false, overrides: { _CANARY_MODEL_URI: 'gs://models/heartbeats/v2' } });
    expect(outcomes.map((o) => [o.id, o.code])).toEqual([['rollout', 1]]);
    expect(calls[0]).toBe('rollout status deployment/anomaly-serve --namespace anomaly-serve --timeout=300s');
    const healthy = await pipeline(keyed, { overrides: { _CANARY_MODEL_URI: 'gs://models/heartbeats/v2' } });
    expect(healthy.calls.filter((c) => c.startsWith('rollout status'))).toEqual([
      'rollout status deployment/anomaly-serve --namespace anomaly-serve --timeout=300s',
      'rollout status deployment/anomaly-serve-canary --namespace anomaly-serve --timeout=300s',
    ]);
  });

  it('calls https://_DOMAIN with a domain; _SMOKE_TEST=off skips the test', async () => {
    const domain = await pipeline(keyed, { overrides: { _DOMAIN: 'anomalies.example.com', _SMOKE_TEST: 'off' } });
    expect(domain.outcomes.map((o) => [o.id, o.code])).toEqual([['rollout', 0], ['endpoint', 0], ['smoke', 0], ['verify', 0]]);
    expect(domain.outcomes[2]!.output.trim()).toBe('smoke test: off (_SMOKE_TEST)');
    expect(await readFile(path.join(workspace, '.smoke/url'), 'utf8')).toBe('https://anomalies.example.com\n');
    expect(domain.calls.filter((c) => c.startsWith('get service'))).toEqual([]);
  });
});

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';

const run = (args: string[], env: Record<string, string> = {}) =>
  promisify(execFile)('scripts/predict.sh', args, { env: { ...process.env, ...env } }).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );

describe('scripts/predict.sh', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(() => server.stop());

  it('prints the verdict for the anomalous example (the default) and for the normal one', async () => {
    const anomalous = await run([server.url]);
    expect(anomalous.code).toBe(0);
    expect(anomalous.stdout).toMatch(/^anomalous example: ANOMALY \(reconstruction error 0\.\d{5}\)$/m);
    const normal = await run([server.url, 'normal']);
    expect(normal.stdout).toMatch(/^normal example: normal \(reconstruction error 0\.\d{5}\)$/m);
  });

  it('exits 1 with a message when the server cannot be reached, 2 for an unknown example', async () => {
    const unreachable = await run(['http://127.0.0.1:9']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/predict\.sh: the request to http:\/\/127\.0\.0\.1:9\/ui\/model failed/);
    const unknown = await run([server.url, 'weird']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/model ecg-autoencoder has no example "weird"; its examples: normal, anomalous/);
  });
});

describe('scripts/predict.sh against a server that asks for an API key', () => {
  const key = 'predict-script-key-8e21f4';
  let server: ServerProcess;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-'));
    await writeFile(path.join(dir, 'keys'), `${key}\n`);
    server = await spawnServer({ API_KEYS_FILE: path.join(dir, 'keys') });
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends API_KEY as a Bearer token, and says so when the server refuses to answer without one', async () => {
    const scored = await run([server.url], { API_KEY: key });
    expect(scored.code).toBe(0);
    expect(scored.stdout).toMatch(/^anomalous example: ANOMALY/m);
    const refused = await run([server.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the request to .*\/ui\/model failed: .*401.*an API key is needed/s);
  });
});

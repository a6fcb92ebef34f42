import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from '../test/server-process.ts';

const run = (args: string[]) =>
  promisify(execFile)('scripts/predict.sh', args).then(
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

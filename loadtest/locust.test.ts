import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { describeWithCommand } from '../test/describe-if.ts';

/** Reads Locust's CSV output (plain comma-separated, a header row). */
async function readCsv(file: string): Promise<Record<string, string>[]> {
  const [header, ...rows] = (await readFile(file, 'utf8')).trim().split('\n').map((line) => line.split(','));
  return rows.map((row) => Object.fromEntries(header!.map((key, i) => [key, row[i] ?? ''])));
}

describeWithCommand('locust', 'python3-locust', 'Locust against the real server on 127.0.0.1', () => {
  let server: ServerProcess;
  let scratch: string;
  beforeAll(async () => {
    server = await spawnServer();
    scratch = await mkdtemp(path.join(tmpdir(), 'locust-'));
  });
  afterAll(async () => {
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const locust = (args: string[], env: Record<string, string> = {}, target = server) =>
    promisify(execFile)('locust', ['-f', 'loadtest/locustfile.py', '--headless', '--host', target.url, '--only-summary', ...args], {
      env: { ...process.env, ...env },
      timeout: 90_000,
    });

  it('50 users for 20 s: both protocols and both classes exercised, no failure', async () => {
    const csv = path.join(scratch, 'run');
    const { stderr } = await locust(['-u', '50', '-r', '25', '-t', '20s', '--csv', csv]);
    expect(stderr).toMatch(/All users spawned: .* \(50 total users\)/);
    expect(stderr).not.toMatch(/Shape test/);
    const stats = await readCsv(`${csv}_stats.csv`);
    const byName = Object.fromEntries(stats.map((row) => [row.Name, row]));
    for (const name of ['tfserving predict (normal)', 'tfserving predict (anomalous)', 'v2 infer (normal)', 'v2 infer (anomalous)']) {
      expect(Number(byName[name]?.['Request Count'])).toBeGreaterThan(10);
    }
    expect(byName.Aggregated!['Failure Count']).toBe('0');
    expect(await readCsv(`${csv}_failures.csv`)).toEqual([]);
  }, 120_000);

  it('LOAD_SHAPE=ramp: ramps up to PEAK_USERS, holds, ramps down and stops by itself', async () => {
    const csv = path.join(scratch, 'shape');
    const started = Date.now();
    const { stderr } = await locust(['--csv', csv], { LOAD_SHAPE: 'ramp', PEAK_USERS: '6', RAMP_UP_SECONDS: '3', PLATEAU_SECONDS: '4', RAMP_DOWN_SECONDS: '2' });
    expect(Date.now() - started).toBeLessThan(30_000);
    // Locust logs each stage it reaches.
    const spawned = [...stderr.matchAll(/All users spawned: .* \((\d+) total users\)/g)].map((m) => Number(m[1]));
    expect(spawned).toEqual([6, 1]);
    expect(stderr).toMatch(/Shape test stopping/);
    expect((await readCsv(`${csv}_stats.csv`)).find((row) => row.Name === 'Aggregated')!['Failure Count']).toBe('0');
  }, 60_000);

  it('a bad LOAD_SHAPE setting stops Locust with a message', async () => {
    const error = await locust(['-u', '1', '-t', '1s'], { LOAD_SHAPE: 'ramp', PEAK_USERS: 'many' }).catch((e: { stderr: string }) => e);
    expect((error as { stderr: string }).stderr).toMatch(/PEAK_USERS='many' must be a whole number/);
  });

  it('sends the first key of API_KEYS_FILE to a server that asks for one, as the in-cluster load test does', async () => {
    const keys = path.join(scratch, 'keys');
    await writeFile(keys, '# the load test takes the first key\nlocust-key-4d0c9b2e71a5\nanother-key-of-the-secret\n');
    const keyed = await spawnServer({ API_KEYS_FILE: keys });
    try {
      const csv = path.join(scratch, 'keyed');
      await locust(['-u', '4', '-r', '4', '-t', '4s', '--csv', csv], { API_KEYS_FILE: keys }, keyed);
      const aggregated = (await readCsv(`${csv}_stats.csv`)).find((row) => row.Name === 'Aggregated')!;
      expect(Number(aggregated['Request Count'])).toBeGreaterThan(10);
      expect(aggregated['Failure Count']).toBe('0');
      // Without the key, every request fails: the key above is what got them through.
      const refused = await locust(['-u', '1', '-t', '2s'], {}, keyed).catch((e: { stderr: string }) => e);
      expect(refused.stderr).toMatch(/401/);
    } finally {
      await keyed.stop();
    }
  }, 60_000);

  it('the load-test chart ships this locustfile', async () => {
    const configMap = parseAllDocuments(await readFile('dist/load-test/load-test.k8s.yaml', 'utf8'))
      .map((d) => d.toJS() as { kind: string; data: Record<string, string> })
      .find((m) => m.kind === 'ConfigMap')!;
    expect(configMap.data['locustfile.py']).toBe(await readFile('loadtest/locustfile.py', 'utf8'));
  });
});

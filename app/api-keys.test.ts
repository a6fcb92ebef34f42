import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledExample, bundledMetadata } from '../test/bundled-model.ts';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { ApiKeysError, parseApiKeys } from './api-keys.ts';

const MODEL = bundledMetadata.name;
const KEY = 'k3y-0f-the-first-client-3f9a1c';
const ROTATED = 'k3y-0f-the-second-client-77d0e2';
const NEXT = 'k3y-given-out-after-the-update-51b8';

describe('parseApiKeys', () => {
  it('reads one key a line, skipping blank lines and comments, whatever the line ends', () => {
    expect(parseApiKeys(`# clients\n${KEY}\r\n\n  ${ROTATED}  \n`, 'keys')).toEqual([KEY, ROTATED]);
  });

  it.each([
    ['a key with a space', `${KEY}\nnot a key at all!!`, /^keys line 2: a key may hold only letters, digits/],
    ['a short key', 'short-key', /^keys line 1: the key has 9 characters; at least 16 are needed/],
    ['no key', '# none yet\n\n', /^keys holds no key: one a line, or unset API_KEYS_FILE/],
  ])('rejects %s, naming the line and never the key', (_, text, message) => {
    expect(() => parseApiKeys(text, 'keys')).toThrow(ApiKeysError);
    expect(() => parseApiKeys(text, 'keys')).toThrow(message);
    expect(() => parseApiKeys(text, 'keys')).not.toThrow(/short-key|not a key at all/);
  });
});

/**
 * A keys file laid out as the kubelet lays out a mounted Secret: `keys` links to `..data/keys`,
 * and `..data` to a timestamped folder; an update writes a new folder and swaps `..data`.
 */
async function secretVolume(dir: string) {
  let version = 0;
  const update = async (text: string) => {
    const folder = `..2026_11_25_0${version++}`;
    await mkdir(path.join(dir, folder));
    await writeFile(path.join(dir, folder, 'keys'), text);
    await symlink(folder, path.join(dir, '..data_tmp'));
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  };
  return { file: path.join(dir, 'keys'), update, link: () => symlink('..data/keys', path.join(dir, 'keys')) };
}

describe('a server with API_KEYS_FILE', () => {
  let dir: string;
  let volume: Awaited<ReturnType<typeof secretVolume>>;
  let server: ServerProcess;
  const body = JSON.stringify({ instances: [bundledExample('anomalous')] });
  const predict = (headers: Record<string, string> = {}) => fetch(`${server.url}/v1/models/${MODEL}:predict`, { method: 'POST', headers, body });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'api-keys-'));
    volume = await secretVolume(dir);
    await volume.update(`${KEY}\n${ROTATED}\n`);
    await volume.link();
    server = await spawnServer({ API_KEYS_FILE: volume.file, LOG_LEVEL: 'debug' });
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 401 with a Bearer challenge and a JSON error to a request without a key, on every API route', async () => {
    const routes: [string, RequestInit?][] = [
      [`/v1/models/${MODEL}:predict`, { method: 'POST', body }],
      ['/predict', { method: 'POST', body }],
      [`/v1/models/${MODEL}`],
      [`/v1/models/${MODEL}/metadata`],
      ['/v2'],
      [`/v2/models/${MODEL}`],
      [`/v2/models/${MODEL}/ready`],
      [`/v2/models/${MODEL}/infer`, { method: 'POST', body: '{}' }],
      [`/v2/models/${MODEL}/stats`],
      [`/v2/models/${MODEL}/config`],
      ['/v2/repository/index', { method: 'POST' }],
      ['/ui/model'],
      // Without a key, not even which routes exist is told.
      ['/no/such/route'],
    ];
    for (const [route, init] of routes) {
      const response = await fetch(server.url + route, init);
      expect({ route, status: response.status }).toEqual({ route, status: 401 });
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="anomaly-serve"');
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ error: 'an API key is needed: send it as "Authorization: Bearer <key>" or "x-api-key: <key>"' });
    }
  });

  it('serves a request with a key as a Bearer token or in x-api-key, and either of two keys (rotation)', async () => {
    const accepted: Record<string, string>[] = [{ Authorization: `Bearer ${KEY}` }, { authorization: `bearer ${ROTATED}` }, { 'x-api-key': KEY }, { 'X-API-Key': ROTATED }];
    for (const headers of accepted) {
      const response = await predict(headers);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { predictions: { is_anomaly: boolean }[] }).predictions[0]!.is_anomaly).toBe(true);
    }
  });

  it('rejects a wrong or malformed key with 401 invalid_token, and an Authorization header of another scheme with 400', async () => {
    const refused: Record<string, string>[] = [{ Authorization: `Bearer ${KEY}x` }, { 'x-api-key': KEY.slice(0, -1) }, { 'x-api-key': 'not a key' }];
    for (const headers of refused) {
      const response = await predict(headers);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="anomaly-serve", error="invalid_token"');
      expect(await response.json()).toEqual({ error: 'the API key is not valid' });
    }
    const basic = await predict({ Authorization: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}` });
    expect(basic.status).toBe(400);
    expect(basic.headers.get('www-authenticate')).toBe('Bearer realm="anomaly-serve", error="invalid_request"');
    expect(await basic.json()).toEqual({ error: 'the Authorization header must be "Bearer <key>"' });
  });

  it('takes a Bearer key beside an empty x-api-key (a client\'s unset variable)', async () => {
    expect((await predict({ Authorization: `Bearer ${KEY}`, 'x-api-key': '' })).status).toBe(200);
  });

  it('leaves the health probes, the page and the metrics port open', async () => {
    for (const route of ['/v2/health/live', '/v2/health/ready', '/', '/ui/app.js']) expect({ route, status: (await fetch(server.url + route)).status }).toEqual({ route, status: 200 });
    const metrics = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    // Refused requests are counted like any other.
    expect(metrics).toMatch(/^anomaly_serve_http_requests_total\{method="POST",route="\/v1\/models\/:target",status="401"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^anomaly_serve_requests_rejected_total\{reason="unauthorized"\} [1-9]\d*$/m);
  });

  it('never writes a key to its log, not even at debug', () => {
    const output = server.logs.map((line) => JSON.stringify(line)).join('\n') + server.stderr();
    expect(server.logs.some((line) => line.msg === 'request not authorised' && line.status === 401)).toBe(true);
    for (const key of [KEY, ROTATED, KEY.slice(0, -1)]) expect(output).not.toContain(key);
  });

  it('takes up a Secret update within seconds, and keeps the keys it has when an update holds none', async () => {
    expect(server.logs.find((line) => line.msg === 'API keys required')).toMatchObject({ keys: 2 });
    await volume.update(`# rotated\n${NEXT}\n`);
    await expect.poll(async () => (await predict({ Authorization: `Bearer ${NEXT}` })).status, { timeout: 10_000, interval: 200 }).toBe(200);
    expect((await predict({ Authorization: `Bearer ${KEY}` })).status).toBe(401);
    expect(server.logs.find((line) => line.msg === 'API keys reloaded')).toMatchObject({ keys: 1 });

    await volume.update('# emptied by mistake\n');
    await expect.poll(() => server.logs.some((line) => line.msg === 'API keys not reloaded: keeping the previous ones'), { timeout: 10_000, interval: 200 }).toBe(true);
    expect(server.logs.find((line) => line.msg === 'API keys not reloaded: keeping the previous ones')).toMatchObject({ level: 'error', keys: 1 });
    expect((await predict({ Authorization: `Bearer ${NEXT}` })).status).toBe(200);
  });
});

describe('a server whose API_KEYS_FILE cannot be used', () => {
  it.each([
    ['is missing', undefined, /cannot start: cannot read \/nonexistent\/keys: ENOENT/],
    ['holds a key too short', 'letmein\n', /cannot start: .*keys line 1: the key has 7 characters; at least 16 are needed/],
  ])('exits 1 when it %s, saying why', async (_, text, message) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'api-keys-'));
    const file = text === undefined ? '/nonexistent/keys' : path.join(dir, 'keys');
    if (text !== undefined) await writeFile(file, text);
    const error = (await spawnServer({ API_KEYS_FILE: file }).catch((e: Error) => e)) as Error;
    await rm(dir, { recursive: true, force: true });
    expect(error.message).toMatch(/exited with 1 before it was ready/);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('letmein');
  });
});

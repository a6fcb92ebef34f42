import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './settings.ts';
import { createLogger } from '../lib/logger.ts';
import type { Score } from '../model/detector.ts';
import { bundledExample } from '../test/bundled-model.ts';
import { post, type Outcome } from '../test/http-post.ts';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { processStat } from '../lib/proc-stat.ts';
import { startServer, type RunningServer } from './lifecycle.ts';
import { PROCESS_TITLE } from './shutdown-signals.ts';

/**
 * What the server promises whatever a client sends or fails to do, and whatever fails inside it:
 * every request gets an answer, faults stay in their batch, overload is shed, and start-up, a
 * worker's death and the drain lose nothing. Each through a real server on 127.0.0.1.
 */

const [normal, anomalous] = [bundledExample('normal'), bundledExample('anomalous')];
const MODEL = 'ecg-autoencoder';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const predict = (url: string, rows: unknown[], agent?: http.Agent, headers?: Record<string, string>) =>
  post(`${url}/predict`, JSON.stringify({ instances: rows }), { agent, headers, timeoutMs: 5_000 });

const metricsText = async (server: { metricsUrl: string }) => (await fetch(`${server.metricsUrl}/metrics`)).text();
const metricValue = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('a fault inside the server fails its batch alone (in process)', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0' }), createLogger('test', { level: 'silent' }));
    await server.loaded;
  });
  afterAll(() => server.drain());

  /** Replaces the detector's forward pass for its next call only: `fault` gets the batch's number of rows. */
  const onNextPass = (fault: (rows: number) => Score[]) => {
    const detector = server.state.model!.detector;
    const scoreNormalised = detector.scoreNormalised;
    detector.scoreNormalised = (input) => {
      detector.scoreNormalised = scoreNormalised;
      return fault(input.length / detector.inputLength);
    };
  };

  it.each([
    [
      'in the forward pass',
      () => {
        throw new Error('injected: the backend failed');
      },
      500,
    ],
    // prom-client refuses to observe NaN: the reconstruction-error histogram throws.
    ['in the metrics', (rows: number) => Array.from({ length: rows }, () => ({ reconstructionError: Number.NaN, isAnomaly: true })), 500],
    // JSON.stringify cannot write a BigInt: writing the answer throws.
    ['in writing an answer', (rows: number) => Array.from({ length: rows }, () => ({ reconstructionError: 1n as unknown as number, isAnomaly: true })), 500],
  ])('%s: a JSON 500 for that batch, and the same process answers the next request', async (_, fault, status) => {
    onNextPass(fault);
    const failed = await predict(server.url, [normal]);
    expect(failed.status).toBe(status);
    expect(failed.headers!['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(failed.body!).error).toMatch(/failed|internal error/);
    const next = await predict(server.url, [anomalous]);
    expect(next.status).toBe(200);
    expect(JSON.parse(next.body!).predictions[0].is_anomaly).toBe(true);
  });
});

describe('overload is shed, not queued without end', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer({ MAX_QUEUED_ROWS: '16' });
  });
  afterAll(() => server.stop());

  it('answers 503 with Retry-After and a JSON body past MAX_QUEUED_ROWS, counts it, and scores the rest', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 300 });
    const outcomes = await Promise.all(Array.from({ length: 600 }, (_, i) => predict(server.url, [i % 2 ? normal : anomalous], agent)));
    agent.destroy();
    const shed = outcomes.filter((o) => o.status === 503);
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 503)).toEqual([]);
    expect(shed.length).toBeGreaterThan(0);
    expect(shed.length).toBeLessThan(outcomes.length);
    for (const answer of shed) {
      expect(answer.headers!['retry-after']).toBe('1');
      expect(JSON.parse(answer.body!).error).toMatch(/^the server is at capacity: \d+ rows already wait for a forward pass \(MAX_QUEUED_ROWS=16\)$/);
    }
    expect(metricValue(await metricsText(server), 'anomaly_serve_requests_rejected_total{reason="queue_full"}')).toBe(shed.length);
  });
});

describe('what a client sends without being asked, or does not read', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer({ WRITE_TIMEOUT_SECONDS: '1' });
  });
  afterAll(() => server.stop());

  /** Sends `head`, then `chunk` every few milliseconds for up to 5 s: the bytes it got to send, the answer, and the time to the close. */
  async function stream(head: string, chunk: Buffer) {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    let sent = 0;
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    socket.on('error', () => {});
    const start = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - start)));
    socket.write(head);
    while (!socket.destroyed && Date.now() - start < 5000) {
      if (socket.write(chunk)) sent += chunk.length;
      else await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
      await sleep(1);
    }
    socket.destroy();
    return { ms: await closed, sent, received };
  }

  it.each([
    ['GET with a declared length', 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n', /"error":"GET \/v2\/health\/live takes no request body"/],
    ['GET with a chunked body', 'GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', /"error":"GET \/v2\/health\/ready takes no request body"/],
  ])('%s: refused with 400 at once and the connection closed, whatever keeps coming', async (_, head, error) => {
    const { ms, sent, received } = await stream(head, Buffer.from(`10000\r\n${' '.repeat(0x10000)}\r\n`));
    expect(received).toMatch(/^HTTP\/1\.1 400 /);
    expect(received).toMatch(/^connection: close\r$/im);
    expect(received).toMatch(error);
    expect(ms).toBeLessThan(2000);
    // What the kernel's buffers took before the close: megabytes, not the 300 MB offered.
    expect(sent).toBeLessThan(32 * 1024 * 1024);
  });

  it('a POST declaring both a length and a chunked body: refused with 400 by Node.js, so that a declared length is always the body\'s', async () => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    // Sent whole, once: nothing more arrives after the server's answer to reset the connection under it.
    socket.end(`POST /v1/models/${MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}{}{\r\n0\r\n\r\n`);
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('an endless chunked POST: answered (404, or 413 past MAX_BODY_BYTES) and the connection closed, the rest not read', async () => {
    const { ms, sent, received } = await stream('POST /nothing HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', Buffer.from(`10000\r\n${' '.repeat(0x10000)}\r\n`));
    expect(received).toMatch(/^HTTP\/1\.1 (404|413) /);
    expect(received).toMatch(/^connection: close\r$/im);
    expect(ms).toBeLessThan(2000);
    expect(sent).toBeLessThan(32 * 1024 * 1024);
  });

  it('a client that does not read its answers is disconnected after WRITE_TIMEOUT_SECONDS', async () => {
    // Pipelined requests for the largest answer there is (every output, MAX_BATCH_SIZE rows), never read.
    const rows = Array.from({ length: 64 }, () => normal);
    const body = JSON.stringify({ inputs: [{ name: 'beat', shape: [64, 140], datatype: 'FP32', data: rows }], outputs: [{ name: 'reconstruction_error' }, { name: 'is_anomaly' }, { name: 'reconstruction' }] });
    const request = `POST /v2/models/${MODEL}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.pause(); // never reads
    const start = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - start)));
    for (let i = 0; i < 200 && !socket.destroyed; i++) socket.write(request);
    const ms = await Promise.race([closed, sleep(15_000).then(() => Infinity)]);
    expect(ms).toBeLessThan(10_000);
    expect(server.child.exitCode).toBeNull();
    expect((await predict(server.url, [anomalous])).status).toBe(200);
  });
});

describe('WEB_CONCURRENCY=2: ready means every worker that takes a connection can answer it', () => {
  it('never answers 503 "still loading", as it starts or as a dead worker is replaced', async () => {
    const server = await spawnServer({ WEB_CONCURRENCY: '2' }, { waitFor: 'listening' });
    const outcomes: Outcome[] = [];
    let stop = false;
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const outcome = await predict(server.url, [normal]);
        outcomes.push(outcome);
        // A client that lost a connection waits before its next, as a client with retries would.
        if (outcome.error) await sleep(100);
      }
    });
    const readyWorkers = () => [...new Set(server.logs.filter((l) => l.msg === 'model loaded (ready)').map((l) => l.pid as number))];
    await expect.poll(readyWorkers, { timeout: 30_000 }).toHaveLength(2);
    process.kill(readyWorkers()[0]!, 'SIGKILL');
    await expect.poll(readyWorkers, { timeout: 30_000 }).toHaveLength(3);
    await sleep(200);
    stop = true;
    await Promise.all(clients);
    expect(await server.stop()).toBe(0);
    expect(outcomes.filter((o) => o.status === 503)).toEqual([]);
    // A connection the killed worker held is lost with it (reset), and so is one the primary hands
    // it in the moment before it sees the death (node:cluster's round-robin): at most two a client,
    // its request in flight and its next; every other request is answered.
    const lost = outcomes.filter((o) => o.error === 'ECONNRESET' || o.error === 'TIMEOUT');
    expect(lost.length).toBeLessThanOrEqual(8);
    expect(outcomes.filter((o) => o.status !== 200 && !lost.includes(o)).map((o) => o.status ?? o.error)).toEqual([]);
    expect(outcomes.filter((o) => o.status === 200).length).toBeGreaterThan(50);
  });
});

const childrenOf = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);

describe.runIf(process.platform === 'linux')('WEB_CONCURRENCY=2: a worker that dies while the primary answers it', () => {
  it('costs the primary nothing: the failed message is logged, the worker replaced, the port served', async () => {
    const server = await spawnServer({ WEB_CONCURRENCY: '2' });
    const primary = server.child.pid!;
    const readyWorkers = () => [...new Set(server.logs.filter((l) => l.msg === 'model loaded (ready)').map((l) => l.pid as number))];
    await expect.poll(readyWorkers, { timeout: 30_000 }).toHaveLength(2);
    try {
      const first = new Set(childrenOf(primary));
      process.kill(readyWorkers()[0]!, 'SIGKILL');
      await expect.poll(() => childrenOf(primary).some((pid) => !first.has(pid)), { timeout: 10_000, interval: 1 }).toBe(true);
      const replacement = childrenOf(primary).find((pid) => !first.has(pid))!;
      // The primary stopped, its new worker loads its model, asks the primary for the listening
      // socket and waits for the answer: a second asleep, without a tick of CPU in any thread.
      process.kill(primary, 'SIGSTOP');
      let last = { cpuTicks: -1, at: Date.now() };
      await expect
        .poll(
          () => {
            const { state, cpuTicks } = processStat(replacement);
            // Asleep, not merely kept off a busy machine's cores.
            if (state !== 'S' || cpuTicks !== last.cpuTicks) last = { cpuTicks, at: Date.now() };
            return Date.now() - last.at;
          },
          { timeout: 30_000, interval: 50 },
        )
        .toBeGreaterThan(1000);
      // Ctrl-C reaching it then: it exits at once, and the primary answers a process that is gone.
      process.kill(replacement, 'SIGINT');
      await expect.poll(() => processStat(replacement).state, { timeout: 5_000 }).toBe('Z');
      process.kill(primary, 'SIGCONT');
      await expect.poll(() => server.logs.filter((l) => l.msg === 'a message to a worker failed').map((l) => l.pid), { timeout: 10_000 }).toEqual([replacement]);
      await expect.poll(readyWorkers, { timeout: 30_000 }).toHaveLength(3);
      expect(server.child.exitCode).toBeNull();
      expect((await predict(server.url, [anomalous])).status).toBe(200);
      expect(await server.stop()).toBe(0);
    } finally {
      // Whatever failed above, nothing is left stopped, or running.
      if (server.child.exitCode === null) {
        process.kill(primary, 'SIGCONT');
        await server.stop();
      }
    }
  });
});

/** Whether `pid` has taken its signal handlers: it then names itself anomaly-serve (server.ts). */
const handlesSignals = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(PROCESS_TITLE);

describe.runIf(process.platform === 'linux')('a signal at any moment of start-up', () => {
  // To the process alone (what the kubelet does to a container's PID 1), or to its whole process
  // group (Ctrl-C in a terminal: the primary and each worker get it).
  it.each([
    ['SIGTERM', 0, '1', 'process'],
    ['SIGTERM', 30, '1', 'process'],
    ['SIGINT', 120, '1', 'group'],
    ['SIGTERM', 300, '1', 'process'],
    ['SIGTERM', 700, '1', 'group'],
    ['SIGTERM', 1500, '1', 'process'],
    ['SIGTERM', 0, '2', 'process'],
    ['SIGINT', 150, '2', 'group'],
    ['SIGINT', 500, '2', 'group'],
    ['SIGTERM', 1500, '2', 'process'],
  ] as const)('%s %i ms after its first line ran (WEB_CONCURRENCY=%s), to the %s: exit 0, promptly', async (signal, delay, workers, target) => {
    const server = await spawnServer({ WEB_CONCURRENCY: workers, SHUTDOWN_DELAY_SECONDS: '0' }, { waitFor: 'spawned', detached: true });
    const pid = server.child.pid!;
    await expect.poll(() => handlesSignals(pid), { timeout: 10_000, interval: 2 }).toBe(true);
    await sleep(delay);
    const signalledAt = Date.now();
    process.kill(target === 'group' ? -pid : pid, signal);
    const code = await server.exited;
    const stoppedIn = Date.now() - signalledAt;
    // What the server said, should it not exit as it must: which process did what, and when.
    const said = `${server.logs.map((line) => JSON.stringify(line)).join('\n')}\n${server.stderr()}`;
    expect(code, said).toBe(0);
    expect(server.child.signalCode, said).toBeNull();
    expect(stoppedIn, said).toBeLessThan(5000);
  });
});

describe('WEB_CONCURRENCY=2 with API keys: a failed reload never stops the service', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps the keys in force when the file is emptied, counts the failure, and hands them to a worker that replaces a dead one', async () => {
    const key = 'a'.repeat(8) + 'reliable-key-0123';
    const file = path.join(dir, 'keys');
    await writeFile(file, `${key}\n`);
    const server = await spawnServer({ WEB_CONCURRENCY: '2', API_KEYS_FILE: file });
    const readyWorkers = () => [...new Set(server.logs.filter((l) => l.msg === 'model loaded (ready)').map((l) => l.pid as number))];
    await expect.poll(readyWorkers, { timeout: 30_000 }).toHaveLength(2);
    const loadedAt = metricValue(await metricsText(server), 'anomaly_serve_api_keys_last_load_timestamp_seconds');
    expect(loadedAt).toBeGreaterThan(Date.now() / 1000 - 60);

    await writeFile(file, '');
    await expect.poll(async () => metricValue(await metricsText(server), 'anomaly_serve_api_keys_reload_failures_total'), { timeout: 10_000 }).toBe(1);
    process.kill(readyWorkers()[0]!, 'SIGKILL');
    await expect.poll(readyWorkers, { timeout: 30_000 }).toHaveLength(3);

    const agent = new http.Agent({ keepAlive: false });
    const answers = await Promise.all(Array.from({ length: 20 }, () => predict(server.url, [anomalous], agent, { Authorization: `Bearer ${key}` })));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect((await predict(server.url, [anomalous])).status).toBe(401);
    const metrics = await metricsText(server);
    expect(metricValue(metrics, 'anomaly_serve_api_keys_last_load_timestamp_seconds')).toBe(loadedAt);
    expect(server.logs.filter((l) => l.msg === 'API keys not reloaded: keeping the previous ones')).toHaveLength(1);
    expect(await server.stop()).toBe(0);
  });
});

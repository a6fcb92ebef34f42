import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './settings.ts';
import { createLogger } from '../lib/logger.ts';
import { bundledExample, bundledMetadata as metadata } from '../test/bundled-model.ts';
import { spawnServer, type ServerProcess, type SpawnOptions } from '../lib/server-process.ts';
import { processStat } from '../lib/proc-stat.ts';
import { post } from '../test/http-post.ts';
import { startServer, type RunningServer } from './lifecycle.ts';

const [normal, anomalous] = [bundledExample('normal'), bundledExample('anomalous')];
const predictBody = (rows: unknown[]) => JSON.stringify({ instances: rows });

/** One POST of a prediction; resolves with the status and the answer's JSON, or the socket error's code. */
async function predictPost(url: string, body: string, agent?: http.Agent): Promise<{ status?: number; error?: string; json?: unknown }> {
  const { status, error, body: text } = await post(`${url}/predict`, body, { agent });
  return { status, error, json: text === undefined ? undefined : JSON.parse(text) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `count` clients posting beats, each on a keep-alive connection of its own, until `msAfterSignal`
 * after `signalled()` is called: how each request ended, and whether it was sent after the signal.
 */
function clientsUntilAfterSignal(url: string, count: number, msAfterSignal: number) {
  const outcomes: { status?: number; error?: string; afterSignal: boolean }[] = [];
  let signalledAt = Infinity;
  const done = Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      while (Date.now() < signalledAt + msAfterSignal) {
        const result = await predictPost(url, predictBody([i % 2 ? normal : anomalous]), agent);
        outcomes.push({ ...result, afterSignal: Date.now() > signalledAt });
      }
      agent.destroy();
    }),
  );
  return { outcomes, done, signalled: () => (signalledAt = Date.now()) };
}

/**
 * A client that sends a request's headers and then its body a byte every 100 ms; `ended` resolves
 * with what the server answered once it closes the connection.
 */
function trickleBody(url: string) {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  let response = '';
  socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
  socket.on('error', () => {});
  socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n');
  const timer = setInterval(() => socket.writable && socket.write(' '), 100);
  const ended = new Promise<string>((resolve) => socket.on('close', () => resolve(response)));
  void ended.then(() => clearInterval(timer));
  return { ended, stop: () => (clearInterval(timer), socket.destroy()) };
}

const metricValue = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

describe('a real listening server (in process)', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0' }), createLogger('test', { level: 'silent' }));
    await server.loaded;
  });
  afterAll(() => server.drain());

  it('is live and ready, and scores over HTTP', async () => {
    expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${server.url}/v2/health/ready`)).status).toBe(200);
    const result = await predictPost(server.url, predictBody([normal, anomalous]));
    expect(result.status).toBe(200);
    expect((result.json as { predictions: { is_anomaly: boolean }[] }).predictions.map((p) => p.is_anomaly)).toEqual([false, true]);
  });

  it('serves its metrics on the metrics port only', async () => {
    expect(server.metricsUrl).not.toBe(server.url);
    const metrics = await fetch(`${server.metricsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^anomaly_serve_instances_scored_total \d+$/m);
    const onServingPort = await fetch(`${server.url}/metrics`);
    expect(onServingPort.status).toBe(404);
    expect(await onServingPort.json()).toEqual({ error: 'no route for GET /metrics' });
  });

  it('coalesces concurrent requests into shared forward passes, each getting its own rows back, a bad one failing alone', async () => {
    const before = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const requests = Array.from({ length: 200 }, (_, i) => (i === 17 ? [normal.slice(1)] : i % 2 ? [anomalous] : [normal, anomalous]));
    const results = await Promise.all(requests.map((rows) => predictPost(server.url, predictBody(rows), agent)));
    agent.destroy();
    results.forEach((result, i) => {
      if (i === 17) {
        expect(result).toMatchObject({ status: 400, json: { error: 'instances[0]: expected 140 values, got 139' } });
      } else {
        expect(result.status).toBe(200);
        const verdicts = (result.json as { predictions: { is_anomaly: boolean }[] }).predictions.map((p) => p.is_anomaly);
        expect(verdicts).toEqual(i % 2 ? [true] : [false, true]);
      }
    });
    const after = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    const rows = requests.filter((_, i) => i !== 17).flat().length;
    const passes = metricValue(after, 'anomaly_serve_batch_size_count') - metricValue(before, 'anomaly_serve_batch_size_count');
    expect(metricValue(after, 'anomaly_serve_batch_size_sum') - metricValue(before, 'anomaly_serve_batch_size_sum')).toBe(rows);
    expect(passes).toBeLessThan(requests.length - 1);
  });
});

describe('a drain that reaches its deadline (in process)', () => {
  it('closes the connections of requests still unfinished, and ends on time', async () => {
    const server = await startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', SHUTDOWN_DELAY_SECONDS: '0' }), createLogger('test', { level: 'silent' }));
    await server.loaded;
    const trickle = trickleBody(server.url);
    await sleep(100);
    const start = Date.now();
    await server.drain(Date.now() + 500);
    expect(Date.now() - start).toBeGreaterThanOrEqual(450);
    expect(Date.now() - start).toBeLessThan(2000);
    expect(await trickle.ended).toBe('');
    trickle.stop();
  });
});

describe('the server process', () => {
  it('drains on SIGTERM: unready at once, serves through the delay, finishes in-flight requests, exits 0', async () => {
    const server = await spawnServer({ SHUTDOWN_DELAY_SECONDS: '2' });
    const logged = (message: string) => server.logs.some((l) => l.msg === message);
    // Four clients keep sending until 1.2 s into the 2 s delay: the time a load balancer has to
    // stop routing to a pod that turned unready.
    const clients = clientsUntilAfterSignal(server.url, 4, 1200);
    await sleep(300);
    server.child.kill('SIGTERM');
    clients.signalled();
    await expect.poll(() => logged('draining: not ready, still serving')).toBe(true);
    expect((await fetch(`${server.url}/v2/health/ready`)).status).toBe(503);
    await clients.done;

    // A request in flight when the server stops accepting: half its body before, half after.
    expect(logged('draining: no longer accepting connections, finishing in-flight requests')).toBe(false);
    const { port } = new URL(server.url);
    const slow = net.connect(Number(port), '127.0.0.1');
    let response = '';
    slow.on('data', (chunk: Buffer) => (response += chunk.toString()));
    const body = predictBody([anomalous]);
    slow.write(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 100)}`);
    await expect.poll(() => logged('draining: no longer accepting connections, finishing in-flight requests'), { timeout: 5_000 }).toBe(true);
    expect((await predictPost(server.url, body)).error).toBe('ECONNREFUSED');
    slow.end(body.slice(100));

    expect(await server.exited).toBe(0);
    expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: close[\s\S]*"is_anomaly":true/i);
    expect(clients.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(clients.outcomes.filter((o) => o.afterSignal).length).toBeGreaterThan(10);
    expect(server.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
  });

  it('keeps accepting after the delay while clients still connect (a load balancer slower than the delay): no request refused or reset', async () => {
    const server = await spawnServer({ SHUTDOWN_DELAY_SECONDS: '0.5' });
    // Eight keep-alive clients go on 1 s past the delay: each answer says Connection: close, so
    // each of their requests comes on a new connection.
    const clients = clientsUntilAfterSignal(server.url, 8, 1500);
    await sleep(300);
    server.child.kill('SIGTERM');
    clients.signalled();
    await clients.done;
    expect(await server.exited).toBe(0);
    expect(clients.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(clients.outcomes.filter((o) => o.afterSignal).length).toBeGreaterThan(20);
  });

  it('drains on a signal that arrives while it starts, before the model is loaded: exit 0', async () => {
    const server = await spawnServer({}, { waitFor: 'listening' });
    expect(await server.stop()).toBe(0);
    const messages = server.logs.map((l) => l.msg);
    expect(messages).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
  });

  it('drains once on Ctrl-C to `npm start`, which delivers the signal twice (the terminal\'s process group, and npm passing it on)', async () => {
    const server = await spawnServer({ SHUTDOWN_DELAY_SECONDS: '1' }, { command: ['npm', 'start', '--silent'], detached: true });
    process.kill(-server.child.pid!, 'SIGINT');
    await server.exited;
    const messages = server.logs.map((l) => l.msg);
    expect(messages.filter((msg) => msg === 'shutting down')).toHaveLength(1);
    expect(messages).toContain('stopped');
    expect(messages).not.toContain('second signal: exiting now');
  });

  it('exits 1 at once on a second signal, a second or more after the first', async () => {
    const server = await spawnServer({ SHUTDOWN_DELAY_SECONDS: '30', SHUTDOWN_TIMEOUT_SECONDS: '60' });
    server.child.kill('SIGTERM');
    await sleep(1100);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(1);
    expect(server.logs.map((l) => l.msg)).toContain('second signal: exiting now');
  });

  it('ends a drain with a client trickling its body within the deadline, exit 0: the request timeout fits in it', async () => {
    const server = await spawnServer({ SHUTDOWN_DELAY_SECONDS: '0', SHUTDOWN_TIMEOUT_SECONDS: '3', REQUEST_TIMEOUT_SECONDS: '2', HEADERS_TIMEOUT_SECONDS: '1' });
    const trickle = trickleBody(server.url);
    await sleep(100);
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(3000);
    expect(await trickle.ended).toMatch(/^HTTP\/1\.1 408 /);
    expect(server.logs.map((l) => l.msg)).toContain('stopped');
  });

  it('exits 1 with a clear message when the request timeout does not fit in the shutdown timeout', async () => {
    const error = await spawnServer({ SHUTDOWN_DELAY_SECONDS: '5', SHUTDOWN_TIMEOUT_SECONDS: '25', REQUEST_TIMEOUT_SECONDS: '30' }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/exited with 2 before it was ready/);
    expect((error as Error).message).toMatch(/SHUTDOWN_DELAY_SECONDS=5 plus REQUEST_TIMEOUT_SECONDS=30 must not be longer than SHUTDOWN_TIMEOUT_SECONDS=25/);
  });

  it('logs JSON: the backend, model version and threshold at start-up, and each request at debug', async () => {
    const server = await spawnServer({ LOG_LEVEL: 'debug' });
    const started = server.logs.find((l) => l.msg === 'model loaded (ready)')!;
    expect(started).toMatchObject({ version: metadata.version, threshold: metadata.threshold.value, model: 'ecg-autoencoder', level: 'info' });
    expect(['tensorflow', 'wasm', 'cpu']).toContain(started.backend);
    // Without tfjs-node (its install could not download libtensorflow), one line says so, and why.
    const fallback = server.logs.filter((l) => String(l.msg).startsWith('@tensorflow/tfjs-node is not available'));
    expect(fallback).toHaveLength(started.backend === 'tensorflow' ? 0 : 1);
    if (started.backend !== 'tensorflow') expect(fallback[0]).toMatchObject({ level: 'warn', backend: started.backend, skipped: [{ backend: 'tensorflow' }] });
    await predictPost(server.url, predictBody([normal]));
    await predictPost(server.url, predictBody([[1, 2]]));
    expect(await server.stop()).toBe(0);
    const requests = server.logs.filter((l) => l.msg === 'request');
    expect(requests.map((l) => [l.level, l.method, l.route, l.status])).toEqual([
      ['debug', 'POST', '/predict', '200'],
      ['debug', 'POST', '/predict', '400'],
    ]);
    // A rejected request is counted, and logged at debug level only: bad requests cannot flood the log.
    expect(server.logs.find((l) => l.msg === 'request rejected')).toMatchObject({ level: 'debug', status: 400, error: 'instances[0]: expected 140 values, got 2' });
  });

  it('exits 1 with a clear log line when the model cannot be loaded', async () => {
    const error = await spawnServer({ MODEL_PATH: '/nonexistent/model' }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/exited with 1 before it was ready/);
    expect((error as Error).message).toMatch(/cannot start: cannot read \/nonexistent\/model\/metadata\.json: no such file/);
  });

  it('exits 2 naming the variable and the value when the configuration is invalid', async () => {
    const error = await spawnServer({ MAX_BATCH_SIZE: 'lots' }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/exited with 2 before it was ready/);
    expect((error as Error).message).toMatch(/invalid configuration: MAX_BATCH_SIZE=\\"lots\\" is invalid/);
  });
});

describe('WEB_CONCURRENCY=2', () => {
  /** The process ids of the workers that have loaded the model, in order. */
  const readyWorkers = (server: ServerProcess) => [...new Set(server.logs.filter((l) => l.msg === 'model loaded (ready)').map((l) => l.pid as number))];
  const messagesOf = (server: ServerProcess, pid: number) => server.logs.filter((l) => l.pid === pid).map((l) => l.msg);
  /** Whether a process is running: a zombie (exited, not yet reaped by its new parent) is not. */
  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    try {
      return processStat(pid).state !== 'Z';
    } catch {
      return !existsSync('/proc/self'); // no /proc (macOS): kill(pid, 0) is all there is
    }
  };
  async function cluster(env: Record<string, string> = {}, options: SpawnOptions = {}): Promise<ServerProcess> {
    const server = await spawnServer({ WEB_CONCURRENCY: '2', ...env }, options);
    await expect.poll(() => readyWorkers(server).length, { timeout: 20_000 }).toBe(2);
    return server;
  }
  const scored = async (server: ServerProcess) => metricValue(await (await fetch(`${server.metricsUrl}/metrics`)).text(), 'anomaly_serve_instances_scored_total');

  it('serves from two workers on one port, aggregates their metrics, drains both on SIGTERM, and keeps TensorFlow.js out of the primary', async () => {
    const server = await cluster({ NODE_DEBUG: 'module' });
    const results = await Promise.all(Array.from({ length: 40 }, () => predictPost(server.url, predictBody([anomalous]))));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const metrics = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    expect(metricValue(metrics, 'anomaly_serve_instances_scored_total')).toBe(40);
    expect(metricValue(metrics, 'anomaly_serve_anomalies_total')).toBe(40);
    expect(metrics.match(/^anomaly_serve_model_info\{/gm)).toHaveLength(1);
    // Summed over the workers into one series; nothing is in flight once every answer is in.
    expect(metrics.match(/^anomaly_serve_inference_requests_in_flight /gm)).toHaveLength(1);
    expect(metricValue(metrics, 'anomaly_serve_inference_requests_in_flight')).toBe(0);
    // The drift gauges test every worker's window merged: one series, of all 40 scores.
    expect(metrics.match(/^anomaly_serve_drift_window_scores /gm)).toHaveLength(1);
    expect(metricValue(metrics, 'anomaly_serve_drift_window_scores')).toBe(40);
    expect(metricValue(metrics, 'anomaly_serve_drift_window_anomaly_rate')).toBe(1);
    expect(metricValue(metrics, 'anomaly_serve_drift_ks_p_value')).toBeLessThan(1e-6);

    // NODE_DEBUG=module has every process log, under its pid, the CommonJS modules it loads.
    const loadedTensorFlow = new Set([...server.stderr().matchAll(/^MODULE (\d+): .*@tensorflow\/tfjs/gm)].map((match) => Number(match[1])));
    expect(loadedTensorFlow).toEqual(new Set(readyWorkers(server)));
    expect(loadedTensorFlow.has(server.child.pid!)).toBe(false);

    expect(await server.stop()).toBe(0);
    expect(server.logs.filter((l) => l.msg === 'stopped')).toHaveLength(2);
    expect(server.logs.map((l) => l.msg)).toContain('all workers stopped');
  });

  it('drains once when a signal reaches the whole process group (Ctrl-C): no request lost, exit 0', async () => {
    const server = await cluster({ SHUTDOWN_DELAY_SECONDS: '1' }, { detached: true });
    const clients = clientsUntilAfterSignal(server.url, 8, 600);
    await sleep(300);
    process.kill(-server.child.pid!, 'SIGINT'); // the group: the primary and each worker, as a terminal does
    clients.signalled();
    await clients.done;

    expect(await server.exited).toBe(0);
    expect(clients.outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(clients.outcomes.filter((o) => o.afterSignal).length).toBeGreaterThan(10);
    for (const pid of readyWorkers(server)) {
      expect(messagesOf(server, pid).filter((msg) => msg === 'shutting down')).toHaveLength(1);
      expect(messagesOf(server, pid)).toContain('stopped');
    }
    expect(server.logs.map((l) => l.msg)).not.toContain('second signal: exiting now');
    expect(server.logs.at(-1)).toMatchObject({ msg: 'all workers stopped', failed: false });
  });

  it('exits 1 at once on a second Ctrl-C, and the workers with it', async () => {
    const server = await cluster({ SHUTDOWN_DELAY_SECONDS: '30', SHUTDOWN_TIMEOUT_SECONDS: '60' }, { detached: true });
    const workers = readyWorkers(server);
    process.kill(-server.child.pid!, 'SIGINT');
    await expect.poll(() => server.logs.filter((l) => l.msg === 'shutting down').length).toBe(3);
    await sleep(1100); // sooner, it would be the same signal arriving by another path
    process.kill(-server.child.pid!, 'SIGINT');
    expect(await server.exited).toBe(1);
    expect(messagesOf(server, server.child.pid!)).toContain('second signal: exiting now');
    await expect.poll(() => workers.filter(isAlive)).toEqual([]);
  });

  it('replaces a killed worker, keeps what it counted in the summed counters, and still exits 0 on SIGTERM', async () => {
    const server = await cluster();
    await Promise.all(Array.from({ length: 40 }, () => predictPost(server.url, predictBody([normal]))));
    expect(await scored(server)).toBe(40);

    const [victim] = readyWorkers(server);
    process.kill(victim!, 'SIGKILL');
    await expect.poll(() => readyWorkers(server).length, { timeout: 20_000 }).toBe(3);
    expect(server.logs.find((l) => l.msg === 'a worker exited: starting another')).toMatchObject({ pid: victim, signal: 'SIGKILL' });
    // Prometheus reads a counter that goes down as a reset: the dead worker's 40-odd count stays.
    expect(await scored(server)).toBe(40);
    await Promise.all(Array.from({ length: 10 }, () => predictPost(server.url, predictBody([normal]))));
    expect(await scored(server)).toBe(50);

    expect(await server.stop()).toBe(0);
    expect(server.logs.at(-1)).toMatchObject({ msg: 'all workers stopped', failed: false });
  });

  it('stops cleanly on a signal while its workers are still starting', async () => {
    const server = await spawnServer({ WEB_CONCURRENCY: '2' }, { waitFor: 'listening' });
    expect(await server.stop()).toBe(0);
  });
});

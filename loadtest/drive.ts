import { execFileSync } from 'node:child_process';
import autocannon from 'autocannon';
import type { Logger } from '../lib/logger.ts';
import type { ServerProcess } from '../lib/server-process.ts';
import { processStat } from '../lib/proc-stat.ts';

/** Driving a server with autocannon on 127.0.0.1, and what it cost the server: for the benchmark and the planner. */

export const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export interface Measurement {
  readonly name: string;
  readonly requestsPerSecond: number;
  /** The server process's CPU time (user and system) per answered request. */
  readonly cpuMicrosPerRequest: number;
  readonly meanLatencyMs: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** Requests answered, whatever the status. */
  readonly answered: number;
  /** Requests answered 503 (shed by a server at capacity). */
  readonly shed: number;
  /** The latency of the requests answered 2xx alone, in ms: what an admitted request waited. */
  readonly admittedP50: number;
  readonly admittedP99: number;
}

/** The `q`-quantile of ascending `sorted` values. */
const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** What a benchmark sends: POST `path` with `body` and `headers`. */
export interface Target {
  readonly path: string;
  readonly body: string | Buffer;
  readonly headers: Record<string, string>;
}

/** POST /predict with one row in the row format: the request both the benchmark and the planner drive. */
export const predictTarget = (row: readonly number[]): Target => ({
  path: '/predict',
  body: JSON.stringify({ instances: [row] }),
  headers: { 'content-type': 'application/json' },
});

/** Clock ticks a second, the unit of /proc's CPU times. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** A process's CPU time so far, user and system, in microseconds, from Linux's /proc. */
const cpuMicros = (pid: number) => (processStat(pid).cpuTicks / CLOCK_TICKS) * 1e6;

/**
 * Drives `target` on `server` with `connections` for `duration` seconds (or `amount` requests),
 * at most `rate` requests a second in all when given (an open loop), logging progress every 5 s.
 */
export async function drive(
  logger: Logger,
  name: string,
  server: ServerProcess,
  target: Target,
  load: { connections: number; duration?: number; amount?: number; rate?: number },
): Promise<Measurement> {
  const { url } = server;
  const cpuBefore = cpuMicros(server.child.pid!);
  let sent = 0;
  let shed = 0;
  const admitted: number[] = [];
  const progress = setInterval(() => logger.info({ target: name, requests: sent }, 'progress'), 5_000);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${url}${target.path}`,
        method: 'POST',
        headers: target.headers,
        body: target.body,
        connections: load.connections,
        ...(load.rate ? { overallRate: load.rate } : {}),
        ...(load.amount ? { amount: load.amount } : { duration: load.duration }),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      sent++;
      if (status >= 200 && status < 300) admitted.push(ms);
      else if (status === 503) shed++;
    });
  });
  clearInterval(progress);
  const cpuMicrosPerRequest = (cpuMicros(server.child.pid!) - cpuBefore) / result.requests.total;
  const errors = result.errors + result.timeouts + result.non2xx;
  const admittedSorted = admitted.sort((a, b) => a - b);
  return {
    name,
    requestsPerSecond: result.requests.average,
    cpuMicrosPerRequest,
    meanLatencyMs: result.latency.mean,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors,
    answered: sent,
    shed,
    admittedP50: quantile(admittedSorted, 0.5),
    admittedP99: quantile(admittedSorted, 0.99),
  };
}

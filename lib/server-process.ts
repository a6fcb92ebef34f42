import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/**
 * Starts the real server (`app/server.ts`) as a child process on 127.0.0.1 and a free port, for
 * tests and benchmarks; resolves once it is ready, or rejects with its log if it exits first.
 */
export interface ServerProcess {
  readonly url: string;
  /** Where it serves GET /metrics (METRICS_PORT). */
  readonly metricsUrl: string;
  readonly child: ChildProcess;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code, once every line the server wrote is in `logs` and `stderr`. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** The interface the server listens on, unless `env` says otherwise. */
export const SERVER_HOST = '127.0.0.1';

/**
 * The V8 settings the server runs with, wherever it runs (the image's CMD, `npm start`, the tests
 * and the benchmark; a cluster's workers inherit them). A young generation of at most 16 MB a
 * semi-space: Node.js 24 lets it grow to 64 MB, and at that size, once a lull has let V8's memory
 * reducer shrink the heap, every full collection promotes the few megabytes of requests in flight
 * into a small old generation, which soon asks for the next: 15 to 20 full collections every 3 s
 * under load, with marking running most of the time, and 50% more CPU a request, for as long as
 * the load lasts. Capped, it runs a scavenge where it ran a full collection, and a worker's
 * memory under load is 150 MiB instead of 250 (docs/benchmarks.md).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/** `npm start`'s server: the TypeScript source through tsx. */
export const SOURCE_SERVER_COMMAND: readonly string[] = [process.execPath, ...SERVER_NODE_FLAGS, '--import', 'tsx', 'app/server.ts'];

export interface SpawnOptions {
  /**
   * Resolve once the model is loaded and it listens (`ready`), once it listens (`listening`), or
   * at once (`spawned`: `url` and `metricsUrl` are then empty). @default 'ready'
   */
  readonly waitFor?: 'ready' | 'listening' | 'spawned';
  /** @default the TypeScript server, through tsx */
  readonly command?: readonly string[];
  /** @default this process's working directory */
  readonly cwd?: string;
  /** Start it as the leader of a process group of its own, for signals to the group. @default false */
  readonly detached?: boolean;
}

export async function spawnServer(env: Record<string, string> = {}, options: SpawnOptions = {}): Promise<ServerProcess> {
  const [file, ...args] = options.command ?? SOURCE_SERVER_COMMAND;
  const child = spawn(file!, args, {
    cwd: options.cwd,
    detached: options.detached ?? false,
    env: { ...process.env, HOST: SERVER_HOST, PORT: '0', METRICS_PORT: '0', SHUTDOWN_DELAY_SECONDS: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let output = '';
  let stderr = '';
  // 'close', not 'exit': the exit can come before the last lines still in the pipes are read.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const ready = new Promise<{ url: string; metricsUrl: string }>((resolve, reject) => {
    let urls: { url: string; metricsUrl: string } | undefined;
    // A cluster worker loads its model before it listens: the two lines come in either order.
    let loaded = options.waitFor === 'listening';
    if (options.waitFor === 'spawned') resolve({ url: '', metricsUrl: '' });
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      output += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.url) urls ??= { url: entry.url as string, metricsUrl: entry.metricsUrl as string };
          if (entry.msg === 'model loaded (ready)') loaded = true;
          if (urls && loaded) resolve(urls);
        } catch {
          // not a log line
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      stderr += chunk.toString();
    });
    void exited.then((code) => reject(new Error(`the server exited with ${code} before it was ready:\n${output}`)));
  });
  const { url, metricsUrl } = await ready;
  return {
    url,
    metricsUrl,
    child,
    logs,
    stderr: () => stderr,
    exited,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  return port;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RunningPrometheus {
  readonly url: string;
  /** The value of an instant query that returns one series, or undefined before it exists. */
  query(promql: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * The real Prometheus (Debian's), scraping `target` (host:port) every second as job `job`, and
 * evaluating `rules` (Prometheus rule groups) every second, in a scratch folder it removes.
 */
export async function startPrometheus(target: string, options: { job: string; rules?: unknown }): Promise<RunningPrometheus> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'prometheus-'));
  const config = path.join(scratch, 'prometheus.yml');
  const rules = path.join(scratch, 'rules.yml');
  if (options.rules) await writeFile(rules, stringify(options.rules));
  await writeFile(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      ...(options.rules ? { rule_files: [rules] } : {}),
      scrape_configs: [{ job_name: options.job, static_configs: [{ targets: [target] }] }],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(scratch, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  prometheus.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const stop = async () => {
    if (prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    await rm(scratch, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) {
      return {
        url,
        stop,
        async query(promql) {
          const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
          const body = (await response.json()) as { status: string; error?: string; data: { result: { value: [number, string] }[] } };
          if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
          const [series] = body.data.result;
          return series === undefined ? undefined : Number(series.value[1]);
        },
      };
    }
    await sleep(200);
  }
  await stop();
  throw new Error(`Prometheus did not become ready:\n${log}`);
}

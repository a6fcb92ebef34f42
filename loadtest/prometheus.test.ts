import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bundledExample } from '../test/bundled-model.ts';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { describeWithCommand } from '../test/describe-if.ts';

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeWithCommand('prometheus', 'prometheus', 'a real Prometheus scraping the real server', () => {
  let server: ServerProcess;
  let prometheus: ChildProcess;
  let prometheusUrl: string;
  let scratch: string;
  let log = '';

  beforeAll(async () => {
    server = await spawnServer();
    scratch = await mkdtemp(path.join(tmpdir(), 'prometheus-'));
    const config = path.join(scratch, 'prometheus.yml');
    await writeFile(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: anomaly-serve',
        '    static_configs:',
        `      - targets: ['${new URL(server.metricsUrl).host}']`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(scratch, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    prometheus.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    for (let i = 0; i < 100; i++) {
      if (await fetch(`${prometheusUrl}/-/ready`).then((r) => r.ok, () => false)) return;
      await sleep(200);
    }
    throw new Error(`Prometheus did not become ready:\n${log}`);
  }, 60_000);

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    if (prometheus) await once(prometheus, 'exit');
    await server?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  /** The value of an instant query that returns one series, or undefined before it exists. */
  async function query(promql: string): Promise<number | undefined> {
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] } };
    expect(body.status).toBe('success');
    const [series] = body.data.result;
    return series === undefined ? undefined : Number(series.value[1]);
  }

  it('reports exactly the requests and anomalies that were sent', async () => {
    const [normal, anomalous] = [bundledExample('normal'), bundledExample('anomalous')];
    const traffic = [...Array<number[]>(30).fill(normal!), ...Array<number[]>(12).fill(anomalous!)];
    for (const beat of traffic) {
      const response = await fetch(`${server.url}/predict`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ instances: [beat] }),
      });
      expect(response.status).toBe(200);
    }
    // Wait for a scrape that saw all of it.
    const requests = 'anomaly_serve_http_requests_total{job="anomaly-serve",route="/predict",status="200"}';
    for (let i = 0; i < 100 && (await query(requests)) !== traffic.length; i++) await sleep(200);
    expect(await query(requests)).toBe(42);
    expect(await query('anomaly_serve_instances_scored_total')).toBe(42);
    expect(await query('anomaly_serve_anomalies_total')).toBe(12);
    expect(await query('sum(anomaly_serve_reconstruction_error_count)')).toBe(42);
    expect(await query('up{job="anomaly-serve"}')).toBe(1);
  }, 60_000);
});

import { afterAll, beforeAll, expect, it } from 'vitest';
import { bundledExample } from '../test/bundled-model.ts';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { describeWithCommand } from '../test/describe-if.ts';
import { sleep, startPrometheus, type RunningPrometheus } from '../test/prometheus.ts';

describeWithCommand('prometheus', 'prometheus', 'a real Prometheus scraping the real server', () => {
  let server: ServerProcess;
  let prometheus: RunningPrometheus;

  beforeAll(async () => {
    server = await spawnServer();
    prometheus = await startPrometheus(new URL(server.metricsUrl).host, { job: 'anomaly-serve' });
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await server?.stop();
  });

  const query = (promql: string) => prometheus.query(promql);

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

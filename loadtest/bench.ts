import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createLogger } from '../app/logger.ts';
import type { ModelMetadata } from '../app/model-files.ts';
import { spawnServer, type ServerProcess } from '../app/server-process.ts';

/**
 * `npm run bench`: the scoring server against a bare Hono endpoint that parses the same body and
 * answers a constant, each driven by autocannon on 127.0.0.1 in the same run; the ratio of their
 * throughputs is the figure that matters. Then the memory one oversized request costs each (a body
 * of 1.3 million empty instances, which the server must reject before building them). `--soak`
 * sends a million requests to the server and compares its resident memory after the first
 * 100,000 with that at the end.
 */
const USAGE = `Usage: npm run bench -- [--duration S] [--connections N] [--soak] [--requests N]
  --duration S      seconds to drive each endpoint (default 10)
  --connections N   concurrent connections (default 64)
  --soak            send --requests requests (default 1,000,000) to the server and report RSS growth
`;

const logger = createLogger('bench', { stream: 'stderr' });

function options() {
  try {
    const { values } = parseArgs({
      options: {
        duration: { type: 'string', default: '10' },
        connections: { type: 'string', default: '64' },
        soak: { type: 'boolean', default: false },
        requests: { type: 'string', default: '1000000' },
        help: { type: 'boolean', default: false },
      },
    });
    const duration = Number(values.duration);
    const connections = Number(values.connections);
    const requests = Number(values.requests);
    for (const [name, value] of Object.entries({ duration, connections, requests })) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
    }
    if (values.help) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    return { duration, connections, requests, soak: values.soak };
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

interface Measurement {
  readonly name: string;
  readonly requestsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

async function drive(name: string, url: string, body: string, load: { connections: number; duration?: number; amount?: number }): Promise<Measurement> {
  let sent = 0;
  const progress = setInterval(() => logger.info({ target: name, requests: sent }, 'progress'), 5_000);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${url}/predict`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        connections: load.connections,
        ...(load.amount ? { amount: load.amount } : { duration: load.duration }),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', () => sent++);
  });
  clearInterval(progress);
  const errors = result.errors + result.timeouts + result.non2xx;
  return { name, requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors };
}

/** The resident memory of a process, from Linux's /proc. */
async function processResidentBytes(pid: number): Promise<number> {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** How much one request with `body` adds to a process's resident memory, and its status. */
async function residentGrowth(target: ServerProcess, body: string): Promise<{ bytes: number; status: number }> {
  const before = await processResidentBytes(target.child.pid!);
  const response = await fetch(`${target.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await response.arrayBuffer();
  return { bytes: (await processResidentBytes(target.child.pid!)) - before, status: response.status };
}

async function residentBytes(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^anomaly_serve_process_resident_memory_bytes (\S+)$/m.exec(text)?.[1]);
}

const { duration, connections, requests, soak } = options();
const metadata = JSON.parse(await readFile('model/artifacts/metadata.json', 'utf8')) as ModelMetadata;
const body = JSON.stringify({ instances: [metadata.examples[0]!.beat] });
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
/** 3.9 MB of "[]": JSON.parse would make 1.3 million arrays of it. */
const oversized = `{"instances": [${Array(1_300_000).fill('[]').join(',')}]}`;
// A body limit the oversized request fits in, so that what rejects it is its count of instances.
const server = await spawnServer({ MAX_BODY_BYTES: String(8 * 1024 * 1024) });
try {
  if (soak) {
    logger.info({ requests, connections }, 'soak: sending requests to the scoring server');
    const first = Math.min(100_000, requests);
    await drive('server', server.url, body, { connections, amount: first });
    const rssAfterFirst = await residentBytes(server);
    const rest = await drive('server', server.url, body, { connections, amount: requests - first });
    const rssAtEnd = await residentBytes(server);
    const growth = rssAtEnd / rssAfterFirst - 1;
    process.stdout.write(
      `| requests | RSS after ${first.toLocaleString('en')} | RSS at the end | growth | errors |\n|---|---|---|---|---|\n` +
        `| ${requests.toLocaleString('en')} | ${mib(rssAfterFirst)} MiB | ${mib(rssAtEnd)} MiB | ${(growth * 100).toFixed(1)}% (target < 10%) | ${rest.errors} |\n`,
    );
  } else {
    const bare = await spawnServer({}, { command: [process.execPath, '--import', 'tsx', 'loadtest/bare-endpoint.ts'], waitForReady: false });
    try {
      // First, while both processes are fresh: a heap grown by the load would hide the growth.
      logger.info('measuring the memory of one oversized request');
      const parsed = await residentGrowth(bare, oversized);
      const rejected = await residentGrowth(server, oversized);
      const memory = [
        '',
        `One request of 1.3 million empty instances (${mib(oversized.length)} MiB of JSON), to each freshly started process:`,
        '',
        '| endpoint | status | resident memory added | vs bare |',
        '|---|---|---|---|',
        `| bare Hono endpoint (parses it) | ${parsed.status} | ${mib(parsed.bytes)} MiB | 1.00 (baseline) |`,
        `| anomaly-serve POST /predict (rejects it unparsed) | ${rejected.status} | ${mib(rejected.bytes)} MiB | ${(rejected.bytes / parsed.bytes).toFixed(2)} |`,
        '',
      ];
      logger.info({ duration, connections }, 'warming up both endpoints');
      await drive('bare', bare.url, body, { connections, duration: 2 });
      await drive('server', server.url, body, { connections, duration: 2 });
      const baseline = await drive('bare', bare.url, body, { connections, duration });
      const scoring = await drive('server', server.url, body, { connections, duration });
      const row = (m: Measurement, ratio: string) =>
        `| ${m.name} | ${Math.round(m.requestsPerSecond).toLocaleString('en')} | ${m.p50} | ${m.p99} | ${m.errors} | ${ratio} |`;
      process.stdout.write(
        [
          `One beat a request, ${connections} connections, ${duration} s each, on 127.0.0.1:`,
          '',
          '| endpoint | requests/s | p50 ms | p99 ms | errors | throughput vs bare |',
          '|---|---|---|---|---|---|',
          row({ ...baseline, name: 'bare Hono endpoint (parse JSON, constant answer)' }, '1.00 (baseline)'),
          row({ ...scoring, name: 'anomaly-serve POST /predict' }, `${(scoring.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)} (target ≥ 0.70)`),
          ...memory,
        ].join('\n'),
      );
    } finally {
      await bare.stop();
    }
  }
} finally {
  await server.stop();
}

import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createLogger } from '../lib/logger.ts';
import { BUNDLED_MODEL_DIR, inputOf, readMetadata } from '../model/artifact.ts';
import { instanceWidth } from '../model/instances.ts';
import { BACKEND_NAMES, isBackendName } from '../model/backend.ts';
import { DEFAULTS, environmentOf, SETTING_MAXIMA } from '../app/settings.ts';
import { METRIC_PREFIX } from '../app/metrics.ts';
import { DriftMonitor } from '../app/drift.ts';
import { SOURCE_SERVER_COMMAND, spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { buildBundledServer, startupSeconds } from './bundled-server.ts';
import { callgrindAvailable, instructionsPerRequest, type InstructionCount, type InstructionCounts } from './instructions.ts';
import { drive, median, predictTarget, type Measurement, type Target } from './drive.ts';
import { pinLoadApartFromServers, serverLauncher } from './cpu-pinning.ts';

/**
 * `npm run bench`: the scoring server, as the image runs it (the bundle of `npm run build`), against
 * a bare Hono endpoint that parses the same body and answers a constant, each driven by autocannon
 * on 127.0.0.1 in the same run; the ratio of their throughputs is the figure that matters. Then the
 * memory one oversized request costs each (a body of 1.3 million empty instances, which the server
 * must reject before building them), and what asking for an API key costs (the same server with
 * API_KEYS_FILE, each request with a key), and a server offered twice its capacity with its queue
 * bounded and unbounded: the share shed and the latency of the requests it admitted, and what
 * clients that never read their answers cost it, and the capacity of a model of windows (an LSTM)
 * beside the row model, the time from a process's start to ready (the bundle against the source
 * through tsx), and the instructions a request of the server and of the bare endpoint, counted by
 * callgrind where valgrind is installed. `--soak`
 * sends two million requests to the server and compares the floor of its resident memory in the
 * second half with that in the first.
 */
const USAGE = `Usage: npm run bench -- [--duration S] [--rounds N] [--connections N] [--backend NAME] [--soak] [--requests N]
  --duration S      seconds to drive each endpoint in a round (default 5)
  --rounds N        rounds, each driving the baseline and then the endpoint measured against it
                    (default 3; the server against the bare endpoint takes at least 10)
  --connections N   concurrent connections (default 64)
  --backend NAME    the server's TensorFlow.js backend: ${BACKEND_NAMES.join(', ')} (default: the fastest installed)
  --soak            send --requests requests (default 2,000,000) to the server and report RSS growth
                    (the lowest of 20 samples in the second half against the lowest in the first)
`;

const logger = createLogger('bench', { stream: 'stderr' });
/** Starts of each server the start-up table takes its median and range of. */
const STARTUP_RUNS = 10;

function options() {
  try {
    const { values } = parseArgs({
      options: {
        duration: { type: 'string', default: '5' },
        rounds: { type: 'string', default: '3' },
        connections: { type: 'string', default: '64' },
        soak: { type: 'boolean', default: false },
        requests: { type: 'string', default: '2000000' },
        backend: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
    const duration = Number(values.duration);
    const rounds = Number(values.rounds);
    const connections = Number(values.connections);
    const requests = Number(values.requests);
    for (const [name, value] of Object.entries({ duration, rounds, connections, requests })) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
    }
    const { backend } = values;
    if (backend !== undefined && !isBackendName(backend)) throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got ${JSON.stringify(backend)}`);
    if (values.help) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    return { duration, rounds, connections, requests, soak: values.soak, backend };
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

/** The resident memory of a process, from Linux's /proc. */
async function processResidentBytes(pid: number): Promise<number> {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/**
 * How much one request with `body` adds to the resident memory of a process started for it (and
 * stopped after: its grown heap would weigh on the figures measured after it), and its status.
 */
async function residentGrowth(start: () => Promise<ServerProcess>, body: string): Promise<{ bytes: number; status: number }> {
  const target = await start();
  try {
    const before = await processResidentBytes(target.child.pid!);
    const response = await fetch(`${target.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await response.arrayBuffer();
    return { bytes: (await processResidentBytes(target.child.pid!)) - before, status: response.status };
  } finally {
    await target.stop();
  }
}

async function residentBytes(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
  return Number(new RegExp(`^${METRIC_PREFIX}process_resident_memory_bytes (\\S+)$`, 'm').exec(text)?.[1]);
}

const { duration, rounds, connections, requests, soak, backend } = options();
/** Rounds of the server against the bare endpoint (the other comparisons take --rounds). */
const HEADLINE_ROUNDS = Math.max(rounds, 10);

/**
 * The overload runs: each workload offered twice the throughput the server reached on it, in an
 * open loop, to the server as configured by default (its queue bounded by MAX_QUEUED_ROWS and
 * MAX_QUEUE_WAIT_SECONDS) and with the queue unbounded. A closed loop of N connections never
 * queues more than N requests, so the connections must outnumber the requests the bound lets wait
 * (4096 rows: 64 requests of 64 rows) for the bound to act.
 */
const OVERLOAD = [
  { workload: 'binary, 64 beats', beats: 64, connections: 256 },
  { workload: 'POST /predict, 1 beat', beats: 1, connections: 512 },
] as const;
/** The queue without its bounds: the largest MAX_QUEUED_ROWS the server takes, and an hour's wait. */
const UNBOUNDED_QUEUE = environmentOf({ maxQueuedRows: SETTING_MAXIMA.queuedRows, maxQueueWaitSeconds: SETTING_MAXIMA.seconds });
const settingsText = (settings: Record<string, string>) => Object.entries(settings).map(([name, value]) => `${name}=${value}`).join(', ');
/** The server's environment for the backend asked for. */
const backendEnv: Record<string, string> = backend ? { BACKEND: backend } : {};
/** The load on some CPUs, each server measured on one of its own, where the machine allows. */
const pinning = pinLoadApartFromServers();
const onServerCpu = serverLauncher(pinning);
/** The server as the image runs it (the bundle), on the backend asked for. */
const bundled = await buildBundledServer(backend);
const serve = (env: Record<string, string>) => spawnServer({ ...env, ...backendEnv }, { command: onServerCpu(bundled.command) });


/** An endpoint to drive: a name, the server, and the request. */
interface Run {
  readonly name: string;
  readonly server: ServerProcess;
  readonly target: Target;
}

/**
 * Drives a baseline and a candidate in turns, `rounds` times. This machine's speed drifts by a
 * third from minute to minute; a pair measured back to back shares the drift, so each round's
 * ratio is sound and their median is the figure. Requests/s and latencies are medians too.
 */
async function paired(
  baseline: Run,
  candidate: Run,
  load: { readonly connections: number; readonly rate?: number } = { connections },
  count = rounds,
): Promise<{ baseline: Measurement; candidate: Measurement; ratio: number; ratios: number[]; cpuRatio: number; cpuRatios: number[] }> {
  const runs: [Measurement, Measurement][] = [];
  for (let round = 0; round < count; round++) {
    const base = await drive(logger, baseline.name, baseline.server, baseline.target, { ...load, duration });
    runs.push([base, await drive(logger, candidate.name, candidate.server, candidate.target, { ...load, duration })]);
  }
  const summary = (i: 0 | 1): Measurement => ({
    name: runs[0]![i].name,
    requestsPerSecond: median(runs.map((run) => run[i].requestsPerSecond)),
    cpuMicrosPerRequest: median(runs.map((run) => run[i].cpuMicrosPerRequest)),
    meanLatencyMs: median(runs.map((run) => run[i].meanLatencyMs)),
    p50: median(runs.map((run) => run[i].p50)),
    p99: median(runs.map((run) => run[i].p99)),
    errors: runs.reduce((sum, run) => sum + run[i].errors, 0),
    answered: runs.reduce((sum, run) => sum + run[i].answered, 0),
    shed: runs.reduce((sum, run) => sum + run[i].shed, 0),
    admittedP50: median(runs.map((run) => run[i].admittedP50)),
    admittedP99: median(runs.map((run) => run[i].admittedP99)),
  });
  const ratios = runs.map(([base, measured]) => measured.requestsPerSecond / base.requestsPerSecond);
  // CPU time per request, as a ratio the same way round as throughput: what the baseline spends on
  // a request over what the candidate does.
  const cpuRatios = runs.map(([base, measured]) => base.cpuMicrosPerRequest / measured.cpuMicrosPerRequest);
  return { baseline: summary(0), candidate: summary(1), ratio: median(ratios), ratios, cpuRatio: median(cpuRatios), cpuRatios };
}
const rangeText = (ratio: number, ratios: number[]) => `${ratio.toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
const metadata = readMetadata(BUNDLED_MODEL_DIR);
const beat = metadata.examples![0]!.values;
const input = inputOf(metadata.signature).name;
const predict = predictTarget(beat);

/**
 * An Open Inference Protocol request of `rows` beats, as JSON or as binary tensor data (what
 * tritonclient sends by default); JSON asking for `outputs` by name, when given.
 */
function v2Infer(rows: number, binary: boolean, outputs?: readonly string[]): Target {
  const path = `/v2/models/${metadata.name}/infer`;
  const shape = [rows, beat.length];
  if (!binary) {
    const named = outputs ? { outputs: outputs.map((name) => ({ name })) } : {};
    const body = JSON.stringify({ inputs: [{ name: input, shape, datatype: 'FP32', data: Array<number[]>(rows).fill(beat).flat() }], ...named });
    return { path, body, headers: { 'content-type': 'application/json' } };
  }
  const data = Buffer.from(new Float32Array(Array<number[]>(rows).fill(beat).flat()).buffer);
  const header = JSON.stringify({ inputs: [{ name: input, shape, datatype: 'FP32', parameters: { binary_data_size: data.length } }], parameters: { binary_data_output: true } });
  return { path, body: Buffer.concat([Buffer.from(header), data]), headers: { 'inference-header-content-length': String(Buffer.byteLength(header)) } };
}
const DRIFT_WINDOW_ADDS = 2_000_000;

/** What the drift window costs a score: nanoseconds an add, best of five runs of DRIFT_WINDOW_ADDS, in this process. */
function driftWindowCost(): number {
  const monitor = new DriftMonitor(DEFAULTS.driftWindowSize, DEFAULTS.driftWindowSeconds);
  const batch = [{ reconstructionError: 0.01 }];
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < DRIFT_WINDOW_ADDS; i++) monitor.add(batch, i);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / DRIFT_WINDOW_ADDS);
  }
  return best;
}
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/**
 * A model of windows to measure: the LSTM autoencoder of bearing vibrations that the corpus test
 * serves (a real Keras file, windows of 1 step of 7 features), imported as a user imports it.
 */
const WINDOW_MODEL = 'test/fixtures/keras-corpus/bearing_lstm_functional_k2.h5';

async function importWindowModel(): Promise<{ dir: string; dims: number[] }> {
  const dir = path.join(await mkdtemp(path.join(tmpdir(), 'bench-windows-')), 'model');
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'model/import.ts', WINDOW_MODEL, '--out', dir, '--name', 'windows', '--normalisation', 'none', '--threshold', '1']);
  return { dir, dims: inputOf(readMetadata(dir).signature).dims };
}

/** A V2 request of `windows` windows of `dims`, as binary tensor data. */
function windowInfer(windows: number, dims: readonly number[]): Target {
  const shape = [windows, ...dims];
  const data = Buffer.from(new Float32Array(windows * instanceWidth(dims)).fill(0.5).buffer);
  const header = JSON.stringify({ inputs: [{ name: 'beat', shape, datatype: 'FP32', parameters: { binary_data_size: data.length } }] });
  return { path: '/v2/models/windows/infer', body: Buffer.concat([Buffer.from(header), data]), headers: { 'inference-header-content-length': String(Buffer.byteLength(header)) } };
}

/**
 * Clients that never read their answers, and the write timeout the server cuts them off after.
 * Each asks for more than the kernel's socket buffers take (Linux lets a connection's send buffer
 * grow to 4 MiB, tcp_wmem), so that the rest waits in the server until the timeout.
 */
const SLOW_READERS = { clients: 100, requestsEach: 100, writeTimeoutSeconds: 2 } as const;

/** How many sockets a process has open, from Linux's /proc. */
async function openSockets(pid: number): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith('socket:')).length;
}

/**
 * What clients that never read cost a server: each opens a connection, sends
 * `SLOW_READERS.requestsEach` pipelined requests for the largest answer there is (MAX_BATCH_SIZE
 * rows, every output, as JSON) and reads nothing. The server's resident memory is sampled until
 * it has closed every one of their connections.
 */
async function slowReaders(): Promise<{ before: number; peak: number; after: number; closedAfterMs: number }> {
  const slow = await serve({ WRITE_TIMEOUT_SECONDS: String(SLOW_READERS.writeTimeoutSeconds) });
  const sockets: Socket[] = [];
  try {
    const pid = slow.child.pid!;
    const rows = Array<number[]>(64).fill(beat);
    const body = JSON.stringify({ inputs: [{ name: input, shape: [rows.length, beat.length], datatype: 'FP32', data: rows }], outputs: metadata.signature.outputs.map(({ name }) => ({ name })) });
    const request = `POST /v2/models/${metadata.name}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const [before, baseSockets] = [await processResidentBytes(pid), await openSockets(pid)];
    const start = Date.now();
    for (let i = 0; i < SLOW_READERS.clients; i++) {
      const socket = connect(Number(new URL(slow.url).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.pause();
      for (let k = 0; k < SLOW_READERS.requestsEach; k++) socket.write(request);
      sockets.push(socket);
    }
    let peak = before;
    await new Promise((resolve) => setTimeout(resolve, 500)); // until the server has accepted them
    while ((await openSockets(pid)) > baseSockets && Date.now() - start < 60_000) {
      peak = Math.max(peak, await processResidentBytes(pid));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { before, peak, after: await processResidentBytes(pid), closedAfterMs: Date.now() - start };
  } finally {
    for (const socket of sockets) socket.destroy();
    await slow.stop();
  }
}
/**
 * What `npm run bench` counts under callgrind: requests warmed up, then counted, `reps` times, from
 * as many connections as the CPU rounds. The warm-up lasts until V8 has stopped compiling: the
 * server's hot path includes functions that run once a forward pass, which reach TurboFan only
 * after some 100,000 requests. Counted after 60,000 requests, the server's compilation still took
 * 9,700 instructions a request; after 150,000, 200 (and the bare endpoint's, 1,100 after 60,000).
 */
const COUNTED: InstructionCount = { warmup: 150_000, requests: 10_000, reps: 3, connections };
const BARE_COMMAND = [process.execPath, '--import', 'tsx', 'loadtest/bare-endpoint.ts'];

/** How many functions the report names: those whose instructions a request differ most between the two. */
const FUNCTIONS_LISTED = 12;

/** Instructions a request of the bare endpoint and of the server (the bundle), and where they differ most; lines of the report. */
async function countInstructions(): Promise<string[]> {
  if (!(await callgrindAvailable())) return ['No instruction counts: valgrind is not installed (apt-get install valgrind).', ''];
  logger.info(COUNTED, 'counting instructions a request under callgrind: the bare endpoint, then the server');
  const bare = await instructionsPerRequest(logger, BARE_COMMAND, predict, COUNTED, { waitFor: 'listening', launch: onServerCpu });
  const server = await instructionsPerRequest(logger, bundled.command, predict, COUNTED, { env: backendEnv, launch: onServerCpu });
  const thousands = (counts: number[]) => `${(median(counts) / 1000).toFixed(0)}k (${(Math.min(...counts) / 1000).toFixed(0)}k–${(Math.max(...counts) / 1000).toFixed(0)}k)`;
  const of = ({ byFunction }: InstructionCounts, name: string) => byFunction.get(name) ?? 0;
  const difference = (name: string) => of(server, name) - of(bare, name);
  const listed = [...new Set([...bare.byFunction.keys(), ...server.byFunction.keys()])].sort((a, b) => difference(b) - difference(a)).slice(0, FUNCTIONS_LISTED);
  const count = (instructions: number) => instructions.toLocaleString('en', { maximumFractionDigits: 0 });
  return [
    `Instructions a request, user space, every thread (valgrind --tool=callgrind; ${COUNTED.warmup.toLocaleString('en')} requests to warm up, then ${COUNTED.reps} counts of ${COUNTED.requests.toLocaleString('en')}, ${COUNTED.connections} connections; median and range):`,
    '',
    '| endpoint | instructions a request | bare over it |',
    '|---|---|---|',
    `| bare Hono endpoint | ${thousands(bare.perRequest)} | 1.00 (baseline) |`,
    `| anomaly-serve POST /predict (the bundle) | ${thousands(server.perRequest)} | ${(median(bare.perRequest) / median(server.perRequest)).toFixed(2)} |`,
    '',
    `The ${FUNCTIONS_LISTED} functions whose instructions a request the server has most beyond the bare endpoint's, each function's own, in the count of each whose total is the median (compiled JavaScript and WebAssembly named from V8's perf map; the bare endpoint's Hono runs from node_modules, the server's from its bundle):`,
    '',
    '| function | anomaly-serve | bare endpoint | difference |',
    '|---|---|---|---|',
    ...listed.map((name) => `| ${name.replaceAll('|', '\\|')} | ${count(of(server, name))} | ${count(of(bare, name))} | ${count(difference(name))} |`),
    '',
  ];
}

/** 3.9 MB of "[]": JSON.parse would make 1.3 million arrays of it. */
const oversized = `{"instances": [${Array(1_300_000).fill('[]').join(',')}]}`;
const server = await serve({});
const serverBackend = server.logs.find((line) => line.msg === 'model loaded (ready)')?.backend;
try {
  if (soak) {
    // V8 lets the heap grow and shrink in a sawtooth (here ~30 MiB over about 1.4 million
    // requests), so a sample lands anywhere on a tooth. A leak raises the floor: RSS is sampled
    // every twentieth of the run, and the growth compares the lowest sample of the second half
    // with the lowest of the first.
    logger.info({ requests, connections }, 'soak: sending requests to the scoring server');
    const step = Math.max(1, Math.floor(requests / 20));
    const samples: number[] = [];
    let errors = 0;
    for (let sent = 0; sent < requests; sent += step) {
      errors += (await drive(logger, 'server', server, predict, { connections, amount: Math.min(step, requests - sent) })).errors;
      samples.push(await residentBytes(server));
    }
    const half = Math.ceil(samples.length / 2);
    const first = Math.min(...samples.slice(0, half));
    const second = Math.min(...samples.slice(half));
    process.stdout.write(
      '| requests | lowest RSS, first half | lowest RSS, second half | growth | range of the samples | errors |\n|---|---|---|---|---|---|\n' +
        `| ${requests.toLocaleString('en')} | ${mib(first)} MiB | ${mib(second)} MiB | ${((second / first - 1) * 100).toFixed(1)}% (target < 10%) | ` +
        `${mib(Math.min(...samples))}–${mib(Math.max(...samples))} MiB | ${errors} |\n`,
    );
  } else {
    logger.info({ runs: STARTUP_RUNS }, 'measuring start-up: the bundle and the source, in turns');
    const starts = await startupSeconds([onServerCpu(bundled.command), onServerCpu(SOURCE_SERVER_COMMAND)], STARTUP_RUNS, backendEnv);
    const startupRow = (name: string, seconds: number[]) => `| ${name} | ${median(seconds).toFixed(2)} | ${Math.min(...seconds).toFixed(2)}–${Math.max(...seconds).toFixed(2)} |`;
    const startup = [
      `From spawning the process to ready (the model loaded, the port open), on the bundled model, ${STARTUP_RUNS} starts of each in turn:`,
      '',
      '| server | median s | range s |',
      '|---|---|---|',
      startupRow("the bundle, as the image runs it (npm run build's build/server.mjs)", starts[0]!),
      startupRow('the TypeScript source through tsx (npm start)', starts[1]!),
    ];
    const instructions = await countInstructions();
    logger.info('measuring the memory of one oversized request, each to a process of its own');
    const startBare = () => spawnServer({}, { command: onServerCpu(BARE_COMMAND), waitFor: 'listening' });
    const parsed = await residentGrowth(startBare, oversized);
    // A body limit the oversized request fits in, so that what rejects it is its count of instances.
    const rejected = await residentGrowth(() => serve({ MAX_BODY_BYTES: String(8 * 1024 * 1024) }), oversized);
    const bare = await startBare();
    try {
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
      await drive(logger, 'bare', bare, predict, { connections, duration: 2 });
      await drive(logger, 'server', server, predict, { connections, duration: 2 });
      // The headline figure: more rounds than the others, as the spread of a busy machine needs.
      const scoring = await paired({ name: 'bare', server: bare, target: predict }, { name: 'server', server, target: predict }, { connections }, HEADLINE_ROUNDS);
      const { baseline, candidate } = scoring;
      const formats: string[] = [];
      let binary64 = 0;
      for (const rows of [1, 64]) {
        const beats = `${rows} ${rows === 1 ? 'beat' : 'beats'}`;
        const pair = await paired(
          { name: `v2 JSON, ${beats}`, server, target: v2Infer(rows, false) },
          { name: `v2 binary, ${beats}`, server, target: v2Infer(rows, true) },
        );
        if (rows === 64) binary64 = pair.candidate.requestsPerSecond;
        for (const [m, ratio] of [[pair.baseline, '1.00 (baseline)'], [pair.candidate, rangeText(pair.ratio, pair.ratios)]] as const) {
          const rowsPerSecond = Math.round(m.requestsPerSecond * rows).toLocaleString('en');
          formats.push(`| ${m.name} | ${Math.round(m.requestsPerSecond).toLocaleString('en')} | ${rowsPerSecond} | ${m.p50} | ${m.p99} | ${m.errors} | ${ratio} |`);
        }
      }
      // What the detector's extra outputs cost when asked for; the default answer computes neither.
      const explained = await paired(
        { name: 'score and verdict (the default)', server, target: v2Infer(1, false) },
        { name: 'and p_value and attribution', server, target: v2Infer(1, false, [...metadata.signature.outputs.filter((o) => o.role !== 'reconstruction').map((o) => o.name)]) },
      );
      const driftNanos = driftWindowCost();
      // A model of windows (an LSTM) against the row model (Dense layers), as many instances a request.
      const windowModel = await importWindowModel();
      const windowServer = await serve({ MODEL_PATH: windowModel.dir });
      const windowRows: string[] = [];
      try {
        for (const rows of [1, 64]) {
          const pair = await paired(
            { name: `row model (Dense), ${rows} ${rows === 1 ? 'beat' : 'beats'}`, server, target: v2Infer(rows, true) },
            { name: `window model (LSTM, windows of ${windowModel.dims.join(' × ')}), ${rows} ${rows === 1 ? 'window' : 'windows'}`, server: windowServer, target: windowInfer(rows, windowModel.dims) },
          );
          for (const [m, ratio] of [[pair.baseline, '1.00 (baseline)'], [pair.candidate, rangeText(pair.ratio, pair.ratios)]] as const) {
            windowRows.push(
              `| ${m.name} | ${Math.round(m.requestsPerSecond).toLocaleString('en')} | ${Math.round(m.requestsPerSecond * rows).toLocaleString('en')} | ` +
                `${(m.cpuMicrosPerRequest / rows).toFixed(1)} | ${m.p50} | ${m.p99} | ${m.errors} | ${ratio} |`,
            );
          }
        }
      } finally {
        await windowServer.stop();
        await rm(path.dirname(windowModel.dir), { recursive: true, force: true });
      }
      // The same server asking for a key, against the open one: what bearerAuth and the digest cost.
      const keysDir = await mkdtemp(path.join(tmpdir(), 'bench-keys-'));
      const key = 'bench-key-0123456789abcdef';
      await writeFile(path.join(keysDir, 'keys'), `${key}\n`);
      const keyed = await serve({ API_KEYS_FILE: path.join(keysDir, 'keys') });
      let keys: Awaited<ReturnType<typeof paired>>;
      try {
        await drive(logger, 'with a key', keyed, predict, { connections, duration: 2 });
        keys = await paired({ name: 'open', server, target: predict }, { name: 'with a key', server: keyed, target: { ...predict, headers: { ...predict.headers, authorization: `Bearer ${key}` } } });
      } finally {
        await keyed.stop();
        await rm(keysDir, { recursive: true, force: true });
      }
      const overloadRows: string[] = [];
      for (const { workload, beats, connections: overloadConnections } of OVERLOAD) {
        // The throughput each reached above: one-beat /predict against the bare endpoint, 64 beats as binary tensor data.
        const [target, capacity] = beats === 1 ? [predict, candidate.requestsPerSecond] : [v2Infer(beats, true), binary64];
        const offered = Math.round(2 * capacity);
        const boundedServer = await serve({});
        const unboundedServer = await serve(UNBOUNDED_QUEUE);
        try {
          logger.info({ workload, offered, connections: overloadConnections }, 'driving a bounded and an unbounded server at twice the capacity');
          const overload = await paired(
            { name: 'unbounded', server: unboundedServer, target },
            { name: 'bounded', server: boundedServer, target },
            { connections: overloadConnections, rate: offered },
          );
          for (const [m, queue] of [[overload.baseline, 'unbounded'], [overload.candidate, `bounded (${settingsText(environmentOf({ maxQueuedRows: DEFAULTS.maxQueuedRows, maxQueueWaitSeconds: DEFAULTS.maxQueueWaitSeconds }))})`]] as const) {
            overloadRows.push(
              `| ${workload} | ${queue} | ${overloadConnections} | ${offered.toLocaleString('en')} | ${Math.round(m.requestsPerSecond).toLocaleString('en')} | ` +
                `${Math.round(m.requestsPerSecond * (1 - m.shed / m.answered)).toLocaleString('en')} | ${((m.shed / m.answered) * 100).toFixed(1)}% | ` +
                `${m.admittedP50.toFixed(1)} | ${m.admittedP99.toFixed(1)} | ${m.errors - m.shed} |`,
            );
          }
        } finally {
          await boundedServer.stop();
          await unboundedServer.stop();
        }
      }
      logger.info(SLOW_READERS, 'clients that never read their answers');
      const readers = await slowReaders();
      const row = (m: Measurement, ratios: string) =>
        `| ${m.name} | ${Math.round(m.requestsPerSecond).toLocaleString('en')} | ${m.cpuMicrosPerRequest.toFixed(1)} | ${m.p50} | ${m.p99} | ${m.errors} | ${ratios} |`;
      process.stdout.write(
        [
          `One beat a request, ${connections} connections, on 127.0.0.1, the server (the bundle) on the ${String(serverBackend)} backend; ${HEADLINE_ROUNDS} rounds of ${duration} s on each endpoint in turn, medians (and the range of the rounds' ratios); CPU time from /proc; ${pinning ? `each server on CPU ${pinning.serverCpu} alone, the load on ${pinning.loadCpus.join(',')} (taskset)` : 'nothing pinned (taskset and two CPUs needed)'}:`,
          '',
          "| endpoint | requests/s | server CPU µs a request | p50 ms | p99 ms | errors | throughput vs bare (rounds' range) | CPU a request, bare over it (rounds' range) |",
          '|---|---|---|---|---|---|---|---|',
          row({ ...baseline, name: 'bare Hono endpoint (parse JSON, constant answer)' }, '1.00 (baseline) | 1.00 (baseline)'),
          row(
            { ...candidate, name: 'anomaly-serve POST /predict' },
            `${rangeText(scoring.ratio, scoring.ratios)} | ${rangeText(scoring.cpuRatio, scoring.cpuRatios)}; target ≥ 0.85`,
          ),
          '',
          `POST /v2/models/${metadata.name}/infer, JSON against binary tensor data (binary outputs too), the same beats:`,
          '',
          "| request | requests/s | beats/s | p50 ms | p99 ms | errors | throughput vs JSON of as many beats (rounds' range) |",
          '|---|---|---|---|---|---|---|',
          ...formats,
          '',
          `A model of windows (${WINDOW_MODEL}, imported) against the bundled row model, V2 binary tensor data, as many instances a request:`,
          '',
          "| model, request | requests/s | instances/s | server CPU µs an instance | p50 ms | p99 ms | errors | throughput vs the row model (rounds' range) |",
          '|---|---|---|---|---|---|---|---|',
          ...windowRows,
          '',
          'POST /v2 JSON, one beat, the default outputs against the same request asking for the p-value and the attribution too:',
          '',
          "| outputs | requests/s | server CPU µs a request | p50 ms | p99 ms | errors | throughput vs the default (rounds' range) | CPU a request, the default over it (rounds' range) |",
          '|---|---|---|---|---|---|---|---|',
          row(explained.baseline, '1.00 (baseline) | 1.00 (baseline)'),
          row(explained.candidate, `${rangeText(explained.ratio, explained.ratios)} | ${rangeText(explained.cpuRatio, explained.cpuRatios)}`),
          '',
          `Every score, asked for or not, enters the drift window: ${driftNanos.toFixed(0)} ns a score (${DRIFT_WINDOW_ADDS.toLocaleString('en')} scores into a window of ${DEFAULTS.driftWindowSize}, in process).`,
          '',
          'POST /predict, one beat, the server open against the same server asking for an API key (API_KEYS_FILE, one key, sent as a Bearer token):',
          '',
          "| server | requests/s | server CPU µs a request | p50 ms | p99 ms | errors | throughput vs open (rounds' range) | CPU a request, open over it (rounds' range) |",
          '|---|---|---|---|---|---|---|---|',
          row({ ...keys.baseline, name: 'open (no API_KEYS_FILE)' }, '1.00 (baseline) | 1.00 (baseline)'),
          row({ ...keys.candidate, name: 'asking for a key, given one' }, `${rangeText(keys.ratio, keys.ratios)} | ${rangeText(keys.cpuRatio, keys.cpuRatios)}`),
          '',
          `Twice the throughput above offered in an open loop, to the server with its queue bounded as by default and unbounded (${settingsText(UNBOUNDED_QUEUE)}), medians of ${rounds} rounds of ${duration} s:`,
          '',
          '| workload | queue | connections | offered requests/s | answered requests/s | of which scored (200) | shed (503) | admitted p50 ms | admitted p99 ms | other errors |',
          '|---|---|---|---|---|---|---|---|---|---|',
          ...overloadRows,
          '',
          `${SLOW_READERS.clients} clients that never read, each sending ${SLOW_READERS.requestsEach} pipelined requests for the largest answer (64 beats, every output, JSON), WRITE_TIMEOUT_SECONDS=${SLOW_READERS.writeTimeoutSeconds}:`,
          '',
          '| resident memory before | peak | added at the peak, a client | after the last was cut off | all connections closed after |',
          '|---|---|---|---|---|',
          `| ${mib(readers.before)} MiB | ${mib(readers.peak)} MiB | ${((readers.peak - readers.before) / SLOW_READERS.clients / 1024).toFixed(0)} KiB | ${mib(readers.after)} MiB | ${(readers.closedAfterMs / 1000).toFixed(1)} s |`,
          ...memory,
          ...instructions,
          ...startup,
          '',
        ].join('\n'),
      );
    } finally {
      await bare.stop();
    }
  }
} finally {
  await server.stop();
  await bundled.dispose();
}

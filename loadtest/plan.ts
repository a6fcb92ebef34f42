import { readFile, writeFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { parseQuantity } from '../charts/k8s-values.ts';
import { LOAD_SERIES, type LoadMetric } from '../charts/server-autoscaler.ts';
import { BUNDLED_MODEL_DIR, readMetadata } from '../model/artifact.ts';
import { numberOption, parseOptions, runCli, UsageError } from '../lib/cli.ts';
import type { Logger } from '../lib/logger.ts';
import { spawnServer } from '../lib/server-process.ts';
import { buildBundledServer, startupSeconds } from './bundled-server.ts';
import { pinLoadApartFromServers, serverLauncher } from './cpu-pinning.ts';
import { simulate, type Autoscaler, type NodeModel, type PlanResult, type PodModel, type ScalingMetric } from './capacity-plan.ts';
import { drive, median, predictTarget } from './drive.ts';
import { DEFAULT_BEHAVIOR, type HpaBehavior, type ScalingRules } from './hpa-algorithm.ts';
import { timelineSvg } from './plan-svg.ts';

const USAGE = `Usage: npm run plan -- --peak-rps N [options]

Plans the capacity of what \`npm run synth\` wrote: runs the HorizontalPodAutoscaler (or KEDA
ScaledObject) in the manifests against a load shape, second by second, with pods that start as
measured here and nodes that the cluster autoscaler adds, and prints the timeline and a summary.

Load:
  --peak-rps N           the load at its peak, in requests a second (required unless --load-csv)
  --base-rps N           the load before and after (default: 5% of the peak)
  --shape step|ramp      step: base, then the peak at 60 s for --hold-seconds; ramp: the Locust ramp
                         shape, up over --ramp-seconds, held, down as fast (default: step)
  --ramp-seconds N       (default: 120)    --hold-seconds N   (default: 300)
  --load-csv FILE        instead: lines of "seconds,rps", held until the next line
Pods:
  --pod-rps N            what one pod answers at its CPU request (default: measured here, by
                         driving one server process, the bundle the image runs, on a CPU of its
                         own where taskset allows, and counting requests per CPU-second)
  --measure-seconds N    how long to measure (default: 10)
  --image-pull-seconds N (default: 15)
  --start-seconds N      from the container's start to ready (default: measured here, the median
                         of 5 starts of the bundle on the bundled model)
Nodes (as scripts/create-cluster.sh makes them):
  --node-cpus N          vCPUs a node (default: 2, e2-standard-2)
  --system-cpu X         CPU of each node taken by system pods (default: 0.4)
  --zones N              (default: 3)    --min-nodes N / --max-nodes N per zone (default: 1 / 3)
  --node-provision-seconds N (default: 90)
Output:
  --manifests FILE       (default: dist/anomaly-serve.k8s.yaml)
  --json                 print a JSON object instead of the table
  --out FILE.svg         draw the timeline (load against ready capacity, replicas, nodes)
`;

type Manifest = { kind: string; metadata: { name: string }; spec: unknown };
type Behavior = Record<string, Record<string, unknown>>;

/** What the planner reads of an autoscaling/v2 HorizontalPodAutoscaler's spec. */
interface HpaSpec {
  readonly scaleTargetRef: { readonly name: string };
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly metrics: readonly {
    readonly type: string;
    readonly resource?: { readonly name: string; readonly target: { readonly averageUtilization: number } };
    readonly pods?: { readonly metric: { readonly name: string }; readonly target: { readonly averageValue: unknown } };
  }[];
  readonly behavior?: Behavior;
}

/** What the planner reads of a KEDA ScaledObject's spec. */
interface ScaledObjectSpec {
  readonly scaleTargetRef: { readonly name: string };
  readonly minReplicaCount: number;
  readonly maxReplicaCount: number;
  readonly triggers: readonly { readonly type: string; readonly metadata: Record<string, string> }[];
  readonly advanced?: { readonly horizontalPodAutoscalerConfig?: { readonly behavior?: Behavior } };
}

/** A quantity such as "16", "4800" or "500m", as a number. */
const quantity = (value: unknown) => parseQuantity(String(value));

function rulesOf(given: Record<string, unknown> | undefined, defaults: ScalingRules): ScalingRules {
  const policies = (given?.policies as { type: 'Pods' | 'Percent'; value: number; periodSeconds: number }[] | undefined) ?? defaults.policies;
  return {
    stabilizationWindowSeconds: (given?.stabilizationWindowSeconds as number | undefined) ?? defaults.stabilizationWindowSeconds,
    selectPolicy: (given?.selectPolicy as ScalingRules['selectPolicy'] | undefined) ?? defaults.selectPolicy,
    policies: policies.map(({ type, value, periodSeconds }) => ({ type, value, periodSeconds })),
  };
}

function behaviorOf(given: Behavior | undefined): HpaBehavior {
  return { scaleUp: rulesOf(given?.scaleUp, DEFAULT_BEHAVIOR.scaleUp), scaleDown: rulesOf(given?.scaleDown, DEFAULT_BEHAVIOR.scaleDown) };
}

/** The load metric whose series an adapter's metric name or a query names. */
function loadMetric(text: string): LoadMetric {
  const found = (Object.keys(LOAD_SERIES) as LoadMetric[]).find((metric) => text.includes(LOAD_SERIES[metric].series.replace(/_total$/, '')));
  if (!found) throw new UsageError(`${JSON.stringify(text)} names none of the server's load metrics (${Object.values(LOAD_SERIES).map((s) => s.series).join(', ')})`);
  return found;
}

/** The autoscaler in the manifests, and the CPU request of the pods it scales. */
function autoscalerOf(manifests: Manifest[], file: string): { autoscaler: Autoscaler; cpuRequest: number; kind: string } {
  const hpa = manifests.find((m) => m.kind === 'HorizontalPodAutoscaler');
  const scaled = manifests.find((m) => m.kind === 'ScaledObject');
  const object = hpa ?? scaled;
  if (!object) throw new UsageError(`${file} has no HorizontalPodAutoscaler or ScaledObject: run npm run synth first`);
  const target = (object.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name;
  const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === target);
  const cpu = (deployment?.spec as { template?: { spec?: { containers?: { resources?: { requests?: { cpu?: string } } }[] } } } | undefined)?.template?.spec?.containers?.[0]?.resources?.requests?.cpu;
  if (!cpu) throw new UsageError(`${file}: the Deployment ${target} that ${object.kind} ${object.metadata.name} scales has no CPU request to plan with`);
  let metrics: ScalingMetric[];
  let autoscaler: Omit<Autoscaler, 'metrics'>;
  if (hpa) {
    const spec = hpa.spec as HpaSpec;
    metrics = spec.metrics.map((metric) =>
      metric.type === 'Resource' && metric.resource?.name === 'cpu'
        ? { kind: 'cpu', targetUtilization: metric.resource.target.averageUtilization }
        : { kind: loadMetric(metric.pods!.metric.name), targetPerPod: quantity(metric.pods!.target.averageValue) },
    );
    autoscaler = { minReplicas: spec.minReplicas, maxReplicas: spec.maxReplicas, behavior: behaviorOf(spec.behavior) };
  } else {
    const spec = object.spec as ScaledObjectSpec;
    metrics = spec.triggers.map((trigger) =>
      trigger.type === 'cpu'
        ? { kind: 'cpu', targetUtilization: Number(trigger.metadata.value) }
        : { kind: loadMetric(trigger.metadata.query ?? ''), targetPerPod: Number(trigger.metadata.threshold) },
    );
    autoscaler = { minReplicas: spec.minReplicaCount, maxReplicas: spec.maxReplicaCount, behavior: behaviorOf(spec.advanced?.horizontalPodAutoscalerConfig?.behavior) };
  }
  return { autoscaler: { ...autoscaler, metrics }, cpuRequest: quantity(cpu), kind: object.kind };
}

/** GKE's CPU reservation on a node of `cpus` vCPUs: 6% of the first, 1% of the second, 0.5% of the next two, 0.25% above. */
const allocatableCpu = (cpus: number) => cpus - (0.06 * Math.min(cpus, 1) + 0.01 * Math.min(Math.max(cpus - 1, 0), 1) + 0.005 * Math.min(Math.max(cpus - 2, 0), 2) + 0.0025 * Math.max(cpus - 4, 0));

/** How many starts of the bundle the plan takes the median of. */
const STARTUP_RUNS = 5;

/**
 * One server process as the image runs it (the bundle), driven on 127.0.0.1: requests per
 * CPU-second, start-to-ready (the median of STARTUP_RUNS starts), and in flight at 60% load. The
 * server runs on a CPU of its own and the load on the others, where the machine allows, as
 * `npm run bench` measures them (cpu-pinning.ts).
 */
async function measurePod(seconds: number, logger: Logger) {
  const onServerCpu = serverLauncher(pinLoadApartFromServers());
  const bundled = await buildBundledServer();
  try {
    logger.info({ runs: STARTUP_RUNS }, 'measuring start-up: the bundle the image runs, from spawn to ready');
    const [starts] = await startupSeconds([onServerCpu(bundled.command)], STARTUP_RUNS);
    logger.info({ seconds: starts }, 'start-up measured');
    const server = await spawnServer({ LOG_LEVEL: 'info' }, { command: onServerCpu(bundled.command) });
    try {
      const target = predictTarget(readMetadata(BUNDLED_MODEL_DIR).examples![0]!.values);
      logger.info({ seconds }, 'measuring one server process: requests per CPU-second');
      await drive(logger, 'warm-up', server, target, { connections: 64, duration: 2 });
      const full = await drive(logger, 'capacity', server, target, { connections: 64, duration: seconds });
      const perCpuSecond = 1e6 / full.cpuMicrosPerRequest;
      // In flight at ρ = 0.6 (Little's law: rate × mean latency), to fit inFlightScale × ρ / (1 − ρ).
      const rate = Math.round(0.6 * perCpuSecond);
      const open = await drive(logger, 'in flight at 60%', server, target, { connections: 64, duration: Math.max(3, Math.round(seconds / 2)), rate });
      const inFlight = (open.requestsPerSecond * open.meanLatencyMs) / 1000;
      return { perCpuSecond, startToReadySeconds: median(starts!), inFlightScale: (inFlight * (1 - 0.6)) / 0.6 };
    } finally {
      await server.stop();
    }
  } finally {
    await bundled.dispose();
  }
}

function loadShape(options: { peak: number; base: number; shape: string; ramp: number; hold: number }): { load: (t: number) => number; seconds: number } {
  const { peak, base, ramp, hold } = options;
  if (options.shape === 'step') {
    return { load: (t) => (t >= 60 && t < 60 + hold ? peak : base), seconds: 60 + hold + 600 };
  }
  return {
    load: (t) => (t < ramp ? base + ((peak - base) * t) / ramp : t < ramp + hold ? peak : t < 2 * ramp + hold ? peak - ((peak - base) * (t - ramp - hold)) / ramp : base),
    seconds: 2 * ramp + hold + 600,
  };
}

async function csvShape(file: string): Promise<{ load: (t: number) => number; seconds: number }> {
  const points = (await readFile(file, 'utf8'))
    .split('\n')
    .map((line, index) => [line.trim(), index + 1] as const)
    .filter(([line]) => line !== '' && !line.startsWith('#'))
    .map(([line, row]) => {
      const [seconds, rps] = line.split(',').map(Number);
      if (!Number.isFinite(seconds) || !Number.isFinite(rps) || seconds! < 0 || rps! < 0) throw new UsageError(`${file}: line ${row}: expected "seconds,rps" of two numbers of 0 or more, got ${JSON.stringify(line)}`);
      return [seconds!, rps!] as const;
    })
    .sort((a, b) => a[0] - b[0]);
  if (points.length === 0) throw new UsageError(`${file}: no "seconds,rps" lines`);
  return { load: (t) => points.findLast(([at]) => at <= t)?.[1] ?? points[0]![1], seconds: points.at(-1)![0] + 600 };
}

function table(result: PlanResult, kind: string): string {
  const rows = result.timeline.filter((entry) => entry.t % 15 === 0);
  const lines = [
    `${kind}: ${result.timeline[0]!.replicas} replicas at the start; one pod answers ${Math.round(result.podCapacityRps)} requests/s at its CPU request`,
    '',
    '| t (s) | load (rps) | replicas | ready | ready capacity (rps) | nodes |',
    '|---|---|---|---|---|---|',
    ...rows.map((e) => `| ${e.t} | ${Math.round(e.load)} | ${e.replicas} | ${e.readyReplicas} | ${Math.round(e.capacity)} | ${e.nodes} |`),
    '',
    `peak replicas ${result.peakReplicas}; ${result.secondsOverCapacity} s over capacity; capacity caught up with the load after ${result.timeToCapacitySeconds} s`,
    ...result.cappedBy.map((cap) => `capped by ${cap}: the response was held back by the ${cap === 'maxReplicas' ? 'HPA\'s maxReplicas' : 'node pool\'s maximum size'}`),
    `the peak needs minReplicas ≥ ${result.needs.minReplicas}, maxReplicas ≥ ${result.needs.maxReplicas} and room for ${result.needs.maxNodes} nodes`,
  ];
  return lines.join('\n') + '\n';
}

/** An optional numeric option: `fallback` when not given. */
function number(name: string, value: string | undefined, fallback: number, { orZero = false } = {}): number {
  if (value === undefined) return fallback;
  return orZero ? numberOption(name, value, (n) => n >= 0, 'a number of 0 or more') : numberOption(name, value, (n) => n > 0, 'a positive number');
}

await runCli('plan', USAGE, async (argv, logger) => {
  const values = parseOptions(argv, {
    'peak-rps': { type: 'string' },
    'base-rps': { type: 'string' },
    shape: { type: 'string', default: 'step' },
    'ramp-seconds': { type: 'string' },
    'hold-seconds': { type: 'string' },
    'load-csv': { type: 'string' },
    'pod-rps': { type: 'string' },
    'measure-seconds': { type: 'string' },
    'image-pull-seconds': { type: 'string' },
    'start-seconds': { type: 'string' },
    'node-cpus': { type: 'string' },
    'system-cpu': { type: 'string' },
    zones: { type: 'string' },
    'min-nodes': { type: 'string' },
    'max-nodes': { type: 'string' },
    'node-provision-seconds': { type: 'string' },
    manifests: { type: 'string', default: 'dist/anomaly-serve.k8s.yaml' },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
  });
  if (values.shape !== 'step' && values.shape !== 'ramp') throw new UsageError(`--shape must be step or ramp, got ${JSON.stringify(values.shape)}`);
  if (values['load-csv'] === undefined && values['peak-rps'] === undefined) throw new UsageError('give the load: --peak-rps N, or --load-csv FILE');
  const file = values.manifests;
  const text = await readFile(file, 'utf8').catch(() => {
    throw new UsageError(`cannot read ${file}: run npm run synth first, or name the manifests with --manifests`);
  });
  const { autoscaler, cpuRequest, kind } = autoscalerOf(parseAllDocuments(text).map((d) => d.toJS() as Manifest).filter(Boolean), file);

  const shape =
    values['load-csv'] !== undefined
      ? await csvShape(values['load-csv'])
      : (() => {
          const peak = number('peak-rps', values['peak-rps'], 0);
          return loadShape({
            peak,
            base: number('base-rps', values['base-rps'], 0.05 * peak, { orZero: true }),
            shape: values.shape,
            ramp: number('ramp-seconds', values['ramp-seconds'], 120),
            hold: number('hold-seconds', values['hold-seconds'], 300),
          });
        })();

  const measured = values['pod-rps'] === undefined || values['start-seconds'] === undefined ? await measurePod(number('measure-seconds', values['measure-seconds'], 10), logger) : undefined;
  const pod: PodModel = {
    capacityRps: values['pod-rps'] !== undefined ? number('pod-rps', values['pod-rps'], 0) : measured!.perCpuSecond * cpuRequest,
    inFlightScale: measured?.inFlightScale ?? 1,
    imagePullSeconds: number('image-pull-seconds', values['image-pull-seconds'], 15, { orZero: true }),
    startToReadySeconds: number('start-seconds', values['start-seconds'], measured?.startToReadySeconds ?? 0, { orZero: true }),
  };
  const cpus = number('node-cpus', values['node-cpus'], 2);
  const available = allocatableCpu(cpus) - number('system-cpu', values['system-cpu'], 0.4, { orZero: true });
  const podsPerNode = Math.floor(available / cpuRequest);
  if (podsPerNode < 1) throw new UsageError(`a node of ${cpus} vCPUs has ${available.toFixed(2)} CPU for pods: not one pod's request of ${cpuRequest}`);
  const zones = number('zones', values.zones, 3);
  const nodes: NodeModel = {
    podsPerNode,
    burst: available / (podsPerNode * cpuRequest),
    minNodes: zones * number('min-nodes', values['min-nodes'], 1, { orZero: true }),
    maxNodes: zones * number('max-nodes', values['max-nodes'], 3),
    provisionSeconds: number('node-provision-seconds', values['node-provision-seconds'], 90, { orZero: true }),
  };
  logger.info({ kind, ...autoscaler, cpuRequest, pod, nodes }, 'planning');
  const result = simulate(shape.load, shape.seconds, autoscaler, pod, nodes);
  process.stdout.write(values.json ? JSON.stringify(result) + '\n' : table(result, kind));
  if (values.out) {
    await writeFile(values.out, timelineSvg(result));
    logger.info({ out: values.out }, 'timeline drawn');
  }
});

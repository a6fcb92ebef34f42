import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Chart, Testing } from 'cdk8s';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { AnomalyDetector } from '../charts/anomaly-detector.ts';
import type { PlanResult } from './capacity-plan.ts';
import { loggedError, logLines, runCommand } from '../test/command.ts';

/** Runs `npm run plan` as a user would. */
const plan = (args: string[]) => runCommand('loadtest/plan.ts', args, { timeout: 120_000 });

/** A pod model given outright, so that the plan does not depend on this machine's speed. */
const GIVEN_POD = ['--pod-rps', '4000', '--start-seconds', '3'];

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'plan-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('npm run plan, on the committed dist/', () => {
  it('runs the synthesized HPA against a step to the peak: JSON with the summary and the timeline', async () => {
    const { code, stdout, stderr } = await plan([...GIVEN_POD, '--peak-rps', '20000', '--json']);
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as PlanResult;
    expect(result.podCapacityRps).toBe(4000);
    // The committed HPA: 2 to 10 replicas at 60% CPU. 20,000 rps needs ceil(20000 / (0.6 × 4000)) = 9.
    expect(result.timeline[0]).toEqual({ t: 0, load: 1000, replicas: 2, readyReplicas: 2, capacity: 8000, nodes: 3 });
    expect(result.needs).toEqual({ minReplicas: 2, maxReplicas: 9, maxNodes: 3 });
    expect(result.peakReplicas).toBe(9);
    expect(result.cappedBy).toEqual([]);
    // The step comes at 60 s; new pods take 15 s to pull and 3 s to start, and CPU saturated at
    // the request shows the HPA at most 100% / 60% of its target a sync: capacity lags.
    expect(result.secondsOverCapacity).toBeGreaterThan(18);
    expect(result.timeToCapacitySeconds).toBe(result.secondsOverCapacity);
    const atPeak = result.timeline.find((entry) => entry.t === 60 + 300 - 1)!;
    expect(atPeak).toMatchObject({ load: 20000, replicas: 9, readyReplicas: 9 });
    // After the step, the 300-s stabilisation window, then the scale-down policy, bring it back to 2.
    expect(result.timeline.at(-1)!.replicas).toBe(2);
    for (const field of ['t', 'load', 'replicas', 'readyReplicas', 'capacity', 'nodes']) expect(atPeak).toHaveProperty(field);
  });

  it('says when maxReplicas caps the response, and what the peak needs', async () => {
    const { code, stdout } = await plan([...GIVEN_POD, '--peak-rps', '60000']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\| 0 \| 3000 \| 2 \| 2 \| 8000 \| 3 \|$/m);
    expect(stdout).toMatch(/capped by maxReplicas: the response was held back by the HPA's maxReplicas/);
    expect(stdout).toMatch(/the peak needs minReplicas ≥ 2, maxReplicas ≥ 25 and room for 9 nodes/);
  });

  it('says when the node pool caps the response (node bounds as create-cluster.sh sets them)', async () => {
    const { stdout } = await plan([...GIVEN_POD, '--peak-rps', '30000', '--zones', '1', '--max-nodes', '2', '--json']);
    const result = JSON.parse(stdout) as PlanResult;
    expect(result.cappedBy).toContain('maxNodes');
    expect(Math.max(...result.timeline.map((entry) => entry.nodes))).toBe(2);
    expect(Math.max(...result.timeline.map((entry) => entry.readyReplicas))).toBe(6); // 3 pods of 500m a 2-vCPU node
  });

  it('follows a load given as a CSV of seconds,rps, and draws the timeline as an SVG', async () => {
    const csv = path.join(scratch, 'load.csv');
    await writeFile(csv, '# seconds,rps\n0,500\n30,9000\n400,500\n');
    const svg = path.join(scratch, 'timeline.svg');
    const { code, stdout } = await plan([...GIVEN_POD, '--load-csv', csv, '--json', '--out', svg]);
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as PlanResult;
    expect(result.timeline.find((e) => e.t === 29)!.load).toBe(500);
    expect(result.timeline.find((e) => e.t === 30)!.load).toBe(9000);
    const drawing = await readFile(svg, 'utf8');
    expect(drawing).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(drawing.match(/<polyline /g)).toHaveLength(5);
    for (const name of ['load (rps)', 'ready capacity (rps)', 'replicas', 'ready replicas', 'nodes']) expect(drawing).toContain(`>${name}</text>`);
  });

  it('plans a KEDA ScaledObject as well, from its triggers and the behaviour it hands its HPA', async () => {
    const chart = new Chart(Testing.app(), 'keda', { disableResourceNameHashes: true });
    new AnomalyDetector(chart, 'Detector', { image: 'anomaly-serve:test', autoscaling: { mode: 'keda', gcpProject: 'my-project', metric: 'requests-per-second', targetPerPod: 2000 } });
    const manifests = path.join(scratch, 'keda.yaml');
    await writeFile(manifests, Testing.synth(chart).map((object) => stringify(object)).join('---\n'));
    const { code, stdout, stderr } = await plan([...GIVEN_POD, '--manifests', manifests, '--peak-rps', '20000']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^ScaledObject: 2 replicas at the start/);
    // CPU at 60% asks for 9; 2,000 rps a pod asks for 10: the larger wins.
    expect(stdout).toMatch(/maxReplicas ≥ 10 /);
  });

  it('measures a pod when not told: requests per CPU-second of the bundle the image runs, and its start-to-ready', async () => {
    const { code, stdout, stderr } = await plan(['--peak-rps', '5000', '--measure-seconds', '2', '--json']);
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as PlanResult;
    expect(result.podCapacityRps).toBeGreaterThan(100);
    const planning = logLines(stderr).find((l) => l.msg === 'planning') as { pod?: { startToReadySeconds: number; inFlightScale: number } };
    // The median of five starts of the bundle.
    const starts = logLines(stderr).find((l) => l.msg === 'start-up measured')?.seconds as number[];
    expect(starts).toHaveLength(5);
    expect(planning.pod!.startToReadySeconds).toBe([...starts].sort((a, b) => a - b)[2]);
    expect(planning.pod!.inFlightScale).toBeGreaterThan(0);
  }, 120_000);

  it.each([
    [['--pod-rps', '4000'], /give the load: --peak-rps N, or --load-csv FILE/],
    [['--peak-rps', '100', '--shape', 'wave'], /--shape must be step or ramp, got "wave"/],
    [['--peak-rps', 'lots'], /--peak-rps must be a positive number, got "lots"/],
    [['--peak-rps', '100', '--manifests', 'nowhere.yaml'], /cannot read nowhere\.yaml: run npm run synth first/],
    [['--peak-rps', '100', '--node-cpus', '0.5', ...GIVEN_POD], /a node of 0\.5 vCPUs has .* CPU for pods: not one pod's request of 0\.5/],
  ])('%j: a message, the usage and exit code 2', async (args, message) => {
    const { code, stderr } = await plan(args);
    expect(code).toBe(2);
    expect(loggedError(stderr)).toMatch(message);
    expect(stderr).toContain('Usage: npm run plan');
  });
});

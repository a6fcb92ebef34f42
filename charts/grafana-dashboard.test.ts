import { Chart, Testing } from 'cdk8s';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { AnomalyDetector } from './anomaly-detector.ts';
import { grafanaDashboard } from './grafana-dashboard.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';

/** The metrics of kube-state-metrics and cAdvisor (the kubelet) the dashboard may use, as documented. */
const CLUSTER_METRICS = new Set([
  // https://github.com/kubernetes/kube-state-metrics/blob/main/docs/metrics/workload/deployment-metrics.md
  'kube_deployment_status_replicas',
  // https://github.com/kubernetes/kube-state-metrics/blob/main/docs/metrics/workload/horizontalpodautoscaler-metrics.md
  'kube_horizontalpodautoscaler_status_desired_replicas',
  'kube_horizontalpodautoscaler_spec_max_replicas',
  // https://github.com/kubernetes/kube-state-metrics/blob/main/docs/metrics/workload/pod-metrics.md
  'kube_pod_container_resource_requests',
  // https://github.com/google/cadvisor/blob/master/docs/storage/prometheus.md
  'container_cpu_usage_seconds_total',
]);

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .filter((match) => !stripped.slice(match.index + match[0].length).trimStart().startsWith('('))
    .map((match) => match[0])
    .filter((token) => !PROMQL_WORDS.has(token.toLowerCase()));
}

const expressions = (dashboard: ReturnType<typeof grafanaDashboard>) => [
  ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)),
  ...dashboard.templating.list.flatMap((variable) => (variable.type === 'query' ? [variable.query!.replace(/^label_values\(([^,]+),.*$/, '$1')] : [])),
];

describe('metricNames', () => {
  it('finds the metrics of a query, not its functions, labels or keywords', () => {
    expect(metricNames('sum by (le) (rate(a_bucket{x="y", le!="1"}[5m])) / on(pod) group_left b_total')).toEqual(['a_bucket', 'b_total']);
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(c_seconds_bucket[$__rate_interval])))')).toEqual(['c_seconds_bucket']);
  });
});

describe('the Grafana dashboard', () => {
  let server: ServerProcess;
  let exported: Set<string>;
  beforeAll(async () => {
    server = await spawnServer();
    const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    // Every family the server declares, with the series names of histograms and summaries.
    const suffixes: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };
    exported = new Set(
      [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) => (suffixes[type!] ?? ['']).map((suffix) => name + suffix)),
    );
  });
  afterAll(() => server.stop());

  it('queries only metrics the live server exports, or documented kube-state-metrics and cAdvisor ones', () => {
    const names = expressions(grafanaDashboard('anomaly-serve')).flatMap(metricNames);
    expect(names.length).toBeGreaterThan(15);
    expect(names.filter((name) => !exported.has(name) && !CLUSTER_METRICS.has(name))).toEqual([]);
    expect(names.filter((name) => CLUSTER_METRICS.has(name)).sort()).toEqual([...CLUSTER_METRICS].sort());
  });

  it('shows traffic, errors, latency, batching, anomalies against the expected rate, the error distribution, replicas, CPU, drift, rejections and key reloads', () => {
    const dashboard = grafanaDashboard('anomaly-serve');
    expect(dashboard.panels.map((p) => p.title)).toEqual([
      'Request rate by job and route',
      'Error rate',
      'Scoring latency',
      'Batching: rows per forward pass',
      'Queue wait and forward pass (p95)',
      'Anomaly rate, against the rate the calibration expects',
      'Reconstruction error distribution (drift)',
      'Threshold and median reconstruction error',
      'Replicas',
      'CPU against the request (what the HPA scales on)',
      'Drift: Kolmogorov-Smirnov test of recent scores against the calibration (p below 0.001: the inputs changed)',
      'Drift window: scores tested, per pod',
      "Models served: each job's model version, pods serving it (a canary beside the stable)",
      'Rejected requests by reason (queue_full and queue_timeout: shed at capacity)',
      'API keys: failed reloads of the keys file (the keys in force are kept)',
    ]);
    expect(dashboard.panels[2]!.targets.map((t) => t.legendFormat)).toEqual(['p50', 'p95', 'p99']);
    expect(dashboard.panels[6]!.type).toBe('heatmap');
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
  });
});

describe('AnomalyDetector grafanaDashboard', () => {
  const synth = (grafana?: boolean) => {
    const chart = new Chart(Testing.app(), 'test', { disableResourceNameHashes: true });
    new AnomalyDetector(chart, 'Detector', { image: 'anomaly-serve:dev', name: 'ecg', grafanaDashboard: grafana });
    return Testing.synth(chart) as Manifest[];
  };

  it('is off by default', () => {
    expect(synth().filter((m) => m.metadata.name.endsWith('-dashboard'))).toEqual([]);
  });

  it('ships the dashboard in a ConfigMap labelled for the kube-prometheus-stack sidecar', () => {
    const configMap = synth(true).find((m) => m.metadata.name === 'ecg-dashboard') as Manifest & { data: Record<string, string> };
    expect(manifestProblems([configMap])).toEqual([]);
    expect(configMap.metadata.labels).toEqual({ grafana_dashboard: '1' });
    expect(JSON.parse(configMap.data['ecg.json']!)).toEqual(grafanaDashboard('ecg'));
  });
});

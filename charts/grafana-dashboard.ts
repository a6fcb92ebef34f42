import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { METRIC } from '../app/metrics.ts';

/**
 * The Grafana dashboard of an AnomalyDetector: traffic, errors, latency, batching, anomalies,
 * the reconstruction-error distribution, the autoscaling it drives, what it rejects or sheds, and
 * whether its API keys reload. Queries filter on the
 * `namespace` label that both Managed Prometheus and the Prometheus Operator put on targets.
 */
export function grafanaDashboard(name: string) {
  return {
    title: `anomaly-serve: ${name}`,
    uid: `anomaly-serve-${name}`.slice(0, 40),
    tags: ['anomaly-serve'],
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus' },
        {
          name: 'namespace',
          label: 'Namespace',
          type: 'query',
          datasource: { type: 'prometheus', uid: '${datasource}' },
          query: `label_values(${METRIC.modelInfo}, namespace)`,
          refresh: 2,
        },
      ],
    },
    panels: panels(name),
  };
}

/** A panel of queries, at a place on the dashboard's grid (its id is its place in the list). */
function panel(title: string, x: number, y: number, unit: string, targets: [expr: string, legend: string][], type = 'timeseries') {
  return {
    title,
    type,
    datasource: { type: 'prometheus', uid: '${datasource}' },
    gridPos: { h: 8, w: 12, x, y },
    fieldConfig: { defaults: { unit }, overrides: [] },
    targets: targets.map(([expr, legendFormat], i) => ({
      refId: String.fromCharCode(65 + i),
      expr,
      legendFormat,
      ...(type === 'heatmap' && { format: 'heatmap' }),
    })),
  };
}

/** The panels, each a query of the server's metrics (or the cluster's) about its pods. */
function panels(name: string) {
  const inNamespace = 'namespace="$namespace"';
  const scoring = `${inNamespace}, route!~"/v2/health/.*"`;
  const rate = (selector: string) => `rate(${selector}[$__rate_interval])`;
  const serverPods = `${inNamespace}, pod=~"${name}-.*", container="server"`;
  const quantile = (q: number, histogram: string, selector: string) =>
    `histogram_quantile(${q}, sum by (le) (${rate(`${histogram}_bucket{${selector}}`)}))`;

  const all = [
    // By job too: a canary's pods are a scrape job of their own.
    panel('Request rate by job and route', 0, 0, 'reqps', [[`sum by (job, route) (${rate(`${METRIC.httpRequests}{${inNamespace}}`)})`, '{{job}} {{route}}']]),
    panel('Error rate', 12, 0, 'percentunit', [
      [`sum(${rate(`${METRIC.httpRequests}{${inNamespace}, status=~"5.."}`)}) / sum(${rate(`${METRIC.httpRequests}{${inNamespace}}`)})`, '5xx'],
      [`sum(${rate(`${METRIC.httpRequests}{${inNamespace}, status=~"4.."}`)}) / sum(${rate(`${METRIC.httpRequests}{${inNamespace}}`)})`, '4xx'],
    ]),
    panel('Scoring latency', 0, 8, 's', [
      [quantile(0.5, METRIC.httpDuration, scoring), 'p50'],
      [quantile(0.95, METRIC.httpDuration, scoring), 'p95'],
      [quantile(0.99, METRIC.httpDuration, scoring), 'p99'],
    ]),
    panel('Batching: rows per forward pass', 12, 8, 'short', [
      [`sum(${rate(`${METRIC.batchSize}_sum{${inNamespace}}`)}) / sum(${rate(`${METRIC.batchSize}_count{${inNamespace}}`)})`, 'mean'],
      [quantile(0.95, METRIC.batchSize, inNamespace), 'p95'],
    ]),
    panel('Queue wait and forward pass (p95)', 0, 16, 's', [
      [quantile(0.95, METRIC.queueWait, inNamespace), 'queue wait'],
      [quantile(0.95, METRIC.forwardPass, inNamespace), 'forward pass'],
    ]),
    panel('Anomaly rate, against the rate the calibration expects', 12, 16, 'percentunit', [
      [`sum by (job) (${rate(`${METRIC.anomalies}{${inNamespace}}`)}) / sum by (job) (${rate(`${METRIC.instancesScored}{${inNamespace}}`)})`, 'anomalous share {{job}}'],
      [`max(${METRIC.expectedAnomalyRate}{${inNamespace}})`, 'expected of normal traffic'],
      [`avg(${METRIC.driftWindowAnomalyRate}{${inNamespace}})`, 'drift window'],
    ]),
    panel(
      'Reconstruction error distribution (drift)',
      0,
      24,
      'short',
      [[`sum by (le) (increase(${METRIC.reconstructionError}_bucket{${inNamespace}}[$__rate_interval]))`, '{{le}}']],
      'heatmap',
    ),
    panel('Threshold and median reconstruction error', 12, 24, 'short', [
      [`max(${METRIC.threshold}{${inNamespace}})`, 'threshold'],
      [quantile(0.5, METRIC.reconstructionError, inNamespace), 'median error'],
    ]),
    panel('Replicas', 0, 32, 'short', [
      [`sum(kube_deployment_status_replicas{${inNamespace}, deployment="${name}"})`, 'running'],
      [`sum(kube_horizontalpodautoscaler_status_desired_replicas{${inNamespace}, horizontalpodautoscaler="${name}"})`, 'desired (HPA)'],
      [`sum(kube_horizontalpodautoscaler_spec_max_replicas{${inNamespace}, horizontalpodautoscaler="${name}"})`, 'maximum'],
    ]),
    panel('CPU against the request (what the HPA scales on)', 12, 32, 'percentunit', [
      [
        `sum(${rate(`container_cpu_usage_seconds_total{${serverPods}}`)}) / sum(kube_pod_container_resource_requests{${serverPods}, resource="cpu"})`,
        'utilisation of the request',
      ],
    ]),
    panel('Drift: Kolmogorov-Smirnov test of recent scores against the calibration (p below 0.001: the inputs changed)', 0, 48, 'short', [
      [`${METRIC.driftKsPValue}{${inNamespace}}`, 'p-value {{pod}}'],
      [`${METRIC.driftKsStatistic}{${inNamespace}}`, 'statistic {{pod}}'],
    ]),
    panel('Drift window: scores tested, per pod', 12, 48, 'short', [[`${METRIC.driftWindowScores}{${inNamespace}}`, '{{pod}}']]),
    panel('Models served: each job\'s model version, pods serving it (a canary beside the stable)', 0, 56, 'short', [
      [`count by (job, model, version) (${METRIC.modelInfo}{${inNamespace}})`, '{{job}} {{model}} {{version}}'],
    ]),
    panel('Rejected requests by reason (queue_full and queue_timeout: shed at capacity)', 0, 40, 'reqps', [
      [`sum by (reason) (${rate(`${METRIC.requestsRejected}{${inNamespace}}`)})`, '{{reason}}'],
    ]),
    panel('API keys: failed reloads of the keys file (the keys in force are kept)', 12, 40, 'short', [
      [`sum(increase(${METRIC.apiKeysReloadFailures}{${inNamespace}}[$__rate_interval]))`, 'failed reloads'],
    ]),
  ];
  // Grafana's panel ids: 1, 2, … in order.
  return all.map((p, i) => ({ id: i + 1, ...p }));
}

export interface GrafanaDashboardProps {
  /** The AnomalyDetector's name, which the queries select on. */
  readonly name: string;
  /** Labels the Grafana sidecar looks for. @default { grafana_dashboard: '1' } (kube-prometheus-stack) */
  readonly labels?: Record<string, string>;
}

/** A ConfigMap that kube-prometheus-stack's Grafana dashboard sidecar loads. */
export class GrafanaDashboard extends Construct {
  readonly configMap: kplus.ConfigMap;

  constructor(scope: Construct, id: string, props: GrafanaDashboardProps) {
    super(scope, id);
    this.configMap = new kplus.ConfigMap(this, 'Resource', {
      metadata: { name: `${props.name}-dashboard`, labels: props.labels ?? { grafana_dashboard: '1' } },
      data: { [`${props.name}.json`]: JSON.stringify(grafanaDashboard(props.name), null, 2) },
    });
  }
}

import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { METRIC_PREFIX } from '../app/contract.ts';

/**
 * The Grafana dashboard of an AnomalyDetector: traffic, errors, latency, batching, anomalies,
 * the reconstruction-error distribution, the autoscaling it drives, what it rejects or sheds, and
 * whether its API keys reload. Queries filter on the
 * `namespace` label that both Managed Prometheus and the Prometheus Operator put on targets.
 */
export function grafanaDashboard(name: string) {
  const m = (metric: string) => `${METRIC_PREFIX}${metric}`;
  const inNamespace = 'namespace="$namespace"';
  const scoring = `${inNamespace}, route!~"/v2/health/.*"`;
  const rate = (selector: string) => `rate(${selector}[$__rate_interval])`;
  const serverPods = `${inNamespace}, pod=~"${name}-.*", container="server"`;
  let nextId = 1;
  const panel = (title: string, x: number, y: number, unit: string, targets: [expr: string, legend: string][], type = 'timeseries') => ({
    id: nextId++,
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
  });
  const quantile = (q: number, histogram: string, selector: string) =>
    `histogram_quantile(${q}, sum by (le) (${rate(`${m(histogram)}_bucket{${selector}}`)}))`;

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
          query: `label_values(${m('model_info')}, namespace)`,
          refresh: 2,
        },
      ],
    },
    panels: [
      panel('Request rate by route', 0, 0, 'reqps', [[`sum by (route) (${rate(`${m('http_requests_total')}{${inNamespace}}`)})`, '{{route}}']]),
      panel('Error rate', 12, 0, 'percentunit', [
        [`sum(${rate(`${m('http_requests_total')}{${inNamespace}, status=~"5.."}`)}) / sum(${rate(`${m('http_requests_total')}{${inNamespace}}`)})`, '5xx'],
        [`sum(${rate(`${m('http_requests_total')}{${inNamespace}, status=~"4.."}`)}) / sum(${rate(`${m('http_requests_total')}{${inNamespace}}`)})`, '4xx'],
      ]),
      panel('Scoring latency', 0, 8, 's', [
        [quantile(0.5, 'http_request_duration_seconds', scoring), 'p50'],
        [quantile(0.95, 'http_request_duration_seconds', scoring), 'p95'],
        [quantile(0.99, 'http_request_duration_seconds', scoring), 'p99'],
      ]),
      panel('Batching: rows per forward pass', 12, 8, 'short', [
        [`sum(${rate(`${m('batch_size_sum')}{${inNamespace}}`)}) / sum(${rate(`${m('batch_size_count')}{${inNamespace}}`)})`, 'mean'],
        [quantile(0.95, 'batch_size', inNamespace), 'p95'],
      ]),
      panel('Queue wait and forward pass (p95)', 0, 16, 's', [
        [quantile(0.95, 'batch_queue_wait_seconds', inNamespace), 'queue wait'],
        [quantile(0.95, 'forward_pass_seconds', inNamespace), 'forward pass'],
      ]),
      panel('Anomaly rate', 12, 16, 'percentunit', [
        [`sum(${rate(`${m('anomalies_total')}{${inNamespace}}`)}) / sum(${rate(`${m('instances_scored_total')}{${inNamespace}}`)})`, 'anomalous share'],
      ]),
      panel(
        'Reconstruction error distribution (drift)',
        0,
        24,
        'short',
        [[`sum by (le) (increase(${m('reconstruction_error_bucket')}{${inNamespace}}[$__rate_interval]))`, '{{le}}']],
        'heatmap',
      ),
      panel('Threshold and median reconstruction error', 12, 24, 'short', [
        [`max(${m('threshold')}{${inNamespace}})`, 'threshold'],
        [quantile(0.5, 'reconstruction_error', inNamespace), 'median error'],
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
      panel('Rejected requests by reason (queue_full and queue_timeout: shed at capacity)', 0, 40, 'reqps', [
        [`sum by (reason) (${rate(`${m('requests_rejected_total')}{${inNamespace}}`)})`, '{{reason}}'],
      ]),
      panel('API keys: failed reloads of the keys file (the keys in force are kept)', 12, 40, 'short', [
        [`sum(increase(${m('api_keys_reload_failures_total')}{${inNamespace}}[$__rate_interval]))`, 'failed reloads'],
      ]),
    ],
  };
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

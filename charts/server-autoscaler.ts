import type { ApiObjectMetadata } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { METRIC } from '../app/metrics.ts';
import { KedaScaledObject } from './keda-scaled-object.ts';
import { KedaTriggerAuthentication } from './keda-trigger-authentication.ts';
import { GCP_PROJECT_ID } from './k8s-values.ts';
import { seriesSelector, type Monitoring } from './server-monitoring.ts';
import { PropsError } from './props-error.ts';

/** The server's load signals (app/metrics.ts) that replicas can scale on, with their Prometheus type. */
export const LOAD_SERIES = {
  'in-flight': { series: METRIC.inFlight, kind: 'gauge' },
  'requests-per-second': { series: METRIC.httpRequests, kind: 'counter' },
} as const;
export type LoadMetric = keyof typeof LOAD_SERIES;

/**
 * Per pod, at the default 500m CPU request: the benchmark's server spends about 60 µs of CPU a
 * one-beat request (docs/benchmarks.md), so half a CPU answers about 8,000 a second; 60% of that is
 * the CPU target's 4,800. In flight: 16 is about 48% of a pod's capacity on the curve `npm run plan`
 * measures (docs/capacity-planning.md), headroom for the pods it asks for to start.
 */
const TARGET_PER_POD: Record<LoadMetric, number> = { 'in-flight': 16, 'requests-per-second': 4800 };

export interface LoadAutoscaling {
  /**
   * What the replicas scale on. 'cpu': an HPA that keeps targetCpuUtilization. 'load': the same HPA
   * with `metric` per pod beside CPU, read through the metrics adapter of `monitoring` (the Custom
   * Metrics Stackdriver Adapter with 'gmp', prometheus-adapter with 'prometheus-operator'). 'keda':
   * a KEDA ScaledObject with the same two triggers and behaviour; KEDA makes the HPA.
   * @default 'cpu'
   */
  readonly mode?: 'cpu' | 'load' | 'keda';
  /** The load metric: 'in-flight' (inference requests being answered) or 'requests-per-second'. @default 'in-flight' */
  readonly metric?: LoadMetric;
  /** The metric's average per pod that the autoscaler keeps. @default 16 in flight, or 4,800 requests a second */
  readonly targetPerPod?: number;
  /** With 'keda' and 'gmp': the Google Cloud project whose Managed Prometheus KEDA queries. @default none; required then */
  readonly gcpProject?: string;
  /** With 'keda' and 'prometheus-operator': the Prometheus KEDA queries. @default 'http://prometheus-operated.monitoring.svc:9090' */
  readonly prometheusAddress?: string;
}

/** What a user chooses of the autoscaling (the AnomalyDetector's props include these). */
export interface ServerAutoscalerOptions {
  /** Fewest pods the autoscaler keeps. @default 2 */
  readonly minReplicas?: number;
  /** Most pods the autoscaler makes. @default 10 */
  readonly maxReplicas?: number;
  /** Average CPU utilisation, in percent of the request, that the HPA keeps. @default 60 */
  readonly targetCpuUtilization?: number;
  /** What the replicas scale on: CPU, or load as well. @default CPU alone */
  readonly autoscaling?: LoadAutoscaling;
  /** As autoscaling/v2's HPAScalingRules. @default double, or add 4 pods, every 15 s, whichever is more, with no stabilisation */
  readonly scaleUp?: kplus.k8s.HpaScalingRulesV2;
  /** As autoscaling/v2's HPAScalingRules. @default at most half the pods a minute, after 300 s of stabilisation */
  readonly scaleDown?: kplus.k8s.HpaScalingRulesV2;
}

export interface ServerAutoscalerProps extends ServerAutoscalerOptions {
  readonly metadata: ApiObjectMetadata & { readonly name: string };
  /** The Deployment it scales (named as metadata.name, the Prometheus job of its pods). */
  readonly deployment: kplus.Deployment;
  /** Where the server's metrics go, for the load metric. */
  readonly monitoring: Monitoring;
}

const DEFAULT_SCALE_UP: kplus.k8s.HpaScalingRulesV2 = {
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies: [
    { type: 'Percent', value: 100, periodSeconds: 15 },
    { type: 'Pods', value: 4, periodSeconds: 15 },
  ],
};
const DEFAULT_SCALE_DOWN: kplus.k8s.HpaScalingRulesV2 = { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] };

/**
 * The server's horizontal autoscaling: a HorizontalPodAutoscaler on CPU (and a load metric, through
 * the monitoring's metrics adapter), or a KEDA ScaledObject with the same triggers and behaviour.
 */
export class ServerAutoscaler extends Construct {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** The Prometheus KEDA queries (and whose namespace scrapes the pods, with prometheus-operator). */
  readonly prometheusAddress: string;
  /** The HPA, or with mode 'keda' the ScaledObject that makes one. */
  readonly resource: kplus.k8s.KubeHorizontalPodAutoscalerV2 | KedaScaledObject;

  constructor(scope: Construct, id: string, props: ServerAutoscalerProps) {
    super(scope, id);
    const { metadata, monitoring } = props;
    const { mode = 'cpu', metric = 'in-flight', gcpProject } = props.autoscaling ?? {};
    const targetPerPod = props.autoscaling?.targetPerPod ?? TARGET_PER_POD[metric];
    this.prometheusAddress = props.autoscaling?.prometheusAddress ?? 'http://prometheus-operated.monitoring.svc:9090';
    this.minReplicas = props.minReplicas ?? 2;
    this.maxReplicas = props.maxReplicas ?? 10;
    const targetCpuUtilization = props.targetCpuUtilization ?? 60;
    validate({ min: this.minReplicas, max: this.maxReplicas, targetCpuUtilization, mode, metric, targetPerPod, monitoring, gcpProject });

    const behavior = { scaleUp: props.scaleUp ?? DEFAULT_SCALE_UP, scaleDown: props.scaleDown ?? DEFAULT_SCALE_DOWN };
    // The replicas are the autoscaler's: the Deployment writes none.
    props.deployment.markHasAutoscaler();
    if (mode !== 'keda') {
      const cpu: kplus.k8s.MetricSpecV2 = { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: targetCpuUtilization } } };
      const load: kplus.k8s.MetricSpecV2 = {
        type: 'Pods',
        pods: { metric: { name: adapterMetricName(monitoring, metric) }, target: { type: 'AverageValue', averageValue: kplus.k8s.Quantity.fromNumber(targetPerPod) } },
      };
      this.resource = new kplus.k8s.KubeHorizontalPodAutoscalerV2(this, 'Resource', {
        metadata,
        spec: {
          behavior,
          maxReplicas: this.maxReplicas,
          metrics: mode === 'load' ? [cpu, load] : [cpu],
          minReplicas: this.minReplicas,
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: metadata.name },
        },
      });
      return;
    }
    const selector = seriesSelector(this, metadata.name, monitoring);
    const { series, kind } = LOAD_SERIES[metric];
    const query = kind === 'gauge' ? `sum(${series}{${selector}})` : `sum(rate(${series}{${selector}}[1m]))`;
    const gmp = monitoring === 'gmp';
    if (gmp) new KedaTriggerAuthentication(this, 'TriggerAuthentication', { metadata, podIdentity: 'gcp' });
    this.resource = new KedaScaledObject(this, 'Resource', {
      metadata,
      deploymentName: metadata.name,
      minReplicas: this.minReplicas,
      maxReplicas: this.maxReplicas,
      behavior,
      triggers: [
        { type: 'cpu', metricType: 'Utilization', metadata: { value: String(targetCpuUtilization) } },
        {
          type: 'prometheus',
          metadata: {
            serverAddress: gmp ? `https://monitoring.googleapis.com/v1/projects/${gcpProject}/location/global/prometheus` : this.prometheusAddress,
            query,
            threshold: String(targetPerPod),
          },
          ...(gmp ? { authenticationRef: metadata.name } : {}),
        },
      ],
    });
  }
}

/**
 * A load metric's name as the metrics adapter of a monitoring profile exposes it per pod: the
 * Custom Metrics Stackdriver Adapter reads Managed Prometheus as `prometheus.googleapis.com|<name>|<kind>`
 * (a counter as its rate); prometheus-adapter's default rules expose a gauge by its name and a
 * counter's rate without `_total`.
 */
function adapterMetricName(monitoring: Monitoring, metric: LoadMetric): string {
  const { series, kind } = LOAD_SERIES[metric];
  if (monitoring === 'gmp') return `prometheus.googleapis.com|${series}|${kind}`;
  return series.replace(/_total$/, '');
}

interface Resolved {
  readonly min: number;
  readonly max: number;
  readonly targetCpuUtilization: number;
  readonly mode: string;
  readonly metric: string;
  readonly targetPerPod: number;
  readonly monitoring: Monitoring;
  readonly gcpProject: string | undefined;
}

function validate({ min, max, targetCpuUtilization: target, mode, metric, targetPerPod, monitoring, gcpProject }: Resolved): void {
  const fail = (message: string) => {
    throw new PropsError('ServerAutoscaler', message);
  };
  if (!Number.isInteger(min) || min < 1) fail(`minReplicas (${min}) must be a whole number of at least 1`);
  if (!Number.isInteger(max) || max < min) fail(`minReplicas (${min}) must not exceed maxReplicas (${max})`);
  if (!Number.isInteger(target) || target < 1 || target > 100) fail(`targetCpuUtilization (${target}) must be a whole percentage from 1 to 100`);
  if (!['cpu', 'load', 'keda'].includes(mode)) fail(`autoscaling.mode (${mode}) must be cpu, load or keda`);
  if (!(metric in LOAD_SERIES)) fail(`autoscaling.metric (${metric}) must be ${Object.keys(LOAD_SERIES).join(' or ')}`);
  if (!(targetPerPod > 0)) fail(`autoscaling.targetPerPod (${targetPerPod}) must be above 0`);
  if (mode !== 'cpu' && monitoring === 'none') {
    fail(`autoscaling.mode ${mode} scales on the server's metrics, which monitoring 'none' does not collect: use monitoring gmp or prometheus-operator`);
  }
  if (mode === 'keda' && monitoring === 'gmp' && !GCP_PROJECT_ID.test(gcpProject ?? '')) {
    fail(`autoscaling.mode keda with monitoring gmp needs autoscaling.gcpProject, the project ID whose Managed Prometheus KEDA queries (got ${JSON.stringify(gcpProject)})`);
  }
}

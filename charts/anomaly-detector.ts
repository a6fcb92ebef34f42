import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ApiObject, Chart, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ConfigError, loadConfig } from '../app/config.ts';
import { FORCED_EXIT_GRACE_MS } from '../app/shutdown-signals.ts';
import { CONTAINER_USER, ENV, METRIC_PREFIX, PATHS, SERVER_DEFAULTS } from '../app/contract.ts';
import { readMetadata } from '../model/artifact.ts';
import { GrafanaDashboard } from './grafana-dashboard.ts';
import { API_KEYS, apiKeysVolume } from './api-keys-volume.ts';
import { LOAD_TEST_POD_LABELS } from './load-test.ts';
import { ServerNetworkPolicy } from './server-network-policy.ts';
import { KedaScaledObject } from './keda-scaled-object.ts';
import { KedaTriggerAuthentication } from './keda-trigger-authentication.ts';
import { PodMonitoring } from './pod-monitoring.ts';
import { restrictPods } from './pod-security.ts';
import { ServiceMonitor } from './service-monitor.ts';
import { parseQuantity, VerticalPodAutoscaler, type ResourceQuantities, type VpaResource, type VpaUpdateMode } from './vertical-pod-autoscaler.ts';

export type Monitoring = 'gmp' | 'prometheus-operator' | 'none';

export interface AnomalyDetectorResources {
  /** CPU request; the HPA's utilisation is a percentage of it. @default ANOMALY_DETECTOR_DEFAULTS.resources.cpuRequest ('500m') */
  readonly cpuRequest?: string;
  /** @default ANOMALY_DETECTOR_DEFAULTS.resources.memoryRequest ('256Mi') */
  readonly memoryRequest?: string;
  /** @default ANOMALY_DETECTOR_DEFAULTS.resources.memoryLimit ('1Gi') */
  readonly memoryLimit?: string;
}

export interface AnomalyDetectorVpaOptions {
  /** @default ANOMALY_DETECTOR_DEFAULTS.verticalPodAutoscaler.updateMode ('Off': recommendations only) */
  readonly updateMode?: VpaUpdateMode;
  /** Resources the VPA may set; never the one the HPA scales on. @default ANOMALY_DETECTOR_DEFAULTS.verticalPodAutoscaler.controlledResources (['memory']) */
  readonly controlledResources?: readonly VpaResource[];
  /** @default no bound */
  readonly minAllowed?: ResourceQuantities;
  /** @default no bound */
  readonly maxAllowed?: ResourceQuantities;
}

/** Seconds between the server's own forced exit (a drain that hung) and the kubelet's SIGKILL. */
const TERMINATION_MARGIN_SECONDS = 3;

/** The load signals the server exports (app/metrics.ts), to scale on. */
export type LoadMetric = 'in-flight' | 'requests-per-second';

export interface AnomalyDetectorAutoscaling {
  /**
   * What the replicas scale on. 'cpu': an HPA that keeps targetCpuUtilization. 'load': the same HPA
   * with `metric` per pod beside CPU, read through the metrics adapter of `monitoring` (the Custom
   * Metrics Stackdriver Adapter with 'gmp', prometheus-adapter with 'prometheus-operator'). 'keda':
   * a KEDA ScaledObject with the same two triggers and behaviour; KEDA makes the HPA.
   * @default ANOMALY_DETECTOR_DEFAULTS.autoscaling.mode ('cpu')
   */
  readonly mode?: 'cpu' | 'load' | 'keda';
  /** @default ANOMALY_DETECTOR_DEFAULTS.autoscaling.metric ('in-flight') */
  readonly metric?: LoadMetric;
  /** The metric's average per pod that the autoscaler keeps. @default ANOMALY_DETECTOR_DEFAULTS.autoscaling.targetPerPod[metric] */
  readonly targetPerPod?: number;
  /** With 'keda' and 'gmp': the Google Cloud project whose Managed Prometheus KEDA queries. @default none; required then */
  readonly gcpProject?: string;
  /** With 'keda' and 'prometheus-operator': the Prometheus KEDA queries. @default ANOMALY_DETECTOR_DEFAULTS.autoscaling.prometheusAddress */
  readonly prometheusAddress?: string;
}

export interface AnomalyDetectorProps {
  /** The server image, e.g. `europe-west1-docker.pkg.dev/project/repo/anomaly-serve:abc123`. */
  readonly image: string;
  /** Prefix of every object's name. @default ANOMALY_DETECTOR_DEFAULTS.name ('anomaly-serve') */
  readonly name?: string;
  /** @default 'Always' (cdk8s-plus) */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
  /**
   * The model's name in the URLs. @default the name in the bundled model's metadata.json; with
   * `modelUri`, the name in that model's, which the server reads
   */
  readonly modelName?: string;
  /** Where the server reads the model. @default SERVER_DEFAULTS.modelPath (in the image), or ANOMALY_DETECTOR_DEFAULTS.modelUriPath with `modelUri` */
  readonly modelPath?: string;
  /** A `gs://` folder with model.json, weights.bin and metadata.json, copied in by an init container. @default the model in the image */
  readonly modelUri?: string;
  /** The Google service account the pods act as (Workload Identity), to read `modelUri`. @default none; required with `modelUri` */
  readonly gcpServiceAccount?: string;
  /** The image that copies `modelUri`. @default ANOMALY_DETECTOR_DEFAULTS.modelCopyImage */
  readonly modelCopyImage?: string;
  /** Overrides the model's anomaly threshold. @default the threshold in metadata.json */
  readonly threshold?: number;
  /** @default SERVER_DEFAULTS.port (8080) */
  readonly port?: number;
  /** The container port of GET /metrics, which only the monitoring reaches: never on the Service. @default SERVER_DEFAULTS.metricsPort (8082) */
  readonly metricsPort?: number;
  /** @default ANOMALY_DETECTOR_DEFAULTS.serviceType (LOAD_BALANCER) */
  readonly serviceType?: kplus.ServiceType;
  /** With NODE_PORT: the port on every node, 30000-32767. @default assigned by Kubernetes */
  readonly nodePort?: number;
  /** With LOAD_BALANCER: the client CIDRs the load balancer admits (loadBalancerSourceRanges). @default every address */
  readonly allowedSourceRanges?: readonly string[];
  /** With LOAD_BALANCER: an internal load balancer, reachable from the VPC only (GKE's annotation). @default false: external */
  readonly internalLoadBalancer?: boolean;
  /** @default ANOMALY_DETECTOR_DEFAULTS.minReplicas (2) */
  readonly minReplicas?: number;
  /** @default ANOMALY_DETECTOR_DEFAULTS.maxReplicas (10) */
  readonly maxReplicas?: number;
  /** Average CPU utilisation, in percent of the request, that the HPA keeps. @default ANOMALY_DETECTOR_DEFAULTS.targetCpuUtilization (60) */
  readonly targetCpuUtilization?: number;
  /** What the replicas scale on: CPU, or load as well. @default ANOMALY_DETECTOR_DEFAULTS.autoscaling (CPU) */
  readonly autoscaling?: AnomalyDetectorAutoscaling;
  /** @default ANOMALY_DETECTOR_DEFAULTS.scaleUp: double, or add 4 pods, every 15 s, whichever is more, with no stabilisation */
  readonly scaleUp?: kplus.ScalingRules;
  /** @default ANOMALY_DETECTOR_DEFAULTS.scaleDown: at most half the pods a minute, after 300 s of stabilisation */
  readonly scaleDown?: kplus.ScalingRules;
  /** @default ANOMALY_DETECTOR_DEFAULTS.resources */
  readonly resources?: AnomalyDetectorResources;
  /** The VerticalPodAutoscaler, or false for none (clusters without the VPA). @default ANOMALY_DETECTOR_DEFAULTS.verticalPodAutoscaler */
  readonly verticalPodAutoscaler?: AnomalyDetectorVpaOptions | false;
  /** Pods the PodDisruptionBudget keeps up during voluntary disruptions, or false for none. @default ANOMALY_DETECTOR_DEFAULTS.minAvailable (1) */
  readonly minAvailable?: number | false;
  /** @default ANOMALY_DETECTOR_DEFAULTS.monitoring ('gmp': Google Cloud Managed Service for Prometheus) */
  readonly monitoring?: Monitoring;
  /** Labels of the ServiceMonitor, for the Prometheus' selector. @default ANOMALY_DETECTOR_DEFAULTS.serviceMonitorLabels */
  readonly serviceMonitorLabels?: Record<string, string>;
  /** Server settings: MAX_BATCH_SIZE. @default SERVER_DEFAULTS.maxBatchSize (64) */
  readonly maxBatchSize?: number;
  /** @default SERVER_DEFAULTS.logLevel ('info') */
  readonly logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** How long a terminating pod keeps serving while endpoints update. @default SERVER_DEFAULTS.shutdownDelaySeconds (5) */
  readonly shutdownDelaySeconds?: number;
  /**
   * From SIGTERM to the end of the drain, which must hold the delay and a whole request
   * (REQUEST_TIMEOUT_SECONDS); the pods' termination grace period is 5 s longer.
   * @default SERVER_DEFAULTS.shutdownTimeoutSeconds (25)
   */
  readonly shutdownTimeoutSeconds?: number;
  /** Soft spread of the pods over zones and nodes. @default ANOMALY_DETECTOR_DEFAULTS.topologySpread (true) */
  readonly topologySpread?: boolean;
  /** A Grafana dashboard in a ConfigMap for kube-prometheus-stack's dashboard sidecar. @default ANOMALY_DETECTOR_DEFAULTS.grafanaDashboard (false) */
  readonly grafanaDashboard?: boolean;
  /**
   * The Secret whose `keys` entry lists the API keys, one a line, mounted read-only: every request
   * but the health probes and the page must carry one. You create it (the chart holds no secret);
   * the pods wait for it. `false` serves the API to anyone who reaches it.
   * @default `${name}-api-keys`
   */
  readonly apiKeysSecret?: string | false;
  /**
   * A NetworkPolicy of the pods: in, the serving port from `allowedSourceRanges` (or anywhere) and
   * from a LoadTest in the namespace, the metrics port from `monitoringNamespace`; out, DNS, and
   * Google APIs with `modelUri`. Needs a cluster that enforces NetworkPolicy (GKE Dataplane V2).
   * @default ANOMALY_DETECTOR_DEFAULTS.networkPolicy (true)
   */
  readonly networkPolicy?: boolean;
  /** The namespace of what scrapes the metrics port. @default 'gmp-system' with monitoring 'gmp'; the Prometheus' (from autoscaling.prometheusAddress, else 'monitoring') with 'prometheus-operator' */
  readonly monitoringNamespace?: string;
}


/** The bundled model, as the image holds it: the default model the charts name. */
const BUNDLED_MODEL = readMetadata(fileURLToPath(new URL(`../${SERVER_DEFAULTS.modelPath}`, import.meta.url)));

/**
 * Every default of the AnomalyDetector's props, in one place: the props' documentation names
 * them, the constructor fills them in, and the checks read the filled-in props.
 */
export const ANOMALY_DETECTOR_DEFAULTS = {
  name: 'anomaly-serve',
  /** Where the init container puts a `modelUri` model. */
  modelUriPath: '/models',
  modelCopyImage: 'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim',
  port: SERVER_DEFAULTS.port,
  metricsPort: SERVER_DEFAULTS.metricsPort,
  serviceType: kplus.ServiceType.LOAD_BALANCER,
  minReplicas: 2,
  maxReplicas: 10,
  targetCpuUtilization: 60,
  autoscaling: {
    mode: 'cpu' as NonNullable<AnomalyDetectorAutoscaling['mode']>,
    metric: 'in-flight' as LoadMetric,
    /**
     * Per pod, at the default 500m CPU request: the benchmark's server spends about 60 µs of CPU a
     * one-beat request (README, Benchmarks), so half a CPU answers about 8,000 a second; 60% of that
     * is the CPU target's 4,800. In flight: 16 is about 48% of a pod's capacity on the curve
     * `npm run plan` measures (README, Scaling on load), headroom for the pods it asks for to start.
     */
    targetPerPod: { 'in-flight': 16, 'requests-per-second': 4800 } as Record<LoadMetric, number>,
    prometheusAddress: 'http://prometheus-operated.monitoring.svc:9090',
  },
  scaleUp: {
    stabilizationWindow: Duration.seconds(0),
    strategy: kplus.ScalingStrategy.MAX_CHANGE,
    policies: [
      { replicas: kplus.Replicas.percent(100), duration: Duration.seconds(15) },
      { replicas: kplus.Replicas.absolute(4), duration: Duration.seconds(15) },
    ],
  } as kplus.ScalingRules,
  scaleDown: {
    stabilizationWindow: Duration.seconds(300),
    policies: [{ replicas: kplus.Replicas.percent(50), duration: Duration.seconds(60) }],
  } as kplus.ScalingRules,
  resources: { cpuRequest: '500m', memoryRequest: '256Mi', memoryLimit: '1Gi' },
  verticalPodAutoscaler: { updateMode: 'Off', controlledResources: ['memory'] } as Required<Pick<AnomalyDetectorVpaOptions, 'updateMode' | 'controlledResources'>>,
  minAvailable: 1,
  monitoring: 'gmp' as Monitoring,
  serviceMonitorLabels: { release: 'kube-prometheus-stack' },
  maxBatchSize: SERVER_DEFAULTS.maxBatchSize,
  logLevel: SERVER_DEFAULTS.logLevel,
  shutdownDelaySeconds: SERVER_DEFAULTS.shutdownDelaySeconds,
  shutdownTimeoutSeconds: SERVER_DEFAULTS.shutdownTimeoutSeconds,
  topologySpread: true,
  grafanaDashboard: false,
  networkPolicy: true,
} as const;

/** The props with every default filled in. */
interface ResolvedProps extends Omit<AnomalyDetectorProps, 'resources' | 'verticalPodAutoscaler' | 'autoscaling' | 'apiKeysSecret'> {
  readonly apiKeysSecret: string | false;
  readonly name: string;
  readonly modelPath: string;
  readonly modelCopyImage: string;
  readonly port: number;
  readonly metricsPort: number;
  readonly serviceType: kplus.ServiceType;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targetCpuUtilization: number;
  readonly autoscaling: Required<Pick<AnomalyDetectorAutoscaling, 'mode' | 'metric' | 'targetPerPod' | 'prometheusAddress'>> & AnomalyDetectorAutoscaling;
  readonly scaleUp: kplus.ScalingRules;
  readonly scaleDown: kplus.ScalingRules;
  readonly resources: Required<AnomalyDetectorResources>;
  readonly verticalPodAutoscaler: Required<Pick<AnomalyDetectorVpaOptions, 'updateMode' | 'controlledResources'>> & AnomalyDetectorVpaOptions | false;
  readonly minAvailable: number | false;
  readonly monitoring: Monitoring;
  readonly serviceMonitorLabels: Record<string, string>;
  readonly maxBatchSize: number;
  readonly logLevel: NonNullable<AnomalyDetectorProps['logLevel']>;
  readonly shutdownDelaySeconds: number;
  readonly shutdownTimeoutSeconds: number;
  readonly topologySpread: boolean;
  readonly grafanaDashboard: boolean;
  readonly networkPolicy: boolean;
}

function resolve(props: AnomalyDetectorProps): ResolvedProps {
  const defaults = ANOMALY_DETECTOR_DEFAULTS;
  const given = Object.fromEntries(Object.entries(props).filter(([, value]) => value !== undefined)) as AnomalyDetectorProps;
  return {
    ...defaults,
    ...given,
    // Without modelUri the model is the one in the image; with it, the server reads its name.
    modelName: props.modelName ?? (props.modelUri ? undefined : BUNDLED_MODEL.name),
    modelPath: props.modelPath ?? (props.modelUri ? defaults.modelUriPath : SERVER_DEFAULTS.modelPath),
    resources: { ...defaults.resources, ...props.resources },
    verticalPodAutoscaler: props.verticalPodAutoscaler === false ? false : { ...defaults.verticalPodAutoscaler, ...props.verticalPodAutoscaler },
    autoscaling: resolveAutoscaling(props.autoscaling ?? {}),
    apiKeysSecret: props.apiKeysSecret ?? `${props.name ?? defaults.name}-api-keys`,
  };
}

function resolveAutoscaling(given: AnomalyDetectorAutoscaling): ResolvedProps['autoscaling'] {
  const defaults = ANOMALY_DETECTOR_DEFAULTS.autoscaling;
  const metric = given.metric ?? defaults.metric;
  return {
    ...given,
    mode: given.mode ?? defaults.mode,
    metric,
    targetPerPod: given.targetPerPod ?? defaults.targetPerPod[metric],
    prometheusAddress: given.prometheusAddress ?? defaults.prometheusAddress,
  };
}

const NODE_PORTS = { min: 30000, max: 32767 };
const PORT_NAME = 'http';
const METRICS_PORT_NAME = 'metrics';

/**
 * The anomaly-detection service: a ConfigMap with the server's settings, a Deployment whose
 * replicas a HorizontalPodAutoscaler owns, a Service, a VerticalPodAutoscaler that never fights the
 * HPA, a PodDisruptionBudget and a scrape config for Prometheus. Every object has a stable name.
 */
export class AnomalyDetector extends Construct {
  readonly name: string;
  readonly selectorLabels: Record<string, string>;
  readonly configMap: kplus.ConfigMap;
  readonly deployment: kplus.Deployment;
  readonly service: kplus.Service;
  /** The HPA; none with autoscaling mode 'keda', where KEDA makes it. */
  readonly horizontalPodAutoscaler?: kplus.HorizontalPodAutoscaler;
  readonly scaledObject?: KedaScaledObject;
  readonly verticalPodAutoscaler?: VerticalPodAutoscaler;
  /** The Secret of the API keys the pods read; none when the API is open. */
  readonly apiKeysSecret?: string;

  constructor(scope: Construct, id: string, given: AnomalyDetectorProps) {
    super(scope, id);
    const props = resolve(given);
    validate(props);
    const { name, port, metricsPort, modelPath } = props;
    this.name = name;
    this.selectorLabels = { 'app.kubernetes.io/name': 'anomaly-serve', 'app.kubernetes.io/instance': name };
    const labels = { ...this.selectorLabels, 'app.kubernetes.io/component': 'inference', 'app.kubernetes.io/managed-by': 'cdk8s' };
    const metadata = (suffix = '') => ({ name: name + suffix, labels });
    const { shutdownTimeoutSeconds, resources } = props;

    const settings: Record<string, string> = {
      [ENV.port]: String(port),
      [ENV.metricsPort]: String(metricsPort),
      ...(props.modelName !== undefined && { [ENV.modelName]: props.modelName }),
      [ENV.modelPath]: modelPath,
      [ENV.maxBatchSize]: String(props.maxBatchSize),
      [ENV.logLevel]: props.logLevel,
      [ENV.shutdownDelaySeconds]: String(props.shutdownDelaySeconds),
      [ENV.shutdownTimeoutSeconds]: String(shutdownTimeoutSeconds),
      ...(props.threshold !== undefined && { [ENV.threshold]: String(props.threshold) }),
      ...(props.apiKeysSecret !== false && { [ENV.apiKeysFile]: API_KEYS.file }),
    };
    checkServerSettings(settings);
    this.configMap = new kplus.ConfigMap(this, 'Config', { metadata: metadata('-config'), data: settings });

    const serviceAccount = props.gcpServiceAccount
      ? new kplus.ServiceAccount(this, 'ServiceAccount', {
          metadata: { ...metadata(), annotations: { 'iam.gke.io/gcp-service-account': props.gcpServiceAccount } },
          automountToken: false,
        })
      : undefined;

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: metadata(),
      // An explicit selector of stable labels, not cdk8s's path-derived one: renaming a construct
      // must not orphan the Deployment's pods.
      select: false,
      podMetadata: {
        labels,
        // A new hash when the settings change, so editing the ConfigMap rolls the pods.
        annotations: { 'anomaly-serve/config-hash': createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16) },
      },
      serviceAccount,
      automountServiceAccountToken: false,
      securityContext: { ensureNonRoot: true, user: CONTAINER_USER, group: CONTAINER_USER, fsGroup: CONTAINER_USER },
      // The whole drain, the server's own forced exit after it, and a margin before the SIGKILL.
      terminationGracePeriod: Duration.seconds(shutdownTimeoutSeconds + FORCED_EXIT_GRACE_MS / 1000 + TERMINATION_MARGIN_SECONDS),
      strategy: kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.percent(25), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: this.selectorLabels }));

    const tmp = kplus.Volume.fromEmptyDir(this, 'TmpVolume', 'tmp');
    const securityContext = {
      ensureNonRoot: true,
      user: CONTAINER_USER,
      group: CONTAINER_USER,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
    };
    const probe = (path: string, failureThreshold: number) =>
      kplus.Probe.fromHttpGet(path, { port, periodSeconds: Duration.seconds(5), timeoutSeconds: Duration.seconds(2), failureThreshold });
    const server = this.deployment.addContainer({
      name: 'server',
      image: props.image,
      imagePullPolicy: props.imagePullPolicy,
      ports: [
        { number: port, name: PORT_NAME },
        { number: metricsPort, name: METRICS_PORT_NAME },
      ],
      envFrom: [kplus.Env.fromConfigMap(this.configMap)],
      readiness: probe(PATHS.ready, 2),
      liveness: probe(PATHS.live, 3),
      startup: probe(PATHS.live, 30),
      resources: {
        cpu: { request: kplus.Cpu.millis(parseQuantity(resources.cpuRequest) * 1000) },
        memory: { request: Size.mebibytes(parseQuantity(resources.memoryRequest) / 2 ** 20), limit: Size.mebibytes(parseQuantity(resources.memoryLimit) / 2 ** 20) },
      },
      securityContext,
    });
    server.mount('/tmp', tmp);
    if (props.apiKeysSecret !== false) {
      this.apiKeysSecret = props.apiKeysSecret;
      server.mount(API_KEYS.mountPath, apiKeysVolume(this, props.apiKeysSecret), { readOnly: true });
    }

    if (props.modelUri) {
      const model = kplus.Volume.fromEmptyDir(this, 'ModelVolume', 'model');
      server.mount(modelPath, model, { readOnly: true });
      this.deployment.addInitContainer({
        name: 'copy-model',
        image: props.modelCopyImage,
        command: ['gcloud', 'storage', 'cp', '--recursive', `${props.modelUri.replace(/\/$/, '')}/*`, modelPath],
        // gcloud writes its configuration under $CLOUDSDK_CONFIG; the root filesystem is read-only.
        envVariables: { CLOUDSDK_CONFIG: kplus.EnvValue.fromValue('/tmp/gcloud') },
        volumeMounts: [
          { path: modelPath, volume: model },
          { path: '/tmp', volume: tmp },
        ],
        resources: { cpu: { request: kplus.Cpu.millis(100) }, memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) } },
        securityContext,
      });
    }

    restrictPods(this.deployment);
    if (props.topologySpread) {
      // A soft spread: cdk8s-plus's spread() is a hard pod anti-affinity.
      ApiObject.of(this.deployment).addJsonPatch(
        JsonPatch.add(
          '/spec/template/spec/topologySpreadConstraints',
          ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
            maxSkew: 1,
            topologyKey,
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: this.selectorLabels },
          })),
        ),
      );
    }

    this.service = new kplus.Service(this, 'Service', {
      metadata: { ...metadata(), ...(props.internalLoadBalancer ? { annotations: { 'networking.gke.io/load-balancer-type': 'Internal' } } : {}) },
      type: props.serviceType,
      loadBalancerSourceRanges: props.allowedSourceRanges ? [...props.allowedSourceRanges] : undefined,
      // The Deployment's own stable labels (given a Deployment, cdk8s-plus selects on its path label).
      selector: kplus.Pods.select(this, 'Pods', { labels: this.selectorLabels }),
      ports: [{ port: 80, targetPort: port, name: PORT_NAME, nodePort: props.nodePort }],
    });

    const { autoscaling } = props;
    const hpa = new kplus.HorizontalPodAutoscaler(this, 'Hpa', {
      metadata: metadata(),
      target: this.deployment,
      minReplicas: props.minReplicas,
      maxReplicas: props.maxReplicas,
      metrics: [
        kplus.Metric.resourceCpu(kplus.MetricTarget.averageUtilization(props.targetCpuUtilization)),
        ...(autoscaling.mode === 'load'
          ? [kplus.Metric.pods({ name: adapterMetricName(props.monitoring, autoscaling.metric), target: kplus.MetricTarget.averageValue(autoscaling.targetPerPod) })]
          : []),
      ],
      scaleUp: props.scaleUp,
      scaleDown: props.scaleDown,
    });
    if (autoscaling.mode !== 'keda') {
      this.horizontalPodAutoscaler = hpa;
    } else {
      // KEDA makes the HPA: it gets the behaviour this one would have had, and this one goes.
      const { behavior } = (ApiObject.of(hpa).toJson() as { spec: { behavior: unknown } }).spec;
      this.node.tryRemoveChild(hpa.node.id);
      const namespace = Chart.of(this).namespace;
      const selector = `job="${name}"${namespace ? `,namespace="${namespace}"` : ''}`;
      const { series, kind } = LOAD_SERIES[autoscaling.metric];
      const query = kind === 'gauge' ? `sum(${series}{${selector}})` : `sum(rate(${series}{${selector}}[1m]))`;
      const gmp = props.monitoring === 'gmp';
      if (gmp) new KedaTriggerAuthentication(this, 'TriggerAuthentication', { metadata: metadata(), podIdentity: 'gcp' });
      this.scaledObject = new KedaScaledObject(this, 'ScaledObject', {
        metadata: metadata(),
        deploymentName: name,
        minReplicas: props.minReplicas,
        maxReplicas: props.maxReplicas,
        behavior,
        triggers: [
          { type: 'cpu', metricType: 'Utilization', metadata: { value: String(props.targetCpuUtilization) } },
          {
            type: 'prometheus',
            metadata: {
              serverAddress: gmp ? `https://monitoring.googleapis.com/v1/projects/${autoscaling.gcpProject}/location/global/prometheus` : autoscaling.prometheusAddress,
              query,
              threshold: String(autoscaling.targetPerPod),
            },
            ...(gmp ? { authenticationRef: name } : {}),
          },
        ],
      });
    }

    const vpa = props.verticalPodAutoscaler;
    if (vpa !== false) {
      this.verticalPodAutoscaler = new VerticalPodAutoscaler(this, 'Vpa', {
        metadata: metadata(),
        target: { apiVersion: 'apps/v1', kind: 'Deployment', name },
        updateMode: vpa.updateMode,
        containerPolicies: [
          {
            containerName: server.name,
            controlledResources: vpa.controlledResources,
            controlledValues: 'RequestsAndLimits',
            minAllowed: vpa.minAllowed,
            maxAllowed: vpa.maxAllowed,
          },
        ],
      });
    }

    if (props.minAvailable !== false) {
      new kplus.k8s.KubePodDisruptionBudget(this, 'Pdb', {
        metadata: metadata(),
        spec: { minAvailable: kplus.k8s.IntOrString.fromNumber(props.minAvailable), selector: { matchLabels: this.selectorLabels } },
      });
    }

    if (props.grafanaDashboard) new GrafanaDashboard(this, 'Dashboard', { name });

    const { monitoring } = props;
    if (props.networkPolicy) {
      new ServerNetworkPolicy(this, 'NetworkPolicy', {
        metadata: metadata(),
        podLabels: this.selectorLabels,
        servingPort: port,
        metricsPort,
        allowedSourceRanges: props.allowedSourceRanges,
        inClusterClients: LOAD_TEST_POD_LABELS,
        monitoringNamespace: monitoringNamespace(props),
        googleApis: props.modelUri !== undefined,
      });
      // With Cluster (the default), a node forwards a client's packets to a pod on another node
      // from its own address, which the policy's source ranges would then refuse; Local keeps
      // the client's address, and the load balancer sends only to nodes with a pod.
      if (props.allowedSourceRanges) ApiObject.of(this.service).addJsonPatch(JsonPatch.add('/spec/externalTrafficPolicy', 'Local'));
    }

    const scrape = [{ port: METRICS_PORT_NAME, path: PATHS.metrics }];
    if (monitoring === 'gmp') {
      new PodMonitoring(this, 'PodMonitoring', { metadata: metadata(), matchLabels: this.selectorLabels, endpoints: scrape });
    } else if (monitoring === 'prometheus-operator') {
      // A ServiceMonitor scrapes a Service's ports: a headless one of its own carries the metrics
      // port, so that the client-facing Service never does.
      const metricsLabels = { ...this.selectorLabels, 'app.kubernetes.io/component': 'metrics' };
      new kplus.Service(this, 'MetricsService', {
        metadata: { name: `${name}-metrics`, labels: { ...labels, ...metricsLabels } },
        type: kplus.ServiceType.CLUSTER_IP,
        clusterIP: 'None',
        selector: kplus.Pods.select(this, 'MetricsPods', { labels: this.selectorLabels }),
        ports: [{ port: metricsPort, targetPort: metricsPort, name: METRICS_PORT_NAME }],
      });
      new ServiceMonitor(this, 'ServiceMonitor', {
        metadata: { name, labels: { ...labels, ...props.serviceMonitorLabels } },
        matchLabels: metricsLabels,
        endpoints: scrape,
      });
    }
  }
}

/** The server's series of each load metric (app/metrics.ts), and its Prometheus type. */
const LOAD_SERIES: Record<LoadMetric, { readonly series: string; readonly kind: 'gauge' | 'counter' }> = {
  'in-flight': { series: `${METRIC_PREFIX}inference_requests_in_flight`, kind: 'gauge' },
  'requests-per-second': { series: `${METRIC_PREFIX}http_requests_total`, kind: 'counter' },
};

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

/** The namespace whose pods scrape the metrics port, if any: the NetworkPolicy admits it. */
function monitoringNamespace(props: ResolvedProps): string | undefined {
  if (props.monitoringNamespace !== undefined) return props.monitoringNamespace;
  if (props.monitoring === 'gmp') return 'gmp-system';
  if (props.monitoring === 'none') return undefined;
  // A Service's in-cluster name: <service>.<namespace>.svc[.cluster.local].
  return /^[a-z0-9-]+\.([a-z0-9-]+)\.svc(?:\.|$)/.exec(new URL(props.autoscaling.prometheusAddress).hostname)?.[1] ?? 'monitoring';
}

/** A namespace's (or any DNS label's) name: lower-case letters, digits and "-", at most 63. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** An IPv4 or IPv6 CIDR block, its prefix within the address' length. */
export function isCidr(range: string): boolean {
  const [address, prefix, ...rest] = range.split('/');
  if (rest.length > 0 || address === undefined || prefix === undefined || !/^\d{1,3}$/.test(prefix)) return false;
  const version = isIP(address);
  return version !== 0 && Number(prefix) <= (version === 4 ? 32 : 128);
}

/** Rejects combinations of props that would deploy something broken, naming the props. */
function validate(props: ResolvedProps): void {
  const { minReplicas: min, maxReplicas: max, targetCpuUtilization: target, serviceType, port } = props;
  const fail = (message: string) => {
    throw new Error(`AnomalyDetector: ${message}`);
  };
  if (!props.image.trim()) fail('image must name a container image');
  if (!Number.isInteger(min) || min < 1) fail(`minReplicas (${min}) must be a whole number of at least 1`);
  if (!Number.isInteger(max) || max < min) fail(`minReplicas (${min}) must not exceed maxReplicas (${max})`);
  if (!Number.isInteger(target) || target < 1 || target > 100) fail(`targetCpuUtilization (${target}) must be a whole percentage from 1 to 100`);
  if (props.nodePort !== undefined) {
    if (serviceType !== kplus.ServiceType.NODE_PORT) fail(`nodePort (${props.nodePort}) needs serviceType NODE_PORT, not ${serviceType}`);
    if (!Number.isInteger(props.nodePort) || props.nodePort < NODE_PORTS.min || props.nodePort > NODE_PORTS.max) {
      fail(`nodePort (${props.nodePort}) must be in the NodePort range ${NODE_PORTS.min}-${NODE_PORTS.max}`);
    }
  }
  for (const [prop, value] of [['port', port], ['metricsPort', props.metricsPort]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 65535) fail(`${prop} (${value}) must be from 1 to 65535`);
  }
  if (props.metricsPort === port) fail(`metricsPort (${props.metricsPort}) must differ from port (${port}): the metrics are kept off the serving port`);
  if ((props.allowedSourceRanges !== undefined || props.internalLoadBalancer) && serviceType !== kplus.ServiceType.LOAD_BALANCER) {
    fail(`allowedSourceRanges and internalLoadBalancer need serviceType LOAD_BALANCER, not ${serviceType}`);
  }
  for (const range of props.allowedSourceRanges ?? []) {
    if (!isCidr(range)) fail(`allowedSourceRanges: ${JSON.stringify(range)} is not a CIDR block such as 203.0.113.0/24 or 2001:db8::/32`);
  }
  if (props.allowedSourceRanges?.length === 0) fail('allowedSourceRanges is empty: leave it out to admit every address');
  const vpa = props.verticalPodAutoscaler;
  if (vpa && vpa.updateMode !== 'Off' && vpa.controlledResources.includes('cpu')) {
    fail(
      `verticalPodAutoscaler.controlledResources includes cpu with updateMode ${vpa.updateMode}, while the HorizontalPodAutoscaler ` +
        'scales on CPU: the two would fight. Let the VPA control memory only, or set its updateMode to Off',
    );
  }
  if (props.minAvailable !== false) {
    if (!Number.isInteger(props.minAvailable) || props.minAvailable < 0) fail(`minAvailable (${props.minAvailable}) must be a whole number`);
    if (props.minAvailable >= min) fail(`minAvailable (${props.minAvailable}) must be below minReplicas (${min}), or no node could ever be drained`);
  }
  const { memoryRequest, memoryLimit, cpuRequest } = props.resources;
  parseQuantity(cpuRequest);
  if (parseQuantity(memoryRequest) > parseQuantity(memoryLimit)) fail(`resources.memoryRequest (${memoryRequest}) is above resources.memoryLimit (${memoryLimit})`);
  if (props.modelUri !== undefined) {
    if (!/^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}(\/.*)?$/.test(props.modelUri)) fail(`modelUri (${props.modelUri}) must be a Cloud Storage folder, gs://bucket/path`);
    if (!props.gcpServiceAccount) fail('modelUri needs gcpServiceAccount: the Google service account (Workload Identity) that may read it');
  }
  if (props.apiKeysSecret !== false && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(props.apiKeysSecret)) {
    fail(`apiKeysSecret (${JSON.stringify(props.apiKeysSecret)}) must be a Secret's name (lower-case letters, digits, "-" and "."), or false to serve without keys`);
  }
  if (props.monitoringNamespace !== undefined) {
    if (props.monitoring === 'none') fail("monitoringNamespace needs monitoring gmp or prometheus-operator: with 'none' nothing scrapes the metrics");
    if (!DNS_LABEL.test(props.monitoringNamespace)) fail(`monitoringNamespace (${JSON.stringify(props.monitoringNamespace)}) must be a namespace's name`);
  }
  if (props.threshold !== undefined && !(props.threshold >= 0)) fail(`threshold (${props.threshold}) must be a number of at least 0`);
  const { autoscaling } = props;
  if (!['cpu', 'load', 'keda'].includes(autoscaling.mode)) fail(`autoscaling.mode (${autoscaling.mode}) must be cpu, load or keda`);
  if (!['in-flight', 'requests-per-second'].includes(autoscaling.metric)) fail(`autoscaling.metric (${autoscaling.metric}) must be in-flight or requests-per-second`);
  if (!(autoscaling.targetPerPod > 0)) fail(`autoscaling.targetPerPod (${autoscaling.targetPerPod}) must be above 0`);
  if (autoscaling.mode !== 'cpu' && props.monitoring === 'none') {
    fail(`autoscaling.mode ${autoscaling.mode} scales on the server's metrics, which monitoring 'none' does not collect: use monitoring gmp or prometheus-operator`);
  }
  if (autoscaling.mode === 'keda' && props.monitoring === 'gmp' && !/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/.test(autoscaling.gcpProject ?? '')) {
    fail(`autoscaling.mode keda with monitoring gmp needs autoscaling.gcpProject, the project ID whose Managed Prometheus KEDA queries (got ${JSON.stringify(autoscaling.gcpProject)})`);
  }
}

/**
 * Checks the server settings the ConfigMap carries with the server's own rules (app/config.ts), so
 * that a combination the server would refuse at start (a drain the deadline cuts short, say) fails
 * at synth time instead, naming the variables.
 */
function checkServerSettings(settings: Readonly<Record<string, string>>): void {
  try {
    loadConfig(settings);
  } catch (error) {
    if (error instanceof ConfigError) throw new Error(`AnomalyDetector: the server would refuse these settings: ${error.message}`, { cause: error });
    throw error;
  }
}

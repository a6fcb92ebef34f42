import { createHash } from 'node:crypto';
import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { CONTAINER_USER, DEFAULT_MODEL_NAME, DEFAULT_MODEL_PATH, DEFAULT_PORT, ENV, PATHS } from '../app/contract.ts';
import { GrafanaDashboard } from './grafana-dashboard.ts';
import { PodMonitoring } from './pod-monitoring.ts';
import { restrictPods } from './pod-security.ts';
import { ServiceMonitor } from './service-monitor.ts';
import { parseQuantity, VerticalPodAutoscaler, type ResourceQuantities, type VpaResource, type VpaUpdateMode } from './vertical-pod-autoscaler.ts';

export type Monitoring = 'gmp' | 'prometheus-operator' | 'none';

export interface AnomalyDetectorResources {
  /** CPU request; the HPA's utilisation is a percentage of it. @default '500m' */
  readonly cpuRequest?: string;
  /** @default '256Mi' */
  readonly memoryRequest?: string;
  /** @default '1Gi' */
  readonly memoryLimit?: string;
}

export interface AnomalyDetectorVpaOptions {
  /** @default 'Off' (recommendations only) */
  readonly updateMode?: VpaUpdateMode;
  /** Resources the VPA may set; never the one the HPA scales on. @default ['memory'] */
  readonly controlledResources?: readonly VpaResource[];
  /** @default no bound */
  readonly minAllowed?: ResourceQuantities;
  /** @default no bound */
  readonly maxAllowed?: ResourceQuantities;
}

export interface AnomalyDetectorProps {
  /** The server image, e.g. `europe-west1-docker.pkg.dev/project/repo/anomaly-serve:abc123`. */
  readonly image: string;
  /** Prefix of every object's name. @default 'anomaly-serve' */
  readonly name?: string;
  /** @default 'Always' (cdk8s-plus) */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
  /** The model's name in the URLs. @default 'ecg-autoencoder' */
  readonly modelName?: string;
  /** Where the server reads the model. @default 'model/artifacts' (in the image), or '/models' with `modelUri` */
  readonly modelPath?: string;
  /** A `gs://` folder with model.json, weights.bin and metadata.json, copied in by an init container. @default the model in the image */
  readonly modelUri?: string;
  /** The Google service account the pods act as (Workload Identity), to read `modelUri`. @default none; required with `modelUri` */
  readonly gcpServiceAccount?: string;
  /** The image that copies `modelUri`. @default 'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim' */
  readonly modelCopyImage?: string;
  /** Overrides the model's anomaly threshold. @default the threshold in metadata.json */
  readonly threshold?: number;
  /** @default 8080 */
  readonly port?: number;
  /** @default LOAD_BALANCER */
  readonly serviceType?: kplus.ServiceType;
  /** With NODE_PORT: the port on every node, 30000-32767. @default assigned by Kubernetes */
  readonly nodePort?: number;
  /** @default 2 */
  readonly minReplicas?: number;
  /** @default 10 */
  readonly maxReplicas?: number;
  /** Average CPU utilisation, in percent of the request, that the HPA keeps. @default 60 */
  readonly targetCpuUtilization?: number;
  /** @default double, or add 4 pods, every 15 s, whichever is more, with no stabilisation */
  readonly scaleUp?: kplus.ScalingRules;
  /** @default at most half the pods a minute, after 300 s of stabilisation */
  readonly scaleDown?: kplus.ScalingRules;
  /** @default see AnomalyDetectorResources */
  readonly resources?: AnomalyDetectorResources;
  /** The VerticalPodAutoscaler, or false for none (clusters without the VPA). @default see AnomalyDetectorVpaOptions */
  readonly verticalPodAutoscaler?: AnomalyDetectorVpaOptions | false;
  /** Pods the PodDisruptionBudget keeps up during voluntary disruptions, or false for none. @default 1 */
  readonly minAvailable?: number | false;
  /** @default 'gmp' (Google Cloud Managed Service for Prometheus) */
  readonly monitoring?: Monitoring;
  /** Labels of the ServiceMonitor, for the Prometheus' selector. @default { release: 'kube-prometheus-stack' } */
  readonly serviceMonitorLabels?: Record<string, string>;
  /** Server settings: MAX_BATCH_SIZE. @default 64 */
  readonly maxBatchSize?: number;
  /** @default 'info' */
  readonly logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** How long a terminating pod keeps serving while endpoints update. @default 5 */
  readonly shutdownDelaySeconds?: number;
  /** From SIGTERM to a forced exit; the grace period is 5 s longer. @default 25 */
  readonly shutdownTimeoutSeconds?: number;
  /** Soft spread of the pods over zones and nodes. @default true */
  readonly topologySpread?: boolean;
  /** A Grafana dashboard in a ConfigMap for kube-prometheus-stack's dashboard sidecar. @default false */
  readonly grafanaDashboard?: boolean;
}

const NODE_PORTS = { min: 30000, max: 32767 };
const PORT_NAME = 'http';

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
  readonly horizontalPodAutoscaler: kplus.HorizontalPodAutoscaler;
  readonly verticalPodAutoscaler?: VerticalPodAutoscaler;

  constructor(scope: Construct, id: string, props: AnomalyDetectorProps) {
    super(scope, id);
    validate(props);
    const name = (this.name = props.name ?? 'anomaly-serve');
    const port = props.port ?? DEFAULT_PORT;
    const modelPath = props.modelPath ?? (props.modelUri ? '/models' : DEFAULT_MODEL_PATH);
    this.selectorLabels = { 'app.kubernetes.io/name': 'anomaly-serve', 'app.kubernetes.io/instance': name };
    const labels = { ...this.selectorLabels, 'app.kubernetes.io/component': 'inference', 'app.kubernetes.io/managed-by': 'cdk8s' };
    const metadata = (suffix = '') => ({ name: name + suffix, labels });
    const shutdownTimeoutSeconds = props.shutdownTimeoutSeconds ?? 25;

    const settings: Record<string, string> = {
      [ENV.port]: String(port),
      [ENV.modelName]: props.modelName ?? DEFAULT_MODEL_NAME,
      [ENV.modelPath]: modelPath,
      [ENV.maxBatchSize]: String(props.maxBatchSize ?? 64),
      [ENV.logLevel]: props.logLevel ?? 'info',
      [ENV.shutdownDelaySeconds]: String(props.shutdownDelaySeconds ?? 5),
      [ENV.shutdownTimeoutSeconds]: String(shutdownTimeoutSeconds),
      ...(props.threshold !== undefined && { [ENV.threshold]: String(props.threshold) }),
    };
    this.configMap = new kplus.ConfigMap(this, 'Config', { metadata: metadata('-config'), data: settings });

    const serviceAccount = props.gcpServiceAccount
      ? new kplus.ServiceAccount(this, 'ServiceAccount', {
          metadata: { ...metadata(), annotations: { 'iam.gke.io/gcp-service-account': props.gcpServiceAccount } },
          automountToken: false,
        })
      : undefined;

    const resources = props.resources ?? {};
    const memoryRequest = resources.memoryRequest ?? '256Mi';
    const memoryLimit = resources.memoryLimit ?? '1Gi';
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
      terminationGracePeriod: Duration.seconds(shutdownTimeoutSeconds + 5),
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
      ports: [{ number: port, name: PORT_NAME }],
      envFrom: [kplus.Env.fromConfigMap(this.configMap)],
      readiness: probe(PATHS.ready, 2),
      liveness: probe(PATHS.live, 3),
      startup: probe(PATHS.live, 30),
      resources: {
        cpu: { request: kplus.Cpu.millis(parseQuantity(resources.cpuRequest ?? '500m') * 1000) },
        memory: { request: Size.mebibytes(parseQuantity(memoryRequest) / 2 ** 20), limit: Size.mebibytes(parseQuantity(memoryLimit) / 2 ** 20) },
      },
      securityContext,
    });
    server.mount('/tmp', tmp);

    if (props.modelUri) {
      const model = kplus.Volume.fromEmptyDir(this, 'ModelVolume', 'model');
      server.mount(modelPath, model, { readOnly: true });
      this.deployment.addInitContainer({
        name: 'copy-model',
        image: props.modelCopyImage ?? 'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim',
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
    if (props.topologySpread ?? true) {
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
      metadata: metadata(),
      type: props.serviceType ?? kplus.ServiceType.LOAD_BALANCER,
      // The Deployment's own stable labels (given a Deployment, cdk8s-plus selects on its path label).
      selector: kplus.Pods.select(this, 'Pods', { labels: this.selectorLabels }),
      ports: [{ port: 80, targetPort: port, name: PORT_NAME, nodePort: props.nodePort }],
    });

    this.horizontalPodAutoscaler = new kplus.HorizontalPodAutoscaler(this, 'Hpa', {
      metadata: metadata(),
      target: this.deployment,
      minReplicas: props.minReplicas ?? 2,
      maxReplicas: props.maxReplicas ?? 10,
      metrics: [kplus.Metric.resourceCpu(kplus.MetricTarget.averageUtilization(props.targetCpuUtilization ?? 60))],
      scaleUp: props.scaleUp ?? {
        stabilizationWindow: Duration.seconds(0),
        strategy: kplus.ScalingStrategy.MAX_CHANGE,
        policies: [
          { replicas: kplus.Replicas.percent(100), duration: Duration.seconds(15) },
          { replicas: kplus.Replicas.absolute(4), duration: Duration.seconds(15) },
        ],
      },
      scaleDown: props.scaleDown ?? {
        stabilizationWindow: Duration.seconds(300),
        policies: [{ replicas: kplus.Replicas.percent(50), duration: Duration.seconds(60) }],
      },
    });

    if (props.verticalPodAutoscaler !== false) {
      const vpa = props.verticalPodAutoscaler ?? {};
      this.verticalPodAutoscaler = new VerticalPodAutoscaler(this, 'Vpa', {
        metadata: metadata(),
        target: { apiVersion: 'apps/v1', kind: 'Deployment', name },
        updateMode: vpa.updateMode ?? 'Off',
        containerPolicies: [
          {
            containerName: server.name,
            controlledResources: vpa.controlledResources ?? ['memory'],
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
        spec: { minAvailable: kplus.k8s.IntOrString.fromNumber(props.minAvailable ?? 1), selector: { matchLabels: this.selectorLabels } },
      });
    }

    if (props.grafanaDashboard) new GrafanaDashboard(this, 'Dashboard', { name });

    const monitoring = props.monitoring ?? 'gmp';
    if (monitoring === 'gmp') {
      new PodMonitoring(this, 'PodMonitoring', { metadata: metadata(), matchLabels: this.selectorLabels, endpoints: [{ port: PORT_NAME, path: PATHS.metrics }] });
    } else if (monitoring === 'prometheus-operator') {
      new ServiceMonitor(this, 'ServiceMonitor', {
        metadata: { name, labels: { ...labels, ...(props.serviceMonitorLabels ?? { release: 'kube-prometheus-stack' }) } },
        matchLabels: this.selectorLabels,
        endpoints: [{ port: PORT_NAME, path: PATHS.metrics }],
      });
    }
  }
}

/** Rejects combinations of props that would deploy something broken, naming the props. */
function validate(props: AnomalyDetectorProps): void {
  const min = props.minReplicas ?? 2;
  const max = props.maxReplicas ?? 10;
  const fail = (message: string) => {
    throw new Error(`AnomalyDetector: ${message}`);
  };
  if (!props.image.trim()) fail('image must name a container image');
  if (!Number.isInteger(min) || min < 1) fail(`minReplicas (${min}) must be a whole number of at least 1`);
  if (!Number.isInteger(max) || max < min) fail(`minReplicas (${min}) must not exceed maxReplicas (${max})`);
  const target = props.targetCpuUtilization ?? 60;
  if (!Number.isInteger(target) || target < 1 || target > 100) fail(`targetCpuUtilization (${target}) must be a whole percentage from 1 to 100`);
  const serviceType = props.serviceType ?? kplus.ServiceType.LOAD_BALANCER;
  if (props.nodePort !== undefined) {
    if (serviceType !== kplus.ServiceType.NODE_PORT) fail(`nodePort (${props.nodePort}) needs serviceType NODE_PORT, not ${serviceType}`);
    if (!Number.isInteger(props.nodePort) || props.nodePort < NODE_PORTS.min || props.nodePort > NODE_PORTS.max) {
      fail(`nodePort (${props.nodePort}) must be in the NodePort range ${NODE_PORTS.min}-${NODE_PORTS.max}`);
    }
  }
  const port = props.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`port (${port}) must be from 1 to 65535`);
  const vpa = props.verticalPodAutoscaler;
  if (vpa && (vpa.updateMode ?? 'Off') !== 'Off' && (vpa.controlledResources ?? ['memory']).includes('cpu')) {
    fail(
      `verticalPodAutoscaler.controlledResources includes cpu with updateMode ${vpa.updateMode}, while the HorizontalPodAutoscaler ` +
        'scales on CPU: the two would fight. Let the VPA control memory only, or set its updateMode to Off',
    );
  }
  if (props.minAvailable !== false && props.minAvailable !== undefined) {
    if (!Number.isInteger(props.minAvailable) || props.minAvailable < 0) fail(`minAvailable (${props.minAvailable}) must be a whole number`);
    if (props.minAvailable >= min) fail(`minAvailable (${props.minAvailable}) must be below minReplicas (${min}), or no node could ever be drained`);
  }
  const { memoryRequest = '256Mi', memoryLimit = '1Gi', cpuRequest = '500m' } = props.resources ?? {};
  parseQuantity(cpuRequest);
  if (parseQuantity(memoryRequest) > parseQuantity(memoryLimit)) fail(`resources.memoryRequest (${memoryRequest}) is above resources.memoryLimit (${memoryLimit})`);
  if (props.modelUri !== undefined) {
    if (!/^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}(\/.*)?$/.test(props.modelUri)) fail(`modelUri (${props.modelUri}) must be a Cloud Storage folder, gs://bucket/path`);
    if (!props.gcpServiceAccount) fail('modelUri needs gcpServiceAccount: the Google service account (Workload Identity) that may read it');
  }
  if (props.threshold !== undefined && !(props.threshold >= 0)) fail(`threshold (${props.threshold}) must be a number of at least 0`);
  const delay = props.shutdownDelaySeconds ?? 5;
  const timeout = props.shutdownTimeoutSeconds ?? 25;
  if (timeout <= delay) fail(`shutdownTimeoutSeconds (${timeout}) must be longer than shutdownDelaySeconds (${delay})`);
}

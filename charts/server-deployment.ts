import { createHash } from 'node:crypto';
import { ApiObject, Duration, JsonPatch, Size, type ApiObjectMetadata } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import { CONTAINER_USER, PATHS } from '../app/contract.ts';
import type { Config } from '../app/settings.ts';
import { FORCED_EXIT_GRACE_MS } from '../app/shutdown-signals.ts';
import { API_KEYS, apiKeysVolume } from './api-keys-volume.ts';
import { GCS_FOLDER, isContainerPort, parseQuantity } from './k8s-values.ts';
import { restrictedContainer, restrictPods } from './pod-security.ts';
import { PropsError } from './props-error.ts';

/** The names of the server container's ports, which the Services and the scrape configs use. */
export const PORT_NAMES = { serving: 'http', metrics: 'metrics' } as const;

/** Where the init container puts a `modelUri` model, and so the server's MODEL_PATH then. */
export const MODEL_URI_PATH = '/models';

/** Seconds between the server's own forced exit (a drain that hung) and the kubelet's SIGKILL. */
const TERMINATION_MARGIN_SECONDS = 3;

export interface ServerResources {
  /** CPU request; the HPA's utilisation is a percentage of it. @default '500m' */
  readonly cpuRequest?: string;
  /** Memory request. @default '256Mi' */
  readonly memoryRequest?: string;
  /** Memory limit: past it the container is killed. @default '1Gi' */
  readonly memoryLimit?: string;
}

/** What a user chooses of the server's pods (the AnomalyDetector's props include these). */
export interface ServerDeploymentOptions {
  /** The server image, e.g. `europe-west1-docker.pkg.dev/project/repo/anomaly-serve:abc123`. */
  readonly image: string;
  /** When the kubelet pulls the image: IF_NOT_PRESENT for an image built into minikube. @default 'Always' (cdk8s-plus) */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
  /** A `gs://` folder with model.json, weights.bin and metadata.json, copied in by an init container. @default the model in the image */
  readonly modelUri?: string;
  /** The image that copies `modelUri`. @default 'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim' */
  readonly modelCopyImage?: string;
  /** The server container's resources. @default each field's */
  readonly resources?: ServerResources;
  /** Soft spread of the pods over zones and nodes. @default true */
  readonly topologySpread?: boolean;
}

export interface ServerDeploymentProps extends ServerDeploymentOptions {
  readonly metadata: ApiObjectMetadata;
  /** The stable labels the Deployment selects its pods by. */
  readonly selectorLabels: Record<string, string>;
  /** The server's settings: the ConfigMap that carries them, and their values (ports, model path, drain). */
  readonly config: { readonly configMap: kplus.ConfigMap; readonly settings: Config };
  /** The service account the pods act as. @default none, and no token mounted either way */
  readonly serviceAccount?: kplus.IServiceAccount;
  /** The Secret of the API keys, mounted where the settings' API_KEYS_FILE reads it. @default none: the API is open */
  readonly apiKeysSecret?: string;
}

/**
 * The server's Deployment: one locked-down container with its probes, /tmp, the API keys and, with
 * `modelUri`, an init container that copies the model in. Its replicas are the autoscaler's.
 */
export class ServerDeployment extends kplus.Deployment {
  /** The server container. */
  readonly server: kplus.Container;

  constructor(scope: Construct, id: string, props: ServerDeploymentProps) {
    const { settings, configMap } = props.config;
    const resources = { cpuRequest: '500m', memoryRequest: '256Mi', memoryLimit: '1Gi', ...props.resources };
    if (parseQuantity(resources.memoryRequest) > parseQuantity(resources.memoryLimit)) {
      throw new PropsError('ServerDeployment', `resources.memoryRequest (${resources.memoryRequest}) is above resources.memoryLimit (${resources.memoryLimit})`);
    }
    if (!props.image.trim()) throw new PropsError('ServerDeployment', 'image must name a container image');
    // The server takes 0 (any free port); a container port cannot.
    for (const [key, port] of [['port', settings.port], ['metricsPort', settings.metricsPort]] as const) {
      if (!isContainerPort(port)) throw new PropsError('ServerDeployment', `server.${key} (${port}) must be from 1 to 65535`);
    }
    if (props.modelUri !== undefined && !GCS_FOLDER.test(props.modelUri)) {
      throw new PropsError('ServerDeployment', `modelUri (${props.modelUri}) must be a Cloud Storage folder, gs://bucket/path`);
    }
    super(scope, id, {
      metadata: props.metadata,
      // An explicit selector of stable labels, not cdk8s's path-derived one: renaming a construct
      // must not orphan the Deployment's pods.
      select: false,
      podMetadata: {
        labels: props.metadata.labels,
        // A new hash when the settings change, so editing the ConfigMap rolls the pods.
        annotations: { 'anomaly-serve/config-hash': createHash('sha256').update(JSON.stringify(configMap.data)).digest('hex').slice(0, 16) },
      },
      serviceAccount: props.serviceAccount,
      automountServiceAccountToken: false,
      securityContext: { ensureNonRoot: true, user: CONTAINER_USER, group: CONTAINER_USER, fsGroup: CONTAINER_USER },
      // The whole drain, the server's own forced exit after it, and a margin before the SIGKILL.
      terminationGracePeriod: Duration.seconds(settings.shutdownTimeoutSeconds + FORCED_EXIT_GRACE_MS / 1000 + TERMINATION_MARGIN_SECONDS),
      strategy: kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.percent(25), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
    });
    this.select(kplus.LabelSelector.of({ labels: props.selectorLabels }));

    const { port } = settings;
    const probe = (path: string, failureThreshold: number) =>
      kplus.Probe.fromHttpGet(path, { port, periodSeconds: Duration.seconds(5), timeoutSeconds: Duration.seconds(2), failureThreshold });
    const tmp = kplus.Volume.fromEmptyDir(this, 'TmpVolume', 'tmp');
    this.server = this.addContainer({
      name: 'server',
      image: props.image,
      imagePullPolicy: props.imagePullPolicy,
      ports: [
        { number: port, name: PORT_NAMES.serving },
        { number: settings.metricsPort, name: PORT_NAMES.metrics },
      ],
      envFrom: [kplus.Env.fromConfigMap(configMap)],
      readiness: probe(PATHS.ready, 2),
      liveness: probe(PATHS.live, 3),
      startup: probe(PATHS.live, 30),
      resources: {
        cpu: { request: kplus.Cpu.millis(parseQuantity(resources.cpuRequest) * 1000) },
        memory: { request: Size.mebibytes(parseQuantity(resources.memoryRequest) / 2 ** 20), limit: Size.mebibytes(parseQuantity(resources.memoryLimit) / 2 ** 20) },
      },
      securityContext: restrictedContainer(CONTAINER_USER),
    });
    this.server.mount('/tmp', tmp);
    if (props.apiKeysSecret !== undefined) this.server.mount(API_KEYS.mountPath, apiKeysVolume(this, props.apiKeysSecret), { readOnly: true });

    if (props.modelUri) this.copyModelIn(props.modelUri, props.modelCopyImage ?? 'gcr.io/google.com/cloudsdktool/google-cloud-cli:slim', settings.modelPath, tmp);

    restrictPods(this);
    if (props.topologySpread ?? true) spreadSoftly(this, props.selectorLabels);
  }

  /** An init container that copies the model folder at `modelUri` to where the server reads it. */
  private copyModelIn(modelUri: string, image: string, modelPath: string, tmp: kplus.Volume): void {
    const model = kplus.Volume.fromEmptyDir(this, 'ModelVolume', 'model');
    this.server.mount(modelPath, model, { readOnly: true });
    this.addInitContainer({
      name: 'copy-model',
      image,
      command: ['gcloud', 'storage', 'cp', '--recursive', `${modelUri.replace(/\/$/, '')}/*`, modelPath],
      // gcloud writes its configuration under $CLOUDSDK_CONFIG; the root filesystem is read-only.
      envVariables: { CLOUDSDK_CONFIG: kplus.EnvValue.fromValue('/tmp/gcloud') },
      volumeMounts: [
        { path: modelPath, volume: model },
        { path: '/tmp', volume: tmp },
      ],
      resources: { cpu: { request: kplus.Cpu.millis(100) }, memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) } },
      securityContext: restrictedContainer(CONTAINER_USER),
    });
  }
}

/** A soft spread over zones and nodes: cdk8s-plus's spread() is a hard pod anti-affinity. */
function spreadSoftly(deployment: kplus.Deployment, selectorLabels: Record<string, string>): void {
  ApiObject.of(deployment).addJsonPatch(
    JsonPatch.add(
      '/spec/template/spec/topologySpreadConstraints',
      ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
        maxSkew: 1,
        topologyKey,
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: selectorLabels },
      })),
    ),
  );
}

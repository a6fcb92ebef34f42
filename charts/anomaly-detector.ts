import { fileURLToPath } from 'node:url';
import type { ApiObjectMetadata } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ConfigError, DEFAULTS, environmentOf, loadConfig, type Config } from '../app/settings.ts';
import { BUNDLED_MODEL_DIR, readMetadata } from '../model/artifact.ts';
import { API_KEYS } from './api-keys-volume.ts';
import { GrafanaDashboard } from './grafana-dashboard.ts';
import { DNS_SUBDOMAIN, GCP_SERVICE_ACCOUNT } from './k8s-values.ts';
import { LOAD_TEST_POD_LABELS } from './load-test.ts';
import { ServerAutoscaler, type ServerAutoscalerOptions } from './server-autoscaler.ts';
import { MODEL_URI_PATH, ServerDeployment, type ServerDeploymentOptions } from './server-deployment.ts';
import { monitoringNamespace, ServerMonitoring, type ServerMonitoringOptions } from './server-monitoring.ts';
import { ServerNetworkPolicy } from './server-network-policy.ts';
import { ServerService, type ServerServiceOptions } from './server-service.ts';
import { GOOGLE_LOAD_BALANCER_RANGES, ServerGateway, type ServerGatewayOptions } from './server-gateway.ts';
import { ServerCanary, type CanaryOptions, type ServerCanaryProps } from './server-canary.ts';
import { VerticalPodAutoscaler, type ResourceQuantities, type VpaResource, type VpaUpdateMode } from './vertical-pod-autoscaler.ts';
import { PropsError } from './props-error.ts';

/** The server's settings a chart may set: all but the address (every interface, in a pod) and the keys file (apiKeysSecret's). */
export type ServerSettings = Partial<Omit<Config, 'host' | 'apiKeysFile'>>;

export interface AnomalyDetectorVpaOptions {
  /** When the VPA applies its recommendations. @default 'Off': recommendations only */
  readonly updateMode?: VpaUpdateMode;
  /** Resources the VPA may set; never the one the HPA scales on. @default ['memory'] */
  readonly controlledResources?: readonly VpaResource[];
  /** Lower bounds of its recommendations. @default no bound */
  readonly minAllowed?: ResourceQuantities;
  /** Upper bounds of its recommendations. @default no bound */
  readonly maxAllowed?: ResourceQuantities;
}

export interface AnomalyDetectorProps extends ServerDeploymentOptions, ServerServiceOptions, ServerGatewayOptions, ServerAutoscalerOptions, ServerMonitoringOptions {
  /**
   * A second model served beside this one, `weight` percent of the requests, behind the Gateway of
   * `domain` (its own Deployment, Service, autoscaler, NetworkPolicy and scrape job). @default none
   */
  readonly canary?: CanaryOptions;
  /** Prefix of every object's name. @default 'anomaly-serve' */
  readonly name?: string;
  /**
   * The server's settings (docs/configuration.md), written to its ConfigMap and refused here as the
   * server would refuse them. PORT, METRICS_PORT, MODEL_NAME, MODEL_PATH, MAX_BATCH_SIZE,
   * LOG_LEVEL and the shutdown timing are always written, to be seen in the cluster.
   * @default the server's, but MODEL_NAME the bundled model's name (none with `modelUri`: the server reads that model's) and MODEL_PATH '/models' with `modelUri`
   */
  readonly server?: ServerSettings;
  /** The Google service account the pods act as (Workload Identity), to read `modelUri`. @default none; required with `modelUri` */
  readonly gcpServiceAccount?: string;
  /** The VerticalPodAutoscaler, or false for none (clusters without the VPA). @default memory only, recommendations only */
  readonly verticalPodAutoscaler?: AnomalyDetectorVpaOptions | false;
  /** Pods the PodDisruptionBudget keeps up during voluntary disruptions, or false for none. @default 1 */
  readonly minAvailable?: number | false;
  /** A Grafana dashboard in a ConfigMap for kube-prometheus-stack's dashboard sidecar. @default false */
  readonly grafanaDashboard?: boolean;
  /**
   * The Secret whose `keys` entry lists the API keys, one a line, mounted read-only: every request
   * but the health probes and the page must carry one. You create it (the chart holds no secret);
   * the pods wait for it. `false` serves the API to anyone who reaches it.
   * @default `${name}-api-keys`
   */
  readonly apiKeysSecret?: string | false;
  /**
   * A NetworkPolicy of the pods: in, the serving port from `allowedSourceRanges` (or anywhere; with
   * `domain`, from Google's load balancers only) and from a LoadTest in the namespace, the metrics port from `monitoringNamespace`; out, DNS, and
   * Google APIs with `modelUri`. Needs a cluster that enforces NetworkPolicy (GKE Dataplane V2).
   * @default true
   */
  readonly networkPolicy?: boolean;
}

/** The settings the ConfigMap always states, so that `kubectl describe` shows them. */
const STATED_SETTINGS = ['port', 'metricsPort', 'modelPath', 'maxBatchSize', 'logLevel', 'shutdownDelaySeconds', 'shutdownTimeoutSeconds'] as const;

/** The bundled model, as the image holds it: the default model the charts name. */
const BUNDLED_MODEL = readMetadata(fileURLToPath(new URL(`../${BUNDLED_MODEL_DIR}`, import.meta.url)));

/**
 * The anomaly-detection service: a ConfigMap of the server's settings, the server's Deployment, the
 * Service clients call, its autoscalers (horizontal, vertical), a PodDisruptionBudget, a
 * NetworkPolicy and the scrape config of its metrics. Every object has a stable name.
 */
export class AnomalyDetector extends Construct {
  readonly name: string;
  readonly selectorLabels: Record<string, string>;
  readonly configMap: kplus.ConfigMap;
  readonly deployment: ServerDeployment;
  readonly service: ServerService;
  /** The HTTPS front door, with `domain`. */
  readonly gateway?: ServerGateway;
  /** The canary, with `canary`. */
  readonly canary?: ServerCanary;
  readonly autoscaler: ServerAutoscaler;
  readonly verticalPodAutoscaler?: VerticalPodAutoscaler;
  /** The Secret of the API keys the pods read; none when the API is open. */
  readonly apiKeysSecret?: string;

  constructor(scope: Construct, id: string, props: AnomalyDetectorProps) {
    super(scope, id);
    const name = props.name ?? 'anomaly-serve';
    this.name = name;
    this.selectorLabels = { 'app.kubernetes.io/name': 'anomaly-serve', 'app.kubernetes.io/instance': name };
    const labels = { ...this.selectorLabels, 'app.kubernetes.io/component': 'inference', 'app.kubernetes.io/managed-by': 'cdk8s' };
    const metadata = (suffix = '') => ({ name: name + suffix, labels });
    const apiKeysSecret = props.apiKeysSecret ?? `${name}-api-keys`;
    validate(props, apiKeysSecret);
    if (apiKeysSecret !== false) this.apiKeysSecret = apiKeysSecret;

    const environment = serverEnvironment(props, apiKeysSecret !== false);
    this.configMap = new kplus.ConfigMap(this, 'Config', { metadata: metadata('-config'), data: environment });
    const settings = loadConfig(environment);

    const serviceAccount = props.gcpServiceAccount
      ? new kplus.ServiceAccount(this, 'ServiceAccount', {
          metadata: { ...metadata(), annotations: { 'iam.gke.io/gcp-service-account': props.gcpServiceAccount } },
          automountToken: false,
        })
      : undefined;

    this.deployment = new ServerDeployment(this, 'Deployment', {
      ...props,
      metadata: metadata(),
      selectorLabels: this.selectorLabels,
      config: { configMap: this.configMap, settings },
      serviceAccount,
      apiKeysSecret: this.apiKeysSecret,
    });
    const networkPolicy = props.networkPolicy ?? true;
    this.service = new ServerService(this, 'Service', {
      ...props,
      // Behind a Gateway, the load balancer reaches the pods through the Service's NEGs: no layer-4 one of its own.
      serviceType: props.serviceType ?? (props.domain === undefined ? undefined : kplus.ServiceType.CLUSTER_IP),
      metadata: metadata(),
      selectorLabels: this.selectorLabels,
      servingPort: settings.port,
      // The NetworkPolicy admits the source ranges by the clients' own addresses.
      keepClientAddresses: networkPolicy && props.allowedSourceRanges !== undefined,
    });
    const canaryName = `${name}-canary`;
    if (props.domain !== undefined) {
      this.gateway = new ServerGateway(this, 'Gateway', {
        ...props,
        domain: props.domain,
        metadata: metadata(),
        services: [
          { name: this.service.name, port: 80, weight: 100 - (props.canary?.weight ?? 0) },
          ...(props.canary ? [{ name: canaryName, port: 80, weight: props.canary.weight }] : []),
        ],
        servingPort: settings.port,
      });
    }
    const monitoring = props.monitoring ?? 'gmp';
    this.autoscaler = new ServerAutoscaler(this, 'Autoscaler', { ...props, metadata: metadata(), deployment: this.deployment, monitoring });

    if (props.verticalPodAutoscaler !== false) this.verticalPodAutoscaler = this.memoryAutoscaler(props.verticalPodAutoscaler ?? {}, metadata());

    const minAvailable = props.minAvailable ?? 1;
    if (minAvailable !== false) {
      const { minReplicas } = this.autoscaler;
      if (!Number.isInteger(minAvailable) || minAvailable < 0) throw new PropsError('AnomalyDetector', `minAvailable (${minAvailable}) must be a whole number`);
      if (minAvailable >= minReplicas) throw new PropsError('AnomalyDetector', `minAvailable (${minAvailable}) must be below minReplicas (${minReplicas}), or no node could ever be drained`);
      new kplus.k8s.KubePodDisruptionBudget(this, 'Pdb', {
        metadata: metadata(),
        spec: { minAvailable: kplus.k8s.IntOrString.fromNumber(minAvailable), selector: { matchLabels: this.selectorLabels } },
      });
    }

    if (props.grafanaDashboard) new GrafanaDashboard(this, 'Dashboard', { name });

    const policy = networkPolicy
      ? {
          servingPort: settings.port,
          metricsPort: settings.metricsPort,
          // Behind a Gateway, what connects is Google's proxies and health checks, never a client.
          allowedSourceRanges: props.domain === undefined ? props.allowedSourceRanges : GOOGLE_LOAD_BALANCER_RANGES,
          inClusterClients: LOAD_TEST_POD_LABELS,
          monitoringNamespace: monitoringNamespace(props, this.autoscaler.prometheusAddress),
          googleApis: props.modelUri !== undefined,
        }
      : undefined;
    if (policy) new ServerNetworkPolicy(this, 'NetworkPolicy', { ...policy, metadata: metadata(), podLabels: this.selectorLabels });
    new ServerMonitoring(this, 'Monitoring', { ...props, name, labels, selectorLabels: this.selectorLabels, metricsPort: settings.metricsPort });
    if (props.canary) this.canary = this.canaryBeside(props, props.canary, { name: canaryName, labels, policy, serviceAccount });
  }

  /** The canary beside the stable server: its pods another instance of it, its model from Cloud Storage. */
  private canaryBeside(
    props: AnomalyDetectorProps,
    canary: CanaryOptions,
    shared: { name: string; labels: Record<string, string>; policy: ServerCanaryProps['networkPolicy']; serviceAccount?: kplus.IServiceAccount },
  ): ServerCanary {
    const selectorLabels = { ...this.selectorLabels, 'app.kubernetes.io/instance': shared.name };
    return new ServerCanary(this, 'Canary', {
      canary,
      name: shared.name,
      labels: { ...shared.labels, ...selectorLabels },
      selectorLabels,
      // The stable model's name, so that the same URLs reach both (a stable model from Cloud Storage names itself: the canary's must match).
      environment: serverEnvironment({ ...props, modelUri: canary.modelUri, server: { modelName: props.modelUri ? undefined : BUNDLED_MODEL.name, ...props.server } }, this.apiKeysSecret !== undefined),
      deployment: { ...props, serviceAccount: shared.serviceAccount, apiKeysSecret: this.apiKeysSecret },
      autoscaling: props,
      networkPolicy: shared.policy && { ...shared.policy, googleApis: true },
      monitoring: props,
    });
  }

  /** The VerticalPodAutoscaler, which must never act on the CPU the HPA scales on. */
  private memoryAutoscaler(options: AnomalyDetectorVpaOptions, metadata: ApiObjectMetadata): VerticalPodAutoscaler {
    const vpa = new VerticalPodAutoscaler(this, 'Vpa', {
      metadata,
      target: { apiVersion: 'apps/v1', kind: 'Deployment', name: this.name },
      updateMode: options.updateMode ?? 'Off',
      containerPolicies: [
        {
          containerName: this.deployment.server.name,
          controlledResources: options.controlledResources ?? ['memory'],
          controlledValues: 'RequestsAndLimits',
          minAllowed: options.minAllowed,
          maxAllowed: options.maxAllowed,
        },
      ],
    });
    if (vpa.acts('cpu')) {
      throw new PropsError(
        'AnomalyDetector',
        `verticalPodAutoscaler.controlledResources includes cpu with updateMode ${vpa.updateMode}, while the HorizontalPodAutoscaler ` +
          'scales on CPU: the two would fight. Let the VPA control memory only, or set its updateMode to Off',
      );
    }
    return vpa;
  }
}

/** Rejects props the parts cannot check alone, naming them. */
function validate(props: AnomalyDetectorProps, apiKeysSecret: string | false): void {
  const fail = (message: string) => {
    throw new PropsError('AnomalyDetector', message);
  };
  if (apiKeysSecret !== false && !DNS_SUBDOMAIN.test(apiKeysSecret)) {
    fail(`apiKeysSecret (${JSON.stringify(apiKeysSecret)}) must be a Secret's name (lower-case letters, digits, "-" and "."), or false to serve without keys`);
  }
  if (props.domain !== undefined) {
    if (props.serviceType !== undefined && props.serviceType !== kplus.ServiceType.CLUSTER_IP) {
      fail(`domain puts a Gateway in front: serviceType must be CLUSTER_IP (its default then), not ${props.serviceType}, or a public layer-4 load balancer would bypass HTTPS`);
    }
    if (props.allowedSourceRanges !== undefined || props.internalLoadBalancer) {
      fail('allowedSourceRanges and internalLoadBalancer are for the layer-4 load balancer; behind the Gateway of `domain`, filter clients with cloudArmorPolicy');
    }
  }
  if (props.canary && props.domain === undefined) fail('canary needs domain: the Gateway\'s HTTPRoute is what splits the requests between the two');
  if (props.canary && props.gcpServiceAccount === undefined) fail('canary needs gcpServiceAccount: the Google service account that may read canary.modelUri');
  if (props.domain === undefined) {
    const stray = (['certificateMap', 'gatewayClass', 'staticAddress', 'backendTimeoutSeconds', 'cloudArmorPolicy'] as const).find((key) => props[key] !== undefined);
    if (stray) fail(`${stray} configures the Gateway, which needs domain`);
  }
  if (props.modelUri !== undefined && props.gcpServiceAccount === undefined) fail('modelUri needs gcpServiceAccount: the Google service account (Workload Identity) that may read it');
  if (props.gcpServiceAccount !== undefined && !GCP_SERVICE_ACCOUNT.test(props.gcpServiceAccount)) {
    fail(`gcpServiceAccount (${JSON.stringify(props.gcpServiceAccount)}) is not a Google service account (name@project.iam.gserviceaccount.com)`);
  }
}

/**
 * The server's environment as the ConfigMap carries it: the stated settings at their defaults, the
 * model, the props' `server` settings and the keys file, checked by the server's own rules (so a
 * combination the server would refuse at start fails at synth time instead, naming the variables).
 */
function serverEnvironment(props: AnomalyDetectorProps, apiKeys: boolean): Record<string, string> {
  const stated = Object.fromEntries(STATED_SETTINGS.map((key) => [key, DEFAULTS[key]]));
  try {
    return environmentOf({
      ...stated,
      // Without modelUri the model is the one in the image; with it, the server reads its name.
      modelName: props.modelUri ? undefined : BUNDLED_MODEL.name,
      modelPath: props.modelUri ? MODEL_URI_PATH : DEFAULTS.modelPath,
      ...props.server,
      apiKeysFile: apiKeys ? API_KEYS.file : undefined,
    });
  } catch (error) {
    if (error instanceof ConfigError) throw new PropsError('AnomalyDetector', `the server would refuse these settings: ${error.message}`);
    throw error;
  }
}

import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { loadConfig } from '../app/settings.ts';
import { GCS_FOLDER } from './k8s-values.ts';
import { PropsError } from './props-error.ts';
import { ServerAutoscaler, type ServerAutoscalerOptions } from './server-autoscaler.ts';
import { ServerDeployment, type ServerDeploymentOptions } from './server-deployment.ts';
import { ServerMonitoring, type ServerMonitoringOptions } from './server-monitoring.ts';
import { ServerNetworkPolicy, type ServerNetworkPolicyProps } from './server-network-policy.ts';
import { ServerService } from './server-service.ts';

/** A second model served beside the stable one, for a share of the requests. */
export interface CanaryOptions {
  /** The canary model's `gs://` folder (as `modelUri`), read as the same `gcpServiceAccount`. */
  readonly modelUri: string;
  /** The percentage of requests the Gateway's HTTPRoute sends to it, 0 to 100. */
  readonly weight: number;
}

export interface ServerCanaryProps {
  readonly canary: CanaryOptions;
  /** Its objects' name: the stable's with `-canary`. */
  readonly name: string;
  /** The labels of its objects, and the stable labels of its pods (another instance than the stable's). */
  readonly labels: Record<string, string>;
  readonly selectorLabels: Record<string, string>;
  /** The server's environment, as the stable's ConfigMap holds it for a model in Cloud Storage. */
  readonly environment: Record<string, string>;
  /** What its Deployment shares with the stable one: image, resources, service account, API keys. */
  readonly deployment: ServerDeploymentOptions & { readonly serviceAccount?: kplus.IServiceAccount; readonly apiKeysSecret?: string };
  /** What its autoscaler shares with the stable one; it keeps one pod at least. */
  readonly autoscaling: ServerAutoscalerOptions;
  /** Its NetworkPolicy, the stable's but for its pods; none when the stable has none. */
  readonly networkPolicy?: Omit<ServerNetworkPolicyProps, 'metadata' | 'podLabels'>;
  /** What scrapes its metrics, as for the stable one (its own job, so that the two are told apart); no alert rules of its own. */
  readonly monitoring: ServerMonitoringOptions;
}

/**
 * The canary: the same server on another model, in a Deployment and a Service of its own (so that
 * its metrics carry a job of their own), which the Gateway's HTTPRoute sends `weight` percent of
 * the requests to. Promoting it is serving its model as the stable one; dropping it, leaving it out.
 */
export class ServerCanary extends Construct {
  readonly service: ServerService;
  readonly deployment: ServerDeployment;

  constructor(scope: Construct, id: string, props: ServerCanaryProps) {
    super(scope, id);
    const { canary, name, labels, selectorLabels } = props;
    if (!GCS_FOLDER.test(canary.modelUri)) throw new PropsError('ServerCanary', `canary.modelUri (${canary.modelUri}) must be a Cloud Storage folder, gs://bucket/path`);
    if (!(Number.isInteger(canary.weight) && canary.weight >= 0 && canary.weight <= 100)) throw new PropsError('ServerCanary', `canary.weight (${canary.weight}) must be a whole percentage from 0 to 100`);
    const metadata = (suffix = '') => ({ name: name + suffix, labels });
    const configMap = new kplus.ConfigMap(this, 'Config', { metadata: metadata('-config'), data: props.environment });
    this.deployment = new ServerDeployment(this, 'Deployment', {
      ...props.deployment,
      modelUri: canary.modelUri,
      metadata: metadata(),
      selectorLabels,
      config: { configMap, settings: loadConfig(props.environment) },
    });
    const { port, metricsPort } = loadConfig(props.environment);
    this.service = new ServerService(this, 'Service', { metadata: metadata(), selectorLabels, servingPort: port, serviceType: kplus.ServiceType.CLUSTER_IP });
    new ServerAutoscaler(this, 'Autoscaler', { ...props.autoscaling, minReplicas: 1, metadata: metadata(), deployment: this.deployment, monitoring: props.monitoring.monitoring ?? 'gmp' });
    if (props.networkPolicy) new ServerNetworkPolicy(this, 'NetworkPolicy', { ...props.networkPolicy, metadata: metadata(), podLabels: selectorLabels });
    new ServerMonitoring(this, 'Monitoring', { ...props.monitoring, alerts: false, name, labels, selectorLabels, metricsPort });
  }
}

import { ApiObject, JsonPatch, type ApiObjectMetadata } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import { isCidr, NODE_PORTS } from './k8s-values.ts';
import { PORT_NAMES } from './server-deployment.ts';
import { PropsError } from './props-error.ts';

/** What a user chooses of the Service clients call (the AnomalyDetector's props include these). */
export interface ServerServiceOptions {
  /** The Service's type: LOAD_BALANCER, NODE_PORT or CLUSTER_IP. @default LOAD_BALANCER */
  readonly serviceType?: kplus.ServiceType;
  /** With NODE_PORT: the port on every node, 30000-32767. @default assigned by Kubernetes */
  readonly nodePort?: number;
  /** With LOAD_BALANCER: the client CIDRs the load balancer admits (loadBalancerSourceRanges). @default every address */
  readonly allowedSourceRanges?: readonly string[];
  /** With LOAD_BALANCER: an internal load balancer, reachable from the VPC only (GKE's annotation). @default false: external */
  readonly internalLoadBalancer?: boolean;
}

export interface ServerServiceProps extends ServerServiceOptions {
  readonly metadata: ApiObjectMetadata;
  /** The server pods' stable labels. */
  readonly selectorLabels: Record<string, string>;
  /** The server container's serving port (never the metrics port). */
  readonly servingPort: number;
  /**
   * Whether the pods see the clients' own addresses (externalTrafficPolicy Local), as a
   * NetworkPolicy of source ranges needs. @default false
   */
  readonly keepClientAddresses?: boolean;
}

/** The Service clients call, on port 80: the serving port only. */
export class ServerService extends kplus.Service {
  constructor(scope: Construct, id: string, props: ServerServiceProps) {
    const type = props.serviceType ?? kplus.ServiceType.LOAD_BALANCER;
    validate(props, type);
    super(scope, id, {
      metadata: { ...props.metadata, ...(props.internalLoadBalancer ? { annotations: { 'networking.gke.io/load-balancer-type': 'Internal' } } : {}) },
      type,
      loadBalancerSourceRanges: props.allowedSourceRanges ? [...props.allowedSourceRanges] : undefined,
      ports: [{ port: 80, targetPort: props.servingPort, name: PORT_NAMES.serving, nodePort: props.nodePort }],
    });
    // The Deployment's own stable labels (given a Deployment, cdk8s-plus selects on its path label).
    this.select(kplus.Pods.select(this, 'Pods', { labels: props.selectorLabels }));
    // With Cluster (the default), a node forwards a client's packets to a pod on another node from
    // its own address; Local keeps the client's, and the load balancer sends only to nodes with a pod.
    if (props.keepClientAddresses) ApiObject.of(this).addJsonPatch(JsonPatch.add('/spec/externalTrafficPolicy', 'Local'));
  }
}

function validate(props: ServerServiceProps, type: kplus.ServiceType): void {
  const fail = (message: string) => {
    throw new PropsError('ServerService', message);
  };
  if (props.nodePort !== undefined) {
    if (type !== kplus.ServiceType.NODE_PORT) fail(`nodePort (${props.nodePort}) needs serviceType NODE_PORT, not ${type}`);
    if (!Number.isInteger(props.nodePort) || props.nodePort < NODE_PORTS.min || props.nodePort > NODE_PORTS.max) {
      fail(`nodePort (${props.nodePort}) must be in the NodePort range ${NODE_PORTS.min}-${NODE_PORTS.max}`);
    }
  }
  if ((props.allowedSourceRanges !== undefined || props.internalLoadBalancer) && type !== kplus.ServiceType.LOAD_BALANCER) {
    fail(`allowedSourceRanges and internalLoadBalancer need serviceType LOAD_BALANCER, not ${type}`);
  }
  for (const range of props.allowedSourceRanges ?? []) {
    if (!isCidr(range)) fail(`allowedSourceRanges: ${JSON.stringify(range)} is not a CIDR block such as 203.0.113.0/24 or 2001:db8::/32`);
  }
  if (props.allowedSourceRanges?.length === 0) fail('allowedSourceRanges is empty: leave it out to admit every address');
}

import type { ApiObjectMetadata } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';

export interface ServerNetworkPolicyProps {
  readonly metadata: ApiObjectMetadata;
  /** The server pods' labels. */
  readonly podLabels: Record<string, string>;
  /** The container port clients call. */
  readonly servingPort: number;
  /** The container port of the metrics. */
  readonly metricsPort: number;
  /** Client CIDRs admitted to the serving port. @default every address */
  readonly allowedSourceRanges?: readonly string[];
  /** Pods of the policy's namespace admitted to the serving port whatever allowedSourceRanges says (the load test). @default none */
  readonly inClusterClients?: Record<string, string>;
  /** The namespace whose pods scrape the metrics port. @default none: nothing reaches it */
  readonly monitoringNamespace?: string;
  /** Whether the pods may call Google APIs (HTTPS to public addresses, and the metadata server). @default false */
  readonly googleApis?: boolean;
}

/**
 * Google Cloud's metadata server, which hands out Workload Identity's tokens: the address pods
 * call, and the GKE metadata server's own.
 */
const METADATA_SERVER = [
  { cidr: '169.254.169.254/32', port: 80 },
  { cidr: '169.254.169.252/32', port: 988 },
];
/** Public addresses, where Google APIs are: every address but the private ones (RFC 1918, RFC 4193). */
const PUBLIC = [
  { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] },
  { cidr: '::/0', except: ['fc00::/7'] },
];

const tcp = (port: number) => ({ protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(port) });

/**
 * The server pods' NetworkPolicy: in, the serving port from the clients' addresses and the
 * metrics port from the monitoring's namespace, nothing else; out, DNS and (for a model in Cloud
 * Storage) Google APIs, nothing else. Kubelet probes come from the pod's node, which a
 * NetworkPolicy always admits.
 */
export class ServerNetworkPolicy extends Construct {
  readonly apiObject: kplus.k8s.KubeNetworkPolicy;

  constructor(scope: Construct, id: string, props: ServerNetworkPolicyProps) {
    super(scope, id);
    const ranges = props.allowedSourceRanges;
    const clients = ranges
      ? [...ranges.map((cidr) => ({ ipBlock: { cidr } })), ...(props.inClusterClients ? [{ podSelector: { matchLabels: props.inClusterClients } }] : [])]
      : undefined; // no `from`: every source
    const ingress = [
      { ports: [tcp(props.servingPort)], ...(clients && { from: clients }) },
      ...(props.monitoringNamespace
        ? [{ ports: [tcp(props.metricsPort)], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': props.monitoringNamespace } } }] }]
        : []),
    ];
    const egress = [
      { ports: [{ protocol: 'UDP', port: kplus.k8s.IntOrString.fromNumber(53) }, tcp(53)] },
      ...(props.googleApis
        ? [
            { ports: [tcp(443)], to: PUBLIC.map((ipBlock) => ({ ipBlock })) },
            ...METADATA_SERVER.map(({ cidr, port }) => ({ ports: [tcp(port)], to: [{ ipBlock: { cidr } }] })),
          ]
        : []),
    ];
    this.apiObject = new kplus.k8s.KubeNetworkPolicy(this, 'Resource', {
      metadata: props.metadata,
      spec: { podSelector: { matchLabels: props.podLabels }, policyTypes: ['Ingress', 'Egress'], ingress, egress },
    });
  }
}

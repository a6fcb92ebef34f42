import { BlockList, isIPv6 } from 'node:net';
import type { Manifest } from './manifest-validation.ts';

/**
 * Whether synthesized NetworkPolicies let a connection through, by the rules of the Kubernetes
 * API (https://kubernetes.io/docs/concepts/services-networking/network-policies/): a pod that no
 * policy of a direction selects is open in that direction; a selected one takes a connection that
 * any rule of any selecting policy admits. Pods are named by their labels and namespace; addresses
 * outside the cluster by their IP. Ports are numbers (the policies here name no ports by name).
 */

type Labels = Readonly<Record<string, string>>;
export interface PodEnd {
  readonly namespace: string;
  readonly labels: Labels;
}
export type End = PodEnd | { readonly ip: string };

interface Peer {
  ipBlock?: { cidr: string; except?: string[] };
  podSelector?: { matchLabels?: Labels };
  namespaceSelector?: { matchLabels?: Labels };
}
interface Rule {
  ports?: { protocol?: string; port?: number }[];
  from?: Peer[];
  to?: Peer[];
}
interface Policy {
  metadata: { namespace?: string };
  spec: { podSelector: { matchLabels?: Labels }; policyTypes: string[]; ingress?: Rule[]; egress?: Rule[] };
}

const matches = (selector: { matchLabels?: Labels } | undefined, labels: Labels) =>
  Object.entries(selector?.matchLabels ?? {}).every(([key, value]) => labels[key] === value);

function inBlock(ip: string, block: NonNullable<Peer['ipBlock']>): boolean {
  const family = isIPv6(ip) ? 'ipv6' : 'ipv4';
  const list = (cidrs: string[]) => {
    const result = new BlockList();
    for (const cidr of cidrs) {
      const [address, prefix] = cidr.split('/');
      if ((isIPv6(address!) ? 'ipv6' : 'ipv4') === family) result.addSubnet(address!, Number(prefix), family);
    }
    return result;
  };
  return list([block.cidr]).check(ip, family) && !list(block.except ?? []).check(ip, family);
}

/** Whether `peer`, written in a policy of `namespace`, names `end`. */
function peerMatches(peer: Peer, namespace: string, end: End): boolean {
  if ('ip' in end) return peer.ipBlock !== undefined && inBlock(end.ip, peer.ipBlock);
  if (peer.ipBlock) return false;
  // The namespace's name label is set by the API server on every namespace.
  const namespaceLabels = { 'kubernetes.io/metadata.name': end.namespace };
  const inNamespace = peer.namespaceSelector ? matches(peer.namespaceSelector, namespaceLabels) : end.namespace === namespace;
  return inNamespace && (peer.podSelector === undefined || matches(peer.podSelector, end.labels));
}

function admitted(policies: readonly Policy[], direction: 'Ingress' | 'Egress', pod: PodEnd, other: End, port: number, protocol: string): boolean {
  const selecting = policies.filter(
    (p) => (p.metadata.namespace ?? 'default') === pod.namespace && p.spec.policyTypes.includes(direction) && matches(p.spec.podSelector, pod.labels),
  );
  if (selecting.length === 0) return true;
  return selecting.some((policy) =>
    (direction === 'Ingress' ? policy.spec.ingress : policy.spec.egress)?.some((rule) => {
      const portOk = rule.ports === undefined || rule.ports.some((p) => (p.protocol ?? 'TCP') === protocol && (p.port === undefined || p.port === port));
      const peers = direction === 'Ingress' ? rule.from : rule.to;
      return portOk && (peers === undefined || peers.some((peer) => peerMatches(peer, policy.metadata.namespace ?? 'default', other)));
    }),
  );
}

const policiesIn = (manifests: readonly Manifest[]) => manifests.filter((m) => m.kind === 'NetworkPolicy') as unknown as Policy[];

/** Whether `from` may open a connection to `to` on `port`, as far as both ends' policies go. */
export function connects(manifests: readonly Manifest[], from: End, to: End, port: number, protocol = 'TCP'): boolean {
  const policies = policiesIn(manifests);
  const out = 'ip' in from || admitted(policies, 'Egress', from, to, port, protocol);
  const inbound = 'ip' in to || admitted(policies, 'Ingress', to, from, port, protocol);
  return out && inbound;
}

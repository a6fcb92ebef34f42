import { HpaController, SYNC_PERIOD_SECONDS, type HpaBehavior, type MetricReading } from './hpa-algorithm.ts';

/** What the autoscaler scales on, per pod, and its target. */
export type ScalingMetric =
  | { readonly kind: 'cpu'; readonly targetUtilization: number }
  | { readonly kind: 'requests-per-second'; readonly targetPerPod: number }
  | { readonly kind: 'in-flight'; readonly targetPerPod: number };

/** The autoscaler as deployed: bounds, metrics and behaviour (read from the synthesized HPA or ScaledObject). */
export interface Autoscaler {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly metrics: readonly ScalingMetric[];
  readonly behavior: HpaBehavior;
}

export interface PodModel {
  /** Requests a second one pod answers with its CPU request fully used. */
  readonly capacityRps: number;
  /** In flight at a utilisation ρ: inFlightScale × ρ / (1 − ρ), fitted to a measurement (Little's law). */
  readonly inFlightScale: number;
  readonly imagePullSeconds: number;
  readonly startToReadySeconds: number;
}

export interface NodeModel {
  readonly podsPerNode: number;
  /** How far a pod's CPU may go above its request on a full node (1: not at all). */
  readonly burst: number;
  readonly minNodes: number;
  readonly maxNodes: number;
  readonly provisionSeconds: number;
}

export interface TimelineEntry {
  readonly t: number;
  readonly load: number;
  readonly replicas: number;
  readonly readyReplicas: number;
  /** Requests a second the ready pods answer at their CPU request. */
  readonly capacity: number;
  readonly nodes: number;
}

export interface PlanResult {
  readonly podCapacityRps: number;
  readonly peakReplicas: number;
  readonly secondsOverCapacity: number;
  /** From the first second the load is over the ready capacity to the first second it is not again; 0 if never over. */
  readonly timeToCapacitySeconds: number;
  /** What held the response back, when something did. */
  readonly cappedBy: readonly ('maxReplicas' | 'maxNodes')[];
  /** What the peak needs: replicas at the targets, and nodes for them. */
  readonly needs: { readonly minReplicas: number; readonly maxReplicas: number; readonly maxNodes: number };
  readonly timeline: readonly TimelineEntry[];
}

interface Pod {
  readonly createdAt: number;
  scheduledAt?: number;
  readyAt?: number;
}

/** A metric's reading at a sync, from the offered load spread over the ready pods. */
function readingOf(metric: ScalingMetric, load: number, ready: number, unready: number, pod: PodModel, nodes: NodeModel): MetricReading {
  const utilisation = ready === 0 ? 0 : Math.min(load / ready / pod.capacityRps, nodes.burst);
  let ratio: number;
  switch (metric.kind) {
    case 'cpu':
      ratio = (utilisation * 100) / metric.targetUtilization;
      break;
    case 'requests-per-second':
      ratio = (utilisation * pod.capacityRps) / metric.targetPerPod;
      break;
    case 'in-flight': {
      const rho = Math.min(load / Math.max(ready, 1) / pod.capacityRps, 0.99);
      ratio = (pod.inFlightScale * rho) / (1 - rho) / metric.targetPerPod;
      break;
    }
  }
  return { usageRatio: ratio, readyPods: ready, unreadyPods: unready };
}

/** The replicas at which `load` sits at every metric's target. */
function replicasAtTarget(load: number, autoscaler: Autoscaler, pod: PodModel): number {
  return Math.max(
    1,
    ...autoscaler.metrics.map((metric) => {
      switch (metric.kind) {
        case 'cpu':
          return Math.ceil(load / (pod.capacityRps * (metric.targetUtilization / 100)));
        case 'requests-per-second':
          return Math.ceil(load / metric.targetPerPod);
        case 'in-flight': {
          // ρ at which inFlightScale × ρ / (1 − ρ) = target.
          const rho = metric.targetPerPod / (pod.inFlightScale + metric.targetPerPod);
          return Math.ceil(load / (pod.capacityRps * rho));
        }
      }
    }),
  );
}

/**
 * Runs the HPA against a load shape, second by second: a sync every 15 s on the ready pods'
 * metrics; new pods wait for room on a node (the cluster autoscaler adds nodes up to the bound,
 * after the provisioning time), then for the image and start-to-ready; the Service spreads the
 * load over the ready pods.
 */
export function simulate(load: (t: number) => number, seconds: number, autoscaler: Autoscaler, pod: PodModel, nodes: NodeModel): PlanResult {
  const hpa = new HpaController(autoscaler, autoscaler.behavior);
  const pods: Pod[] = Array.from({ length: autoscaler.minReplicas }, () => ({ createdAt: -Infinity, scheduledAt: -Infinity, readyAt: -Infinity }));
  let nodeCount = Math.max(nodes.minNodes, Math.min(nodes.maxNodes, Math.ceil(pods.length / nodes.podsPerNode)));
  const provisioning: number[] = []; // when each node being added is ready
  const timeline: TimelineEntry[] = [];
  const cappedBy = new Set<'maxReplicas' | 'maxNodes'>();
  let peakLoad = 0;

  for (let t = 0; t <= seconds; t++) {
    const offered = load(t);
    peakLoad = Math.max(peakLoad, offered);
    while (provisioning.length > 0 && provisioning[0]! <= t) {
      provisioning.shift();
      nodeCount++;
    }
    // Schedule pending pods where there is room, and ask for nodes for the rest.
    const scheduled = pods.filter((p) => p.scheduledAt !== undefined).length;
    let room = nodeCount * nodes.podsPerNode - scheduled;
    for (const p of pods) {
      if (p.scheduledAt !== undefined || room <= 0) continue;
      p.scheduledAt = t;
      p.readyAt = t + pod.imagePullSeconds + pod.startToReadySeconds;
      room--;
    }
    const pending = pods.filter((p) => p.scheduledAt === undefined).length;
    const coming = provisioning.length * nodes.podsPerNode;
    if (pending > coming) {
      const wanted = Math.ceil((pending - coming) / nodes.podsPerNode);
      const allowed = Math.min(wanted, nodes.maxNodes - nodeCount - provisioning.length);
      if (allowed < wanted) cappedBy.add('maxNodes');
      for (let i = 0; i < allowed; i++) provisioning.push(t + nodes.provisionSeconds);
    }

    const ready = pods.filter((p) => p.readyAt !== undefined && p.readyAt <= t).length;
    if (t % SYNC_PERIOD_SECONDS === 0) {
      const readings = autoscaler.metrics.map((metric) => readingOf(metric, offered, ready, pods.length - ready, pod, nodes));
      const { replicas, limitedBy } = hpa.reconcile(t, pods.length, readings);
      if (limitedBy === 'maxReplicas') cappedBy.add('maxReplicas');
      while (pods.length < replicas) pods.push({ createdAt: t });
      // Scale-down removes the pods that are least along first (Kubernetes' ReplicaSet ranking).
      if (pods.length > replicas) pods.sort((a, b) => (a.readyAt ?? Infinity) - (b.readyAt ?? Infinity)).splice(replicas);
    }
    // The second as it ends: a pod the sync removed serves no more (the sync read it as it began).
    const serving = pods.filter((p) => p.readyAt !== undefined && p.readyAt <= t).length;
    timeline.push({ t, load: offered, replicas: pods.length, readyReplicas: serving, capacity: serving * pod.capacityRps, nodes: nodeCount });
  }

  const over = timeline.filter((entry) => entry.load > entry.capacity);
  const firstOver = over[0]?.t;
  const backUnder = firstOver === undefined ? undefined : timeline.find((entry) => entry.t > firstOver && entry.load <= entry.capacity)?.t;
  const minReplicas = Math.max(autoscaler.minReplicas, replicasAtTarget(load(0), autoscaler, pod));
  // A peak that the floor already serves needs no more than the floor: never a maximum below it.
  const needed = Math.max(minReplicas, replicasAtTarget(peakLoad, autoscaler, pod));
  return {
    podCapacityRps: pod.capacityRps,
    peakReplicas: Math.max(...timeline.map((entry) => entry.replicas)),
    secondsOverCapacity: over.length,
    timeToCapacitySeconds: firstOver === undefined ? 0 : (backUnder ?? seconds + 1) - firstOver,
    cappedBy: [...cappedBy],
    needs: {
      minReplicas,
      maxReplicas: needed,
      maxNodes: Math.ceil(needed / nodes.podsPerNode),
    },
    timeline,
  };
}

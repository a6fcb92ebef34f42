/**
 * The HorizontalPodAutoscaler's algorithm, as Kubernetes documents it
 * (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details)
 * and as its controller implements it (pkg/controller/podautoscaler: replica_calculator.go's
 * calcPlainMetricReplicas, horizontal.go's stabilizeRecommendationWithBehaviors and
 * convertDesiredReplicasWithBehaviorRate): for `npm run plan`, which runs it against a load shape.
 */

export interface ScalingPolicy {
  readonly type: 'Pods' | 'Percent';
  readonly value: number;
  readonly periodSeconds: number;
}

/** One direction of an autoscaling/v2 `behavior`. */
export interface ScalingRules {
  readonly stabilizationWindowSeconds: number;
  readonly selectPolicy: 'Max' | 'Min' | 'Disabled';
  readonly policies: readonly ScalingPolicy[];
}

export interface HpaBehavior {
  readonly scaleUp: ScalingRules;
  readonly scaleDown: ScalingRules;
}

/** Kubernetes' defaults for a behavior the object leaves out. */
export const DEFAULT_BEHAVIOR: HpaBehavior = {
  scaleUp: {
    stabilizationWindowSeconds: 0,
    selectPolicy: 'Max',
    policies: [
      { type: 'Percent', value: 100, periodSeconds: 15 },
      { type: 'Pods', value: 4, periodSeconds: 15 },
    ],
  },
  scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
};

/** The controller's --horizontal-pod-autoscaler-tolerance default. */
export const TOLERANCE = 0.1;
/** The controller's --horizontal-pod-autoscaler-sync-period default, in seconds. */
export const SYNC_PERIOD_SECONDS = 15;

/** What one metric reads at a sync: its average over the ready pods against its target. */
export interface MetricReading {
  /** The average of the ready pods' values over the target value (utilisation over target utilisation). */
  readonly usageRatio: number;
  /** Pods with a value (ready). */
  readonly readyPods: number;
  /** Pods not yet ready: set aside, and counted as using nothing when the ratio says scale up. */
  readonly unreadyPods: number;
}

/** calcPlainMetricReplicas: the replicas one metric asks for, or `current` within the tolerance. */
export function replicasForMetric(current: number, { usageRatio, readyPods, unreadyPods }: MetricReading, tolerance = TOLERANCE): number {
  if (readyPods === 0) return current; // no metrics: the controller keeps the replicas
  const scaleUpWithUnready = unreadyPods > 0 && usageRatio > 1;
  if (!scaleUpWithUnready) {
    if (Math.abs(1 - usageRatio) <= tolerance) return current;
    return Math.ceil(usageRatio * readyPods);
  }
  const newUsageRatio = (usageRatio * readyPods) / (readyPods + unreadyPods);
  if (Math.abs(1 - newUsageRatio) <= tolerance || newUsageRatio < 1) return current;
  const replicas = Math.ceil(newUsageRatio * (readyPods + unreadyPods));
  return replicas < current ? current : replicas;
}

interface Recommendation {
  readonly at: number;
  readonly replicas: number;
}

interface ScaleEvent {
  readonly at: number;
  readonly change: number;
}

/** Replicas changed by the events of the last `periodSeconds`. */
const changeWithin = (events: readonly ScaleEvent[], now: number, periodSeconds: number) =>
  events.filter((event) => event.at > now - periodSeconds).reduce((sum, event) => sum + event.change, 0);

/**
 * One HPA's controller state: its recent recommendations (for the stabilisation windows) and
 * scale events (for the policies' periods). `reconcile` is one sync.
 */
export class HpaController {
  private readonly recommendations: Recommendation[] = [];
  private readonly scaleUps: ScaleEvent[] = [];
  private readonly scaleDowns: ScaleEvent[] = [];

  constructor(
    private readonly bounds: { readonly minReplicas: number; readonly maxReplicas: number },
    private readonly behavior: HpaBehavior = DEFAULT_BEHAVIOR,
    private readonly tolerance = TOLERANCE,
  ) {}

  /**
   * One sync at `now` seconds, with `current` replicas and each metric's reading: the largest of
   * the metrics' proposals, stabilised, then limited by the policies and the bounds. Returns the
   * replicas to set, and why they are limited when they are.
   */
  reconcile(now: number, current: number, readings: readonly MetricReading[]): { replicas: number; limitedBy?: 'maxReplicas' | 'minReplicas' | 'scaleUpPolicy' | 'scaleDownPolicy' } {
    const proposal = Math.max(...readings.map((reading) => replicasForMetric(current, reading, this.tolerance)));
    const stabilised = this.stabilise(now, current, proposal);
    const { replicas, limitedBy } = this.limit(now, current, stabilised);
    if (replicas > current) this.scaleUps.push({ at: now, change: replicas - current });
    if (replicas < current) this.scaleDowns.push({ at: now, change: current - replicas });
    return limitedBy ? { replicas, limitedBy } : { replicas };
  }

  /** stabilizeRecommendationWithBehaviors: the lowest recent proposal up, the highest recent one down. */
  private stabilise(now: number, current: number, proposal: number): number {
    const { scaleUp, scaleDown } = this.behavior;
    let up = proposal;
    let down = proposal;
    for (const { at, replicas } of this.recommendations) {
      if (at > now - scaleUp.stabilizationWindowSeconds) up = Math.min(up, replicas);
      if (at > now - scaleDown.stabilizationWindowSeconds) down = Math.max(down, replicas);
    }
    this.recommendations.push({ at: now, replicas: proposal });
    return Math.min(Math.max(current, up), down);
  }

  /** convertDesiredReplicasWithBehaviorRate: the policies' limits, then minReplicas and maxReplicas. */
  private limit(now: number, current: number, desired: number): ReturnType<HpaController['reconcile']> {
    const { minReplicas, maxReplicas } = this.bounds;
    if (desired > current) {
      const limit = Math.max(current, this.scaleLimit(now, current, this.behavior.scaleUp, +1));
      if (desired > Math.min(maxReplicas, limit)) return limit < maxReplicas ? { replicas: limit, limitedBy: 'scaleUpPolicy' } : { replicas: maxReplicas, limitedBy: 'maxReplicas' };
    } else if (desired < current) {
      const limit = Math.min(current, this.scaleLimit(now, current, this.behavior.scaleDown, -1));
      if (desired < Math.max(minReplicas, limit)) return limit > minReplicas ? { replicas: limit, limitedBy: 'scaleDownPolicy' } : { replicas: minReplicas, limitedBy: 'minReplicas' };
    }
    return { replicas: Math.min(maxReplicas, Math.max(minReplicas, desired)) };
  }

  /** calculateScaleUpLimitWithScalingRules (+1) and calculateScaleDownLimitWithBehaviors (-1). */
  private scaleLimit(now: number, current: number, rules: ScalingRules, direction: 1 | -1): number {
    if (rules.selectPolicy === 'Disabled') return current;
    // Max picks the policy that allows the biggest change: the highest limit up, the lowest down.
    const pick = (rules.selectPolicy === 'Max') === (direction === 1) ? Math.max : Math.min;
    const limits = rules.policies.map((policy) => {
      const start = current - changeWithin(this.scaleUps, now, policy.periodSeconds) + changeWithin(this.scaleDowns, now, policy.periodSeconds);
      if (policy.type === 'Pods') return start + direction * policy.value;
      const scaled = start * (1 + (direction * policy.value) / 100);
      return direction === 1 ? Math.ceil(scaled) : Math.trunc(scaled);
    });
    return pick(...limits);
  }
}

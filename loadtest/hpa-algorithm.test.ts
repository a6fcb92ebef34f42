import { describe, expect, it } from 'vitest';
import { DEFAULT_BEHAVIOR, HpaController, replicasForMetric, type HpaBehavior } from './hpa-algorithm.ts';

/** Every pod ready, reading `usageRatio` of the target. */
const reading = (usageRatio: number, readyPods: number, unreadyPods = 0) => ({ usageRatio, readyPods, unreadyPods });

/** Runs syncs every 15 s from t = 0 with the same desired ratio function, returning the replicas after each. */
function run(controller: HpaController, start: number, syncs: number, ratio: (replicas: number, t: number) => number): number[] {
  const history: number[] = [];
  let replicas = start;
  for (let i = 0; i < syncs; i++) {
    const t = i * 15;
    replicas = controller.reconcile(t, replicas, [reading(ratio(replicas, t), replicas)]).replicas;
    history.push(replicas);
  }
  return history;
}

describe('the HPA algorithm, on the Kubernetes documentation’s worked examples', () => {
  // "desiredReplicas = ceil[currentReplicas * ( currentMetricValue / desiredMetricValue )]"
  it('200m against a target of 100m doubles the replicas; 50m halves them', () => {
    expect(replicasForMetric(4, reading(200 / 100, 4))).toBe(8);
    expect(replicasForMetric(4, reading(50 / 100, 4))).toBe(2);
  });

  it('skips any scaling while the ratio is within the 10% tolerance', () => {
    expect(replicasForMetric(10, reading(1.09, 10))).toBe(10);
    expect(replicasForMetric(10, reading(0.91, 10))).toBe(10);
    expect(replicasForMetric(10, reading(1.11, 10))).toBe(12);
  });

  // "If there were any missing metrics ... not-yet-ready pods ... as using 0% of the desired metric on a scale up"
  it('counts pods that are not yet ready as using nothing on a scale-up, and holds when that reverses it', () => {
    expect(replicasForMetric(4, reading(2, 2, 2))).toBe(4); // (2 × 2 + 0 × 2) / 4 = 1.0: within tolerance
    expect(replicasForMetric(4, reading(3, 2, 2))).toBe(6); // 6 / 4 = 1.5 → ceil(1.5 × 4)
    expect(replicasForMetric(6, reading(1.5, 2, 4))).toBe(6); // 3 / 6 = 0.5 would scale down: hold
  });

  it('takes the largest proposal of several metrics', () => {
    const controller = new HpaController({ minReplicas: 1, maxReplicas: 100 });
    expect(controller.reconcile(0, 4, [reading(0.5, 4), reading(2, 4)]).replicas).toBe(8);
  });

  // Default behaviour: "scale up ... by 100% or 4 pods every 15 seconds, whichever is larger".
  it('by default, scales up by at most 100% or 4 pods, whichever is more, every 15 s', () => {
    const controller = new HpaController({ minReplicas: 1, maxReplicas: 100 });
    expect(run(controller, 1, 4, () => 100)).toEqual([5, 10, 20, 40]);
  });

  // "scaleDown: policies: Pods 4 per 60 s, Percent 10 per 60 s ... if there are 80 replicas and the
  // target has to be scaled down to 10 replicas then during the first step 8 replicas will be
  // reduced. In the next iteration when the number of replicas is 72, 10% of the pods is 7.2 but the
  // number is rounded up to 8. ... When the number of replicas falls below 40 the first policy
  // (Pods) is applied and 4 replicas will be reduced at a time."
  it('scales down by the policy that allows the biggest change: 8 of 80, 8 of 72, ..., then 4 at a time', () => {
    const behavior: HpaBehavior = {
      scaleUp: DEFAULT_BEHAVIOR.scaleUp,
      scaleDown: {
        stabilizationWindowSeconds: 0,
        selectPolicy: 'Max',
        policies: [
          { type: 'Pods', value: 4, periodSeconds: 60 },
          { type: 'Percent', value: 10, periodSeconds: 60 },
        ],
      },
    };
    const controller = new HpaController({ minReplicas: 1, maxReplicas: 100 }, behavior);
    let replicas = 80;
    const steps: number[] = [];
    for (let t = 0; replicas > 10 && t < 3600; t += 15) {
      const next = controller.reconcile(t, replicas, [reading(10 / replicas, replicas)]).replicas;
      if (next !== replicas) steps.push(replicas - next);
      replicas = next;
    }
    // One change a 60-s period: 10% of 80, 72, 64, 57, 51 and 45 (the remainder kept whole, so 72
    // loses 8 as the documentation says), then 4 pods at a time from 40, down to the target of 10.
    expect(steps).toEqual([8, 8, 7, 6, 6, 5, 4, 4, 4, 4, 4, 4, 4, 2]);
    expect(replicas).toBe(10);
  });

  // "selectPolicy: Disabled ... disables scaling in that direction"
  it('never scales down with selectPolicy Disabled', () => {
    const controller = new HpaController({ minReplicas: 1, maxReplicas: 10 }, { ...DEFAULT_BEHAVIOR, scaleDown: { ...DEFAULT_BEHAVIOR.scaleDown, selectPolicy: 'Disabled' } });
    expect(run(controller, 8, 40, () => 0.1).at(-1)).toBe(8);
  });

  // "stabilizationWindowSeconds: 300 ... all desired states from the past 5 minutes will be considered"
  it('keeps the highest recommendation of the last 300 s before scaling down, so a short dip changes nothing', () => {
    const controller = new HpaController({ minReplicas: 1, maxReplicas: 20 });
    // 10 pods at target; the load halves from t = 60 s to t = 180 s, then comes back.
    const history = run(controller, 10, 30, (_, t) => (t >= 60 && t < 180 ? 0.5 : 1));
    expect(new Set(history)).toEqual(new Set([10]));
    // A lasting drop: replicas fall 300 s after it began, not before.
    const lasting = new HpaController({ minReplicas: 1, maxReplicas: 20 });
    const drop = run(lasting, 10, 30, (replicas, t) => (t >= 60 ? (10 * 0.5) / replicas : 1));
    // The last recommendation of 10 was made at 45 s: it leaves the window, and the replicas fall, at 345 s.
    expect(drop.slice(0, 23)).toEqual(Array(23).fill(10));
    expect(drop[23]).toBe(5);
  });

  it('stops at maxReplicas and at minReplicas, and says so', () => {
    const controller = new HpaController({ minReplicas: 2, maxReplicas: 6 });
    expect(controller.reconcile(0, 4, [reading(3, 4)])).toEqual({ replicas: 6, limitedBy: 'maxReplicas' });
    expect(controller.reconcile(15, 6, [reading(3, 6)])).toEqual({ replicas: 6, limitedBy: 'maxReplicas' });
    const down = new HpaController({ minReplicas: 2, maxReplicas: 6 }, { ...DEFAULT_BEHAVIOR, scaleDown: { ...DEFAULT_BEHAVIOR.scaleDown, stabilizationWindowSeconds: 0 } });
    expect(down.reconcile(0, 4, [reading(0.1, 4)])).toEqual({ replicas: 2, limitedBy: 'minReplicas' });
  });

  it('reports when a scale-up policy, not the metric, sets the pace', () => {
    const controller = new HpaController({ minReplicas: 1, maxReplicas: 100 });
    expect(controller.reconcile(0, 2, [reading(10, 2)])).toEqual({ replicas: 6, limitedBy: 'scaleUpPolicy' });
  });
});

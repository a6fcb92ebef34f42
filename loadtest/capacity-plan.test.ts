import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BEHAVIOR } from './hpa-algorithm.ts';
import { simulate, type Autoscaler, type NodeModel, type PodModel } from './capacity-plan.ts';

const AUTOSCALER: Autoscaler = { minReplicas: 2, maxReplicas: 10, metrics: [{ kind: 'cpu', targetUtilization: 60 }], behavior: DEFAULT_BEHAVIOR };
const POD: PodModel = { capacityRps: 4000, inFlightScale: 1, imagePullSeconds: 15, startToReadySeconds: 3 };
const NODES: NodeModel = { podsPerNode: 3, burst: 1.5, minNodes: 1, maxNodes: 9, provisionSeconds: 60 };

describe('the capacity plan\'s simulation', () => {
  it('never counts more ready pods than pods, the second a scale-down removes some', () => {
    // Up to the peak and back down: the scale-down removes ready pods at a sync.
    const result = simulate((t) => (t < 60 || t > 400 ? 1000 : 20000), 1200, AUTOSCALER, POD, NODES);
    expect(Math.max(...result.timeline.map((e) => e.replicas))).toBeGreaterThan(2);
    expect(result.timeline.at(-1)!.replicas).toBe(2);
    for (const entry of result.timeline) {
      expect(entry.readyReplicas, `t = ${entry.t}`).toBeLessThanOrEqual(entry.replicas);
      expect(entry.capacity).toBe(entry.readyReplicas * POD.capacityRps);
    }
  });

  it('holds for any load shape: ready ≤ replicas ≤ maxReplicas, and what the peak needs never below what the floor needs', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 1, maxLength: 8 }), (levels) => {
        const result = simulate((t) => levels[Math.floor(t / 100) % levels.length]!, 700, AUTOSCALER, POD, NODES);
        expect(result.timeline.every((e) => e.readyReplicas <= e.replicas && e.replicas <= AUTOSCALER.maxReplicas)).toBe(true);
        expect(result.needs.maxReplicas).toBeGreaterThanOrEqual(result.needs.minReplicas);
      }),
      { numRuns: 25 },
    );
  });

  it('reports a low load\'s needs as the floor: maxReplicas never below minReplicas', () => {
    expect(simulate(() => 10, 120, AUTOSCALER, POD, NODES).needs).toEqual({ minReplicas: 2, maxReplicas: 2, maxNodes: 1 });
  });
});

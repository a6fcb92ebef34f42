import fc from 'fast-check';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LeanHistogram } from './lean-histogram.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const LABELS = ['method', 'route'] as const;

/** The same observations in prom-client's Histogram and in a LeanHistogram, each in a registry of its own. */
function both(observations: readonly { readonly labels: readonly [string, string]; readonly value: number }[]) {
  const reference = new Registry();
  const lean = new Registry();
  const histogram = new Histogram({ name: 'h', help: 'a histogram', labelNames: LABELS, buckets: BUCKETS, registers: [reference] });
  const plain = new Histogram({ name: 'p', help: 'no labels', buckets: BUCKETS, registers: [reference] });
  const leanHistogram = new LeanHistogram({ name: 'h', help: 'a histogram', labelNames: LABELS, buckets: BUCKETS, registers: [lean] });
  const leanPlain = new LeanHistogram({ name: 'p', help: 'no labels', buckets: BUCKETS, registers: [lean] });
  for (const { labels: [method, route], value } of observations) {
    histogram.observe({ method, route }, value);
    leanHistogram.series(method, route).observe(value);
    plain.observe(value);
    leanPlain.observe(value);
  }
  return { reference, lean };
}

const observation = fc.record({
  labels: fc.tuple(fc.constantFrom('GET', 'POST'), fc.constantFrom('/predict', '/v2/models/:name/infer', 'unmatched')),
  // Bounds themselves included: a value on a bound is in that bound's bucket.
  value: fc.oneof(fc.constantFrom(...BUCKETS, 0), fc.double({ min: 0, max: 10, noNaN: true })),
});

describe('LeanHistogram', () => {
  it('reads out as prom-client\'s Histogram does: the same text, the same JSON, the same sums across a cluster', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 40 }), fc.array(observation, { maxLength: 40 }), async (first, second) => {
        const a = both(first);
        const b = both(second);
        expect(await a.lean.metrics()).toBe(await a.reference.metrics());
        expect(await a.lean.getMetricsAsJSON()).toEqual(await a.reference.getMetricsAsJSON());
        const summed = async (key: 'lean' | 'reference') => AggregatorRegistry.aggregate([await a[key].getMetricsAsJSON(), await b[key].getMetricsAsJSON()]).metrics();
        expect(await summed('lean')).toBe(await summed('reference'));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a value that is not a number, as prom-client does, and keeps its figures', async () => {
    const registry = new Registry();
    const histogram = new LeanHistogram({ name: 'h', help: 'h', buckets: BUCKETS, registers: [registry] });
    histogram.observe(0.5);
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) expect(() => histogram.observe(value)).toThrow(TypeError);
    expect(await registry.metrics()).toContain('h_sum 0.5\nh_count 1');
  });

  it('refuses buckets that do not ascend', () => {
    expect(() => new LeanHistogram({ name: 'h', help: 'h', buckets: [1, 0.1], registers: [] })).toThrow(/h: the buckets must ascend, got 1, 0.1/);
  });
});

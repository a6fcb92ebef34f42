import { describe, expect, it } from 'vitest';
import { chooseThreshold } from './threshold.ts';

describe('chooseThreshold', () => {
  it('mean+std is the mean plus one population standard deviation of the normal scores', () => {
    expect(chooseThreshold('mean+std', { normal: [1, 3], anomalous: [100] })).toBeCloseTo(3);
  });

  it('max-accuracy cuts midway between the scores where the training part is classified best', () => {
    // normal 1 2 4, anomalous 3 5 6: cutting at 2.5 or at 4.5 gets 5 of 6 right; the lower cut wins.
    expect(chooseThreshold('max-accuracy', { normal: [1, 2, 4], anomalous: [3, 5, 6] })).toBe(2.5);
    expect(chooseThreshold('max-accuracy', { normal: [1, 2], anomalous: [3, 4] })).toBe(2.5);
  });

  it('max-accuracy calls everything normal when the anomalous beats score lowest', () => {
    expect(chooseThreshold('max-accuracy', { normal: [5, 6, 7], anomalous: [1] })).toBe(7);
  });
});

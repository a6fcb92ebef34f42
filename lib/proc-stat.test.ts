import { describe, expect, it } from 'vitest';
import { processStat } from './proc-stat.ts';

describe.runIf(process.platform === 'linux')('processStat', () => {
  it("reads this process's state and the CPU time it spends", () => {
    const before = processStat(process.pid);
    expect(before.state).toBe('R');
    const busyUntil = performance.now() + 100;
    while (performance.now() < busyUntil);
    expect(processStat(process.pid).cpuTicks).toBeGreaterThan(before.cpuTicks);
  });

  it('throws for a process that is not there', () => {
    expect(() => processStat(2 ** 22 + 1)).toThrow(/ENOENT/);
  });
});

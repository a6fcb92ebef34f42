import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allowedCpus } from './cpu-pinning.ts';

describe('allowedCpus', () => {
  it("reads a process's CPUs from /proc's list of ranges", () => {
    expect(allowedCpus('Name:\tnode\nCpus_allowed:\tf0d\nCpus_allowed_list:\t0-3,8,10-11\nMems_allowed:\t1\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(allowedCpus('Cpus_allowed_list:\t5\n')).toEqual([5]);
    expect(allowedCpus().length).toBeGreaterThan(0);
  });
});

describe('pinLoadApartFromServers', () => {
  it('pins the process that calls it to all its CPUs but the last, and runs a server on the last alone; nothing on a single CPU', () => {
    // In a process of its own: pinned, this test's worker would slow the suites beside it.
    const script = `
      const { allowedCpus, pinLoadApartFromServers } = await import(${JSON.stringify(new URL('./cpu-pinning.ts', import.meta.url).href)});
      const { execFileSync } = await import('node:child_process');
      const pinning = pinLoadApartFromServers();
      const command = pinning?.server(['cat', '/proc/self/status']);
      const server = command && execFileSync(command[0], command.slice(1), { encoding: 'utf8' });
      console.log(JSON.stringify({ pinned: pinning !== undefined, load: allowedCpus(), server: server && allowedCpus(server) }));`;
    const seen = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })) as { pinned: boolean; load: number[]; server?: number[] };
    const cpus = allowedCpus();
    if (cpus.length < 2) {
      expect(seen).toEqual({ pinned: false, load: cpus });
      return;
    }
    expect(seen).toEqual({ pinned: true, load: cpus.slice(0, -1), server: cpus.slice(-1) });
  });
});

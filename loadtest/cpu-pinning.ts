import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The CPUs a process may run on, from Linux's /proc/PID/status (`Cpus_allowed_list: 0-3,8`). */
export function allowedCpus(status: string = readFileSync('/proc/self/status', 'utf8')): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1] ?? '';
  return list
    .split(',')
    .filter(Boolean)
    .flatMap((range) => {
      const [from, to = from] = range.split('-').map(Number) as [number, number?];
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    });
}

export interface CpuPinning {
  /** The CPU a measured server has to itself. */
  readonly serverCpu: number;
  /** The CPUs this process, the load generator, runs on. */
  readonly loadCpus: readonly number[];
  /** `command`, run on the server's CPU. */
  server(command: readonly string[]): string[];
}

/**
 * Pins this process, which drives the load (autocannon runs in it), to every CPU it may use but the
 * last, and says how to run a server on the last alone: the server on a core of its own, as the
 * quiet machine's figures were taken (issue 26), and the load never competing with it for one.
 * On a shared 2-core machine, the bare endpoint's CPU a request moved by a fifth from run to run
 * without it. Undefined, and nothing pinned, where fewer than two CPUs are allowed or `taskset`
 * (util-linux) is missing.
 */
export function pinLoadApartFromServers(): CpuPinning | undefined {
  const cpus = allowedCpus();
  if (cpus.length < 2) return undefined;
  const serverCpu = cpus.at(-1)!;
  const loadCpus = cpus.slice(0, -1);
  try {
    execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', loadCpus.join(','), String(process.pid)], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return { serverCpu, loadCpus, server: (command) => ['taskset', '--cpu-list', String(serverCpu), ...command] };
}

/** How a measured server is run: on the server's CPU where `pinning` pins, as it is where nothing is pinned. */
export const serverLauncher =
  (pinning: CpuPinning | undefined) =>
  (command: readonly string[]): string[] =>
    pinning ? pinning.server(command) : [...command];

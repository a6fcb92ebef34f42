import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../lib/logger.ts';
import { SERVER_HOST, spawnServer, type SpawnOptions } from '../lib/server-process.ts';
import { drive, type Target } from './drive.ts';

/**
 * Instructions a request, a measure that a busy machine's noise cannot move the way it moves time:
 * the server runs under valgrind's callgrind (user-space instructions of every thread: JIT code,
 * garbage collection and the kernels' WebAssembly included, the kernel's own work not), is warmed
 * up, then its counters are zeroed, a fixed number of requests is sent and they are dumped, `reps`
 * times. Perf's hardware counters would be cheaper, where a machine exposes them (this one does not).
 */

/** The callgrind binary itself: the `valgrind` script execs it, and callgrind_control addresses it by its pid. */
const VALGRIND = '/usr/bin/valgrind.bin';

const run = promisify(execFile);

/** Whether valgrind and callgrind_control are installed. */
export async function callgrindAvailable(): Promise<boolean> {
  try {
    await run(VALGRIND, ['--version']);
    await run('callgrind_control', ['--version']);
    return true;
  } catch {
    return false;
  }
}

export interface InstructionCount {
  readonly warmup: number;
  readonly requests: number;
  readonly reps: number;
  readonly connections: number;
}

/** Each rep's instructions per answered request of `command` serving `target`. */
export async function instructionsPerRequest(
  logger: Logger,
  command: readonly string[],
  target: Target,
  { warmup, requests, reps, connections }: InstructionCount,
  options: Pick<SpawnOptions, 'waitFor'> & {
    env?: Record<string, string>;
    /** How the command under valgrind is run (on a CPU of its own, say). @default as it is */
    launch?: (command: readonly string[]) => string[];
  } = {},
): Promise<number[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'callgrind-'));
  const out = path.join(dir, 'callgrind.out');
  const [file, ...args] = command;
  const underValgrind = [VALGRIND, '--tool=callgrind', `--callgrind-out-file=${out}`, '--smc-check=all-non-file', file!, ...args];
  const server = await spawnServer(options.env ?? {}, { waitFor: options.waitFor, command: options.launch?.(underValgrind) ?? underValgrind });
  // vgdb names its pipe after the user and HOST of the process it talks to, and spawnServer sets HOST.
  const control = (flag: string) => run('callgrind_control', [flag, String(server.child.pid)], { env: { ...process.env, HOST: options.env?.HOST ?? SERVER_HOST } });
  try {
    await drive(logger, 'warm-up under callgrind', server, target, { connections, amount: warmup });
    const counts: number[] = [];
    for (let rep = 1; rep <= reps; rep++) {
      await control('-z');
      const measured = await drive(logger, 'counted under callgrind', server, target, { connections, amount: requests });
      await control('-d');
      const dump = `${out}.${rep}`;
      // The dump is written when valgrind next polls for commands: wait for it, within a minute.
      for (let waited = 0; !(await readdir(dir)).includes(path.basename(dump)); waited += 100) {
        if (waited > 60_000) throw new Error(`callgrind wrote no ${dump}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const summary = /^summary: (\d+)$/m.exec(await readFile(dump, 'utf8'));
      if (!summary) throw new Error(`${dump} has no summary line`);
      counts.push(Number(summary[1]) / measured.answered);
    }
    return counts;
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

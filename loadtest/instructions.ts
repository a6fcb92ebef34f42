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

export interface InstructionCounts {
  /** Each rep's instructions per answered request. */
  readonly perRequest: number[];
  /** The instructions per request of each function (instructionsByFunction), in the rep whose count is the median. */
  readonly byFunction: Map<string, number>;
}

/**
 * Each rep's instructions per answered request of `command`, a Node.js command, serving `target`,
 * and where they went. V8 is asked to write its perf map (`--perf-basic-prof`), which names the
 * code it compiles, for callgrind's unnamed functions.
 */
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
): Promise<InstructionCounts> {
  const dir = await mkdtemp(path.join(tmpdir(), 'callgrind-'));
  const out = path.join(dir, 'callgrind.out');
  const [node, ...args] = command;
  const underValgrind = [VALGRIND, '--tool=callgrind', `--callgrind-out-file=${out}`, '--smc-check=all-non-file', node!, '--perf-basic-prof', `--perf-basic-prof-path=${dir}`, ...args];
  const server = await spawnServer(options.env ?? {}, { waitFor: options.waitFor, command: options.launch?.(underValgrind) ?? underValgrind });
  // vgdb names its pipe after the user and HOST of the process it talks to, and spawnServer sets HOST.
  const control = (flag: string) => run('callgrind_control', [flag, String(server.child.pid)], { env: { ...process.env, HOST: options.env?.HOST ?? SERVER_HOST } });
  try {
    await drive(logger, 'warm-up under callgrind', server, target, { connections, amount: warmup });
    const counted: { perRequest: number; dump: string; answered: number }[] = [];
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
      counted.push({ perRequest: Number(summary[1]) / measured.answered, dump, answered: measured.answered });
    }
    const middle = [...counted].sort((a, b) => a.perRequest - b.perRequest)[Math.floor(counted.length / 2)]!;
    const byFunction = instructionsByFunction(await readFile(middle.dump, 'utf8'), await readFile(path.join(dir, `perf-${server.child.pid}.map`), 'utf8'));
    for (const [name, instructions] of byFunction) byFunction.set(name, instructions / middle.answered);
    return { perRequest: counted.map(({ perRequest }) => perRequest), byFunction };
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A line of V8's perf map: where a piece of compiled code starts, how long it is, and its name. */
interface CompiledCode {
  readonly start: bigint;
  readonly end: bigint;
  readonly name: string;
}

/**
 * A readable name for V8's name of compiled code: the function and its file's name or its module,
 * whichever tier compiled it (`JS:*'accept file:///…/server.mjs:70052:13` → `accept (server.mjs)`,
 * `JS:*'Readable.on node:internal/streams/readable:1143:33` → `Readable.on
 * (node:internal/streams/readable)`, `JS:wasm-function[398]-398-turbofan` → `wasm-function[398]`);
 * an anonymous function keeps its line.
 */
export function compiledName(name: string): string {
  const wasm = /wasm-function\[\d+\]/.exec(name);
  if (wasm) return wasm[0];
  const js = /^JS:[*+~^]?'?(\S*) (\S+?):(\d+):\d+$/.exec(name);
  if (!js) return name;
  const [, fn, where, line] = js as unknown as [string, string, string, string];
  const file = where.startsWith('file://') ? where.slice(where.lastIndexOf('/') + 1) : where;
  return fn ? `${fn} (${file})` : `(anonymous) (${file}:${line})`;
}

/**
 * A native function's name without its return type, template arguments and parameters
 * (`heap::base::SlotCallbackResult v8::internal::Scavenger::ScavengeObject<…>(…)` →
 * `v8::internal::Scavenger::ScavengeObject`): C++ names run to hundreds of characters.
 */
export function nativeName(name: string): string {
  let plain = name.replaceAll('(anonymous namespace)', '{anonymous}');
  for (let previous = ''; previous !== plain; ) {
    previous = plain;
    plain = plain.replace(/<[^<>]*>/g, '');
  }
  plain = plain.split('(')[0]!.trim();
  const operator = plain.indexOf('operator');
  return operator >= 0 ? plain.slice(operator) : plain.slice(plain.lastIndexOf(' ') + 1);
}

/**
 * The instructions of each function in a callgrind dump (`callgrindOut`, callgrind's own format),
 * its own and not those of the functions it calls. Callgrind names code without symbols by its
 * address: V8's perf map (`perfMap`, lines of "start length name" in hex) names those it compiled
 * (compiledName), and any it does not name read "unnamed code"; native functions go by nativeName.
 */
export function instructionsByFunction(callgrindOut: string, perfMap: string): Map<string, number> {
  const compiled: CompiledCode[] = perfMap
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start, length, ...name] = line.split(' ');
      return { start: BigInt(`0x${start}`), end: BigInt(`0x${start}`) + BigInt(`0x${length}`), name: name.join(' ') };
    })
    .sort((a, b) => (a.start < b.start ? -1 : 1));
  const nameOf = (fn: string): string => {
    const bare = fn.replace(/'\d+$/, '');
    if (!/^0x[0-9a-f]+$/i.test(bare)) return nativeName(bare);
    const address = BigInt(bare);
    let [low, high] = [0, compiled.length - 1];
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (compiled[mid]!.start <= address) low = mid + 1;
      else high = mid - 1;
    }
    const code = compiled[high];
    return code && address < code.end ? compiledName(code.name) : 'unnamed code';
  };
  // Names are compressed: "(id) name" defines an id, "(id)" alone refers to it.
  const functions = new Map<string, string>();
  const expand = (text: string) => {
    const compressed = /^\((\d+)\)(?: (.*))?$/.exec(text);
    if (!compressed) return text;
    if (compressed[2] !== undefined) functions.set(compressed[1]!, compressed[2]);
    return functions.get(compressed[1]!) ?? text;
  };
  const instructions = new Map<string, number>();
  let positions = 1;
  let current = '';
  // The cost line after calls= is what the call cost in all, the callee's, not the caller's own.
  let callCost = false;
  for (const line of callgrindOut.split('\n')) {
    if (line.startsWith('positions:')) positions = line.slice('positions:'.length).trim().split(/\s+/).length;
    else if (line.startsWith('fn=')) current = nameOf(expand(line.slice(3)));
    else if (line.startsWith('cfn=')) expand(line.slice(4));
    else if (line.startsWith('calls=')) callCost = true;
    else if (/^[\d+*-]/.test(line)) {
      if (callCost) callCost = false;
      else instructions.set(current, (instructions.get(current) ?? 0) + Number(line.split(/\s+/)[positions] ?? 0));
    }
  }
  return instructions;
}

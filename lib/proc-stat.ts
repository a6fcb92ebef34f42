import { readFileSync } from 'node:fs';

/**
 * What Linux's /proc/PID/stat says of a process (proc(5)): its state (R running, S asleep, Z a
 * zombie, ...) and the CPU time of all its threads so far, user and system, in clock ticks
 * (`getconf CLK_TCK` a second). Throws where the process or /proc is not there.
 */
export function processStat(pid: number): { readonly state: string; readonly cpuTicks: number } {
  // The fields after the command's name (which may hold spaces and parentheses) start at the
  // state, field 3; utime and stime are fields 14 and 15.
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

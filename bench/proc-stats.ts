/**
 * CPU and memory of processes, read from /proc (Linux): what the benchmarks use to say where the
 * CPU of a lead went. CPU is utime + stime of the process (not of its children), in ms.
 */
import fs from 'node:fs';

export type CpuSample = Record<string, number>;

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

/** Summed utime + stime of the given processes, in ms; a process that is gone counts 0. */
export function cpuMsOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // gone
    }
  }
  return (ticks * 1000) / TICKS_PER_S;
}

/** Resident set size in MB (VmRSS), NaN when the process is gone. */
export function rssMbOf(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

/** Every PostgreSQL server process on the machine (the postmaster and its backends). */
export function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm === 'postgres' || comm.startsWith('postgres')) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

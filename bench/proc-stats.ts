import { readFile } from 'node:fs/promises';

/** CPU time and peak memory of a process, read from /proc (Linux). */
export interface ProcSample {
  cpuSeconds: number;
  rssBytes: number;
  peakRssBytes: number;
  at: number;
}

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux x86_64

export async function sampleProcess(pid: number): Promise<ProcSample> {
  const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { cpuSeconds: (utime + stime) / CLOCK_TICKS, rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM'), at: performance.now() };
}

/** CPU use between two samples, in cores (1.0 = one core busy). */
export function cpuCores(from: ProcSample, to: ProcSample): number {
  return (to.cpuSeconds - from.cpuSeconds) / ((to.at - from.at) / 1000);
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
export interface SystemSample {
  busy: number;
  total: number;
}

export async function sampleSystem(): Promise<SystemSample> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busy: total - idle, total };
}

/** Cores busy machine-wide between two samples (anything running, not only the benchmark). */
export function systemBusyCores(from: SystemSample, to: SystemSample, cores: number): number {
  const total = to.total - from.total;
  return total > 0 ? ((to.busy - from.busy) / total) * cores : 0;
}

export async function loadAverage(): Promise<[number, number, number]> {
  const [one, five, fifteen] = (await readFile('/proc/loadavg', 'utf8')).split(' ').map(Number);
  return [one ?? 0, five ?? 0, fifteen ?? 0];
}

/**
 * Samples a process's RSS every `intervalMs` until stopped; reports the highest seen.
 * (VmHWM is the peak over the whole life of the process, start-up included.)
 */
export function watchRss(pid: number, intervalMs = 200): { stop(): Promise<{ maxRssBytes: number; peakRssBytes: number }> } {
  let maxRssBytes = 0;
  let peakRssBytes = 0;
  const tick = async () => {
    try {
      const sample = await sampleProcess(pid);
      maxRssBytes = Math.max(maxRssBytes, sample.rssBytes);
      peakRssBytes = Math.max(peakRssBytes, sample.peakRssBytes);
    } catch {
      // the process is gone
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await tick();
      return { maxRssBytes, peakRssBytes };
    },
  };
}

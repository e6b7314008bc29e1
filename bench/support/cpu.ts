import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * CPU accounting from /proc, to tell where the time of a run went: the service process, this
 * (load-generating) process, and the whole machine (other engineers' work included).
 */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far; 0 when it cannot be read. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Busy and total jiffies of all cores since boot. */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const total = values.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export interface CpuWindow {
  /** CPU seconds used by `pid` (if given) and by this process, and the machine's busy share, since `start`. */
  end(): { pidSeconds: number; selfSeconds: number; machineBusy: number; cores: number };
}

export function cpuWindow(pid?: number): CpuWindow {
  const pid0 = pid === undefined ? 0 : processCpuSeconds(pid);
  const self0 = process.cpuUsage();
  const machine0 = machineTicks();
  return {
    end() {
      const self = process.cpuUsage(self0);
      const machine = machineTicks();
      const total = machine.total - machine0.total;
      return {
        pidSeconds: pid === undefined ? 0 : processCpuSeconds(pid) - pid0,
        selfSeconds: (self.user + self.system) / 1e6,
        machineBusy: total > 0 ? (machine.busy - machine0.busy) / total : 0,
        cores: os.availableParallelism(),
      };
    },
  };
}

/**
 * A progress bar without a dependency: on a terminal one line redrawn with \r (at most
 * ten times a second); otherwise (a pipe, a CI log) a plain line per 10 % and per phase.
 */
export interface ProgressCounts {
  done: number;
  total: number;
  acknowledged: number;
  serverErrors: number;
  failed: number;
  /** Replaces the acknowledged/5xx/failed counts after the bar. */
  detail?: string;
}

export interface Progress {
  phase(label: string): void;
  update(counts: ProgressCounts): void;
  /** Ends the current bar (a newline on a terminal). */
  finish(): void;
}

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const WIDTH = 28;

export function createProgress(stream: ProgressStream, options: { enabled: boolean }): Progress {
  if (!options.enabled) return { phase: () => {}, update: () => {}, finish: () => {} };
  const tty = stream.isTTY === true;
  let label = '';
  let lastDraw = 0;
  let lastDecile = -1;
  let open = false;
  let pending: ProgressCounts | null = null;

  const line = (counts: ProgressCounts) => {
    const ratio = counts.total > 0 ? Math.min(1, counts.done / counts.total) : 1;
    const filled = Math.round(ratio * WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
    const extra = counts.detail ?? `${counts.acknowledged} acked${counts.serverErrors ? `, ${counts.serverErrors} 5xx` : ''}${counts.failed ? `, ${counts.failed} failed` : ''}`;
    return `${label.padEnd(9)} [${bar}] ${String(counts.done).padStart(String(counts.total).length)}/${counts.total} ${extra}`;
  };

  const draw = (counts: ProgressCounts) => {
    const text = line(counts);
    // A pseudo-terminal can report 0 columns: then the width is unknown, not zero.
    const columns = stream.columns && stream.columns > 20 ? stream.columns : 120;
    stream.write(`\r${text.slice(0, columns - 1)}\x1b[K`);
    open = true;
    lastDraw = Date.now();
    pending = null;
  };

  return {
    phase(next) {
      if (open) stream.write('\n');
      open = false;
      label = next;
      lastDecile = -1;
      if (!tty) stream.write(`${next}\n`);
    },
    update(counts) {
      if (tty) {
        // Throttled, but the last update of a phase is always drawn (finish flushes it).
        if (Date.now() - lastDraw >= 100 || counts.done === counts.total) draw(counts);
        else pending = counts;
        return;
      }
      const decile = counts.total > 0 ? Math.floor((counts.done / counts.total) * 10) : 10;
      if (decile !== lastDecile) {
        lastDecile = decile;
        stream.write(`${line(counts)}\n`);
      }
    },
    finish() {
      if (tty && pending) draw(pending);
      if (open) stream.write('\n');
      open = false;
    },
  };
}

import type { Logger } from '../lib/logger.ts';

/**
 * A signal within this long of the first is the same one arriving by another path: a process
 * group's signal (Ctrl-C in a terminal, `kill -- -PGID`, systemd) reaches every process in the
 * group, and npm and cluster primaries pass it on to their children as well.
 */
const SAME_SIGNAL_MS = 1_000;

/**
 * How long past its deadline a drain that has not ended is given before the process exits 1. At
 * the deadline the drain closes what is still open itself (see startServer); this only catches a
 * drain that hangs.
 */
export const FORCED_EXIT_GRACE_MS = 2_000;

/** The server's processes' title, set once their signal handlers are in place (see server.ts). */
export const PROCESS_TITLE = 'anomaly-serve';

export interface Drain {
  readonly logger: Logger;
  /**
   * What a signal after the first does: exit 1 at once (a single process, or the cluster primary),
   * or nothing (a cluster worker, whose primary is the one to force an exit).
   */
  readonly repeat: 'exit' | 'ignore';
  /** SHUTDOWN_TIMEOUT_SECONDS: the drain must be over this long after the first signal. */
  readonly timeoutSeconds: number;
  /** Drains the process, given when it must be over (ms since the epoch); the process exits 0 once it resolves, 1 if it rejects. */
  readonly run: (deadline: number) => Promise<void>;
}

/**
 * SIGTERM and SIGINT, from the entry point's first line, before anything slow is imported: a pod
 * is sent SIGTERM while it starts too, and a signal without a handler would kill the process (or,
 * as a container's PID 1, be ignored until the grace period ends in SIGKILL). Until `serving` is
 * called nothing listens, so nothing can be lost: a signal ends the process at once with status 0.
 * After it, the first signal starts the drain.
 */
export class ShutdownSignals {
  private firstAt: number | undefined;
  private drain: Drain | undefined;
  private logger: Logger | undefined;

  constructor() {
    const onSignal = (signal: NodeJS.Signals) => this.onSignal(signal);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  /** Where a signal that arrives while the process starts is logged, once there is a logger. */
  useLogger(logger: Logger): void {
    this.logger = logger;
  }

  /** The process accepts connections: from now on a signal drains it with `drain`. */
  serving(drain: Drain): void {
    this.drain = drain;
  }

  private onSignal(signal: NodeJS.Signals): void {
    const { drain } = this;
    if (drain === undefined) {
      this.logger?.info({ signal }, 'signal while starting: nothing is served yet, exiting');
      process.exit(0);
    }
    if (this.firstAt !== undefined) {
      if (drain.repeat === 'ignore' || Date.now() - this.firstAt < SAME_SIGNAL_MS) return;
      drain.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    this.firstAt = Date.now();
    const deadline = this.firstAt + drain.timeoutSeconds * 1000;
    drain.logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      drain.logger.error({ timeoutSeconds: drain.timeoutSeconds }, 'the drain did not end by its deadline: exiting now');
      process.exit(1);
    }, deadline - Date.now() + FORCED_EXIT_GRACE_MS).unref();
    drain.run(deadline).then(
      () => process.exit(0),
      (error: unknown) => {
        drain.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  }
}

import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs (one object a line), as log collectors such as Cloud Logging expect.
 * Command-line tools log to stderr so that stdout carries only their results.
 */
export function createLogger(name: string, options: { level?: string; stream?: 'stdout' | 'stderr' } = {}): Logger {
  const fd = options.stream === 'stderr' ? 2 : 1;
  return pino(
    {
      name,
      level: options.level ?? 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      // Cloud Logging reads the severity from this field.
      formatters: { level: (label) => ({ level: label, severity: label.toUpperCase() }) },
    },
    pino.destination({ fd, sync: true }),
  );
}

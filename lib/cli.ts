import { rmSync } from 'node:fs';
import { constants } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createLogger, type Logger } from './logger.ts';

/** Bad arguments or environment: the command prints its usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A file or resource a user handed a command that cannot be used (a data file, a model, a
 * backend): the command says what and where, and exits 2 without its usage.
 */
export class InputError extends Error {
  override name = 'InputError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** A command's options and its other arguments (such as a file to read). */
export function parseCommandLine<T extends Options>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A command's options, for a command that takes nothing else. */
export function parseOptions<T extends Options>(argv: string[], options: T) {
  const { values, positionals } = parseCommandLine(argv, options);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}: every argument is an --option`);
  return values;
}

export function numberOption(name: string, value: string | undefined, check: (n: number) => boolean, expected: string) {
  const number = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(number) || !check(number)) {
    throw new UsageError(`--${name} must be ${expected}, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** What the running command is writing and has not finished: removed if it is interrupted. */
const unfinished = new Set<string>();

/**
 * Has `target` (a file or folder being written) removed if the command is interrupted (SIGINT,
 * SIGTERM) before the returned function is called, when it is complete or gone.
 */
export function removeIfInterrupted(target: string): () => void {
  unfinished.add(target);
  return () => unfinished.delete(target);
}

/**
 * Runs a command's main function: bad input (arguments, data, model files) exits 2 with a message
 * that says what was wrong and where; anything else is a bug and exits 1 with its stack.
 */
export async function runCli(name: string, usage: string, main: (argv: string[], logger: Logger) => Promise<void>) {
  const logger = createLogger(name, { stream: 'stderr', level: process.env.LOG_LEVEL });
  const interrupted = (signal: NodeJS.Signals) => {
    for (const target of unfinished) rmSync(target, { recursive: true, force: true });
    logger.error({ removed: [...unfinished] }, `interrupted (${signal}): nothing half-written is left`);
    process.exit(128 + constants.signals[signal]);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage);
    return;
  }
  try {
    await main(argv, logger);
  } catch (error) {
    if (error instanceof UsageError) {
      logger.error(error.message);
      process.stderr.write(`\n${usage}`);
      process.exitCode = 2;
    } else if (error instanceof InputError) {
      logger.error(error.message);
      process.exitCode = 2;
    } else {
      logger.error({ err: error }, 'unexpected failure');
      process.exitCode = 1;
    }
  }
}

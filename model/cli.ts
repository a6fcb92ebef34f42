import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BackendUnavailableError, fallbackNotice, isBackendName, selectBackend, type BackendName } from './backend.ts';
import { ArtifactError, nameSchema } from './artifact.ts';
import { createLogger, type Logger } from './logger.ts';
import { DataFileError, type LabelLayout } from './data.ts';

/** Bad arguments or environment: the command prints its usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The data set the project trains on, when neither --data nor ECG_CSV names another. */
export const DEFAULT_ECG_CSV = '../shared/data/ecg5000/ecg.csv';
export const DEFAULT_MODEL_DIR = 'model/artifacts';

export function defaultDataPath(): string {
  return process.env.ECG_CSV || DEFAULT_ECG_CSV;
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

type LabelOptions = { readonly 'label-column'?: string; readonly 'normal-label'?: string };

/** --label-column (1-based, "last", or with `unlabelled`, "none": every row normal) and --normal-label. */
export function labelLayoutOption(options: LabelOptions, mode: { unlabelled: false }): LabelLayout & { readonly labelColumn: number | 'last' };
export function labelLayoutOption(options: LabelOptions, mode: { unlabelled: boolean }): LabelLayout;
export function labelLayoutOption(options: LabelOptions, { unlabelled }: { unlabelled: boolean }): LabelLayout {
  const column = options['label-column'];
  const labelColumn =
    column === 'last' || (unlabelled && column === 'none')
      ? column
      : numberOption('label-column', column, (n) => Number.isInteger(n) && n > 0, unlabelled ? 'a column number from 1, "last" or "none"' : 'a column number from 1, or "last"');
  return { labelColumn, normalLabel: numberOption('normal-label', options['normal-label'], Number.isFinite, 'a number') };
}

/** Checks options that name something in URLs and requests (--name, --input-name) against nameSchema. */
export function checkNameOptions<K extends string>(options: Readonly<Partial<Record<K, string | boolean | undefined>>>, keys: readonly K[]): void {
  for (const key of keys) {
    const checked = nameSchema.safeParse(options[key]);
    if (!checked.success) throw new UsageError(`--${key} must be ${checked.error.issues[0]!.message}; got ${JSON.stringify(options[key])}`);
  }
}

export function numberOption(name: string, value: string | undefined, check: (n: number) => boolean, expected: string) {
  const number = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(number) || !check(number)) {
    throw new UsageError(`--${name} must be ${expected}, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** The backend named by BACKEND, or the fastest available one (saying so when it is not native). */
export async function backendFromEnvironment(logger: Logger): Promise<BackendName> {
  const requested = process.env.BACKEND || undefined;
  if (requested !== undefined && !isBackendName(requested)) {
    throw new UsageError(`BACKEND must be tensorflow, wasm or cpu, got ${JSON.stringify(requested)}`);
  }
  const choice = await selectBackend(requested);
  const notice = fallbackNotice(choice);
  if (notice) logger.warn({ backend: choice.backend, skipped: choice.skipped }, notice);
  return choice.backend;
}

/**
 * Runs a command's main function: bad input (arguments, data, model files) exits 2 with a message
 * that says what was wrong and where; anything else is a bug and exits 1 with its stack.
 */
export async function runCli(name: string, usage: string, main: (argv: string[], logger: Logger) => Promise<void>) {
  const logger = createLogger(name, { stream: 'stderr', level: process.env.LOG_LEVEL });
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
    } else if (error instanceof DataFileError || error instanceof ArtifactError || error instanceof BackendUnavailableError) {
      logger.error(error.message);
      process.exitCode = 2;
    } else {
      logger.error({ err: error }, 'unexpected failure');
      process.exitCode = 1;
    }
  }
}

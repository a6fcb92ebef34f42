import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'vitest';

/**
 * The project's TypeScript commands (train, evaluate, import, plan) run as `npm run` runs them,
 * and what they log: JSON lines on stderr.
 */

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `script` with tsx and resolves with its exit code and output; never throws on a non-zero exit. */
export async function runCommand(script: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { ...process.env, ...options.env },
      timeout: options.timeout,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as CommandResult;
    return { code, stdout, stderr };
  }
}

/** The structured log lines a command wrote to stderr. */
export const logLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: string; msg: string; [key: string]: unknown });

/** The one error a command logged (the test fails if it logged none, or more). */
export function loggedError(stderr: string): string {
  const errors = logLines(stderr).filter((line) => line.level === 'error');
  expect(errors).toHaveLength(1);
  return errors[0]!.msg;
}

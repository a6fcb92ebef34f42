import { execFileSync } from 'node:child_process';
import { describe } from 'vitest';

/**
 * `describe` for a suite that needs something outside the repository (a data set, a tool). Where
 * it is missing the suite is skipped with a note on how to get it, except in CI, which provides
 * everything (.ci/run): there the missing piece fails the run.
 */
export function describeIf(available: boolean, missing: string, name: string, body: () => void): void {
  if (available) {
    describe(name, body);
    return;
  }
  if (process.env.CI) throw new Error(`${missing} (CI runs every test)`);
  // The reporter lists skipped tests only by count: say which, and why, in the output.
  console.warn(`skipped "${name}": ${missing}`);
  describe.skip(`${name} [skipped: ${missing}]`, body);
}

/** Whether a command is on the PATH. */
function installed(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `describe` for suites that run a real tool (Locust, Prometheus, Chromium) from a Debian package. */
export function describeWithCommand(command: string, debianPackage: string, name: string, body: () => void): void {
  describeIf(installed(command), `${command} is not installed: apt-get install -y ${debianPackage}`, name, body);
}

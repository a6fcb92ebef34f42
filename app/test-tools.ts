import { execFileSync } from 'node:child_process';
import { describe } from 'vitest';

/** Whether a command is on the PATH. */
function installed(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * `describe` for suites that run a real tool (Locust, Prometheus, Chromium). Where the tool is
 * missing the suite is skipped with the command that installs it, except in CI (which installs
 * it in .ci/run): there the missing tool fails the run.
 */
export function describeWithCommand(command: string, debianPackage: string, name: string, body: () => void): void {
  if (installed(command)) {
    describe(name, body);
    return;
  }
  const hint = `${command} is not installed: apt-get install -y ${debianPackage}`;
  if (process.env.CI) throw new Error(`${hint} (CI runs every test)`);
  describe.skip(`${name} [skipped: ${hint}]`, body);
}

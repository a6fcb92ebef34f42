import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'cli-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('runCli, interrupted', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('on %s removes what the command had not finished writing, and exits %i', async (signal, code) => {
    const dir = path.join(scratch, signal);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/interrupted-command.ts', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'close'); // once its stderr is read to the end, too
    await once(child.stdout, 'data');
    expect(existsSync(path.join(dir, 'half-written'))).toBe(true);
    child.kill(signal);
    const [exitCode] = await exited;
    expect(exitCode).toBe(code);
    expect(existsSync(dir)).toBe(false);
    expect(stderr).toContain(`interrupted (${signal}): nothing half-written is left`);
  });
});

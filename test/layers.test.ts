import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/** The ESLint rule that holds the layers of ARCHITECTURE.md, run on imports written for it. */
describe('the layers', () => {
  const eslint = new ESLint();
  const restricted = async (filePath: string, from: string) => {
    const [result] = await eslint.lintText(`import { x } from '${from}';\nexport const y = x;\n`, { filePath });
    return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
  };

  it.each([
    ['model/zz.ts', '../app/settings.ts'],
    ['model/zz.ts', '../charts/main.ts'],
    ['lib/zz.ts', '../model/artifact.ts'],
    ['app/zz.ts', '../charts/anomaly-detector.ts'],
    ['app/protocols/zz.ts', '../../test/describe-if.ts'],
    ['charts/zz.ts', '../loadtest/plan.ts'],
    ['loadtest/zz.ts', '../test/ecg-data.ts'],
  ])('refuses %s importing %s', async (file, from) => {
    expect(await restricted(file, from)).toEqual([expect.stringContaining('imports point one way')]);
  });

  it.each([
    ['model/zz.ts', '../lib/logger.ts'],
    ['app/zz.ts', '../model/artifact.ts'],
    ['charts/zz.ts', '../app/settings.ts'],
    ['loadtest/zz.ts', '../lib/server-process.ts'],
    ['app/zz.test.ts', '../test/describe-if.ts'],
  ])('lets %s import %s', async (file, from) => {
    expect(await restricted(file, from)).toEqual([]);
  });
});

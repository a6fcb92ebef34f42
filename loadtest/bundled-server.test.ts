import { describe, expect, it } from 'vitest';
import { spawnServer } from '../lib/server-process.ts';
import { buildBundledServer } from './bundled-server.ts';

/**
 * The bundle the benchmark and the plan run. For the tensorflow backend it is the tensorflow
 * image's, which imports TensorFlow.js from node_modules, where tfjs-node registers its backend:
 * here it serves with the repository's TensorFlow.js (on wasm: tfjs-node cannot install here).
 */
describe('the bundled server', () => {
  it('for tensorflow: no TensorFlow.js inside; it serves with the one in node_modules', async () => {
    const bundled = await buildBundledServer('tensorflow');
    try {
      expect(bundled.packages.filter((name) => name.startsWith('@tensorflow/'))).toEqual([]);
      const server = await spawnServer({ BACKEND: 'wasm' }, { command: bundled.command });
      try {
        expect((await fetch(`${server.url}/v2/health/ready`)).status).toBe(200);
      } finally {
        expect(await server.stop()).toBe(0);
      }
    } finally {
      await bundled.dispose();
    }
  });
});

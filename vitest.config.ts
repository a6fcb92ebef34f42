import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{lib,app,model,charts,loadtest,scripts,test}/**/*.test.ts'],
    // Most test files spend their time waiting on child processes (servers, the commands, Locust,
    // Prometheus, Chromium), so half again as many files as cores run at once; on 2 cores the suite
    // takes about half the time it took one file a core, and the timings the tests assert (drains,
    // signals, timeouts) stay well inside their margins.
    maxWorkers: '150%',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

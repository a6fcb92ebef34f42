import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{app,model,charts,loadtest,scripts,test}/**/*.test.ts'],
    // Tests load TensorFlow.js and start real servers; one file at a time per core keeps them steady.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

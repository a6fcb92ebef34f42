import { serve } from '@hono/node-server';
import { Hono } from 'hono';

/**
 * The benchmark's baseline: a bare Hono endpoint that parses the same JSON body as the scoring
 * endpoint and answers a constant, so the ratio isolates the cost of scoring.
 */
const app = new Hono();
app.post('/predict', async (c) => {
  await c.req.json();
  return c.json({ predictions: [{ reconstruction_error: 0, is_anomaly: false }] });
});
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.PORT ?? 0) }, (info) => {
  process.stdout.write(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${info.port}` }) + '\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

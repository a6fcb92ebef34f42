import { PATHS } from './contract.ts';
import { loadConfig } from './settings.ts';

/**
 * The image's HEALTHCHECK, for a plain `docker run` (Kubernetes uses its own probes): exit 0 when
 * the server in this container answers its readiness path on its PORT, 1 otherwise.
 */
const { port } = loadConfig();
fetch(`http://127.0.0.1:${port}${PATHS.ready}`, { signal: AbortSignal.timeout(2_000) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  () => process.exit(1),
);

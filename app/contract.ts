/**
 * The facts the server and the Kubernetes charts share, so that a path or the user cannot be
 * changed on one side only (the settings are app/settings.ts, the metric names app/metrics.ts).
 */

/** HTTP limits set on the server, not configurable: a request may carry at most this much header. */
export const HTTP_LIMITS = {
  /** Headers past the 100th are dropped (Node.js' default keeps 2,000). */
  maxHeadersCount: 100,
  /** A request whose headers are larger is answered 431 (Node.js' default, set on purpose). */
  maxHeaderSizeBytes: 16 * 1024,
} as const;

/** The paths that the routes, the API key's exemptions and the charts' probes and scrapes share. */
export const PATHS = {
  /** The Open Inference Protocol's health endpoints, which the kubelet probes. */
  live: '/v2/health/live',
  ready: '/v2/health/ready',
  /** On METRICS_PORT only. */
  metrics: '/metrics',
  /** The web page, its script, and the model's facts it (and the load test) reads. */
  page: '/',
  pageScript: '/ui/app.js',
  pageModel: '/ui/model',
} as const;

/**
 * What is served without a key: the health probes (kubelets and load balancers send none) and the
 * page's static files (the page asks for a key itself).
 */
export const OPEN_PATHS: ReadonlySet<string> = new Set([PATHS.live, PATHS.ready, PATHS.page, PATHS.pageScript]);

/** The numeric user (and group) the server runs as: the image's USER and the pods' runAsUser. */
export const CONTAINER_USER = 10001;

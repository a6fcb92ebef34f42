/** What the AnomalyDetector and the LoadTest both name: kept here so neither imports the other. */

/** Where the pods find the API keys Secret, and the entry that holds the keys. */
export const API_KEYS_VOLUME = { mountPath: '/etc/anomaly-serve/api-keys', key: 'keys' } as const;

/** The label every pod of a LoadTest carries, which the server's NetworkPolicy admits. */
export const LOAD_TEST_POD_LABELS = { 'app.kubernetes.io/name': 'locust' } as const;

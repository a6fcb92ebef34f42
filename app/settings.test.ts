import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, ENV, environmentOf, loadConfig, SETTINGS } from './settings.ts';

describe('loadConfig', () => {
  it('has a default for every variable', () => {
    expect(loadConfig({})).toEqual({
      host: '0.0.0.0',
      port: 8080,
      metricsPort: 8082,
      modelName: undefined,
      modelPath: 'model/artifacts',
      threshold: undefined,
      driftWindowSize: 1000,
      driftWindowSeconds: 600,
      maxBatchSize: 64,
      maxQueuedRows: 4096,
      maxQueueWaitSeconds: 1,
      maxBodyBytes: 1048576,
      compressionThresholdBytes: 1024,
      webConcurrency: 1,
      shutdownDelaySeconds: 5,
      shutdownTimeoutSeconds: 25,
      headersTimeoutSeconds: 10,
      requestTimeoutSeconds: 15,
      writeTimeoutSeconds: 15,
      keepAliveTimeoutSeconds: 620,
      logLevel: 'info',
      backend: undefined,
      versionLabels: undefined,
      apiKeysFile: undefined,
    });
  });

  it('reads each variable', () => {
    const config = loadConfig({
      HOST: '127.0.0.1',
      PORT: '9000',
      METRICS_PORT: '9001',
      MODEL_NAME: 'ecg',
      MODEL_PATH: '/models/ecg',
      THRESHOLD: '0.05',
      MAX_BATCH_SIZE: '32',
      MAX_QUEUED_ROWS: '256',
      MAX_QUEUE_WAIT_SECONDS: '0.25',
      MAX_BODY_BYTES: '65536',
      COMPRESSION_THRESHOLD_BYTES: '0',
      WEB_CONCURRENCY: '4',
      SHUTDOWN_DELAY_SECONDS: '0',
      SHUTDOWN_TIMEOUT_SECONDS: '10',
      REQUEST_TIMEOUT_SECONDS: '10',
      WRITE_TIMEOUT_SECONDS: '5',
      LOG_LEVEL: 'debug',
      BACKEND: 'cpu',
      MODEL_VERSION_LABELS: 'stable=81283393578164,canary=17',
      API_KEYS_FILE: '/etc/anomaly-serve/api-keys/keys',
    });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 9000,
      metricsPort: 9001,
      threshold: 0.05,
      maxBatchSize: 32,
      maxQueuedRows: 256,
      maxQueueWaitSeconds: 0.25,
      compressionThresholdBytes: 0,
      requestTimeoutSeconds: 10,
      writeTimeoutSeconds: 5,
      webConcurrency: 4,
      backend: 'cpu',
      versionLabels: { stable: '81283393578164', canary: '17' },
      apiKeysFile: '/etc/anomaly-serve/api-keys/keys',
    });
    expect(loadConfig({ PORT: ' 9000 ', THRESHOLD: '2.5e-2' })).toMatchObject({ port: 9000, threshold: 0.025 });
  });

  it.each([
    ['PORT', 'http', /^PORT="http" is invalid: expected a decimal integer/],
    ['PORT', '70000', /^PORT="70000" is invalid: .*<=65535/],
    ['PORT', '0x1F90', /^PORT="0x1F90" is invalid: expected a decimal integer/],
    ['PORT', '1e3', /^PORT="1e3" is invalid: expected a decimal integer/],
    ['PORT', '', /^PORT="" is empty: give it a value, or unset it for the default/],
    ['THRESHOLD', ' ', /^THRESHOLD=" " is empty/],
    ['THRESHOLD', 'Infinity', /^THRESHOLD="Infinity" is invalid: expected a non-negative decimal number/],
    ['MAX_BODY_BYTES', '0b1010000000000', /^MAX_BODY_BYTES="0b1010000000000" is invalid: expected a decimal integer/],
    ['MODEL_PATH', '', /^MODEL_PATH="" is empty/],
    ['MAX_BATCH_SIZE', '0', /^MAX_BATCH_SIZE="0" is invalid: .*>=1/],
    ['MAX_BATCH_SIZE', '2.5', /^MAX_BATCH_SIZE="2.5" is invalid: .*int/],
    ['MAX_QUEUED_ROWS', '0', /^MAX_QUEUED_ROWS="0" is invalid: .*>=1/],
    ['MAX_QUEUE_WAIT_SECONDS', '0', /^MAX_QUEUE_WAIT_SECONDS="0" is invalid/],
    ['WRITE_TIMEOUT_SECONDS', '0', /^WRITE_TIMEOUT_SECONDS="0" is invalid/],
    ['THRESHOLD', '-0.1', /^THRESHOLD="-0.1" is invalid/],
    ['WEB_CONCURRENCY', 'many', /^WEB_CONCURRENCY="many" is invalid/],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL="loud" is invalid: .*"info"/],
    ['BACKEND', 'gpu', /^BACKEND="gpu" is invalid: .*"tensorflow"\|"wasm"\|"cpu"/],
    ['MODEL_NAME', 'my model', /^MODEL_NAME="my model" is invalid: letters, digits/],
    ['SHUTDOWN_DELAY_SECONDS', '-1', /^SHUTDOWN_DELAY_SECONDS="-1" is invalid/],
    ['MODEL_VERSION_LABELS', 'stable', /^MODEL_VERSION_LABELS="stable" is invalid: expected label=version pairs/],
    ['MODEL_VERSION_LABELS', 'stable=v1', /^MODEL_VERSION_LABELS="stable=v1" is invalid: expected label=version pairs/],
    ['DRIFT_WINDOW_SIZE', '5', /^DRIFT_WINDOW_SIZE="5" is invalid: .*>=10/],
    ['DRIFT_WINDOW_SIZE', '10000000', /^DRIFT_WINDOW_SIZE="10000000" is invalid: .*<=100000/],
    ['DRIFT_WINDOW_SECONDS', '0', /^DRIFT_WINDOW_SECONDS="0" is invalid/],
  ])('rejects %s=%s, naming the variable and the value', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('rejects a headers timeout longer than the request timeout', () => {
    expect(() => loadConfig({ HEADERS_TIMEOUT_SECONDS: '40', REQUEST_TIMEOUT_SECONDS: '30', SHUTDOWN_TIMEOUT_SECONDS: '60' })).toThrow(
      /HEADERS_TIMEOUT_SECONDS=40 must not be longer than REQUEST_TIMEOUT_SECONDS=30: the headers are part of the request/,
    );
    expect(() => loadConfig({ REQUEST_TIMEOUT_SECONDS: '0' })).toThrow(/REQUEST_TIMEOUT_SECONDS="0" is invalid/);
  });

  it('rejects the metrics on the serving port, but takes two ephemeral ports', () => {
    expect(() => loadConfig({ PORT: '9000', METRICS_PORT: '9000' })).toThrow(/METRICS_PORT=9000 is also PORT: the metrics need a port of their own/);
    expect(() => loadConfig({ METRICS_PORT: '8080' })).toThrow(/METRICS_PORT=8080 is also PORT/);
    expect(loadConfig({ PORT: '0', METRICS_PORT: '0' })).toMatchObject({ port: 0, metricsPort: 0 });
  });

  it('rejects a shutdown timeout that cannot hold the delay and a whole request', () => {
    expect(() => loadConfig({ SHUTDOWN_DELAY_SECONDS: '30', SHUTDOWN_TIMEOUT_SECONDS: '20' })).toThrow(
      /SHUTDOWN_DELAY_SECONDS=30 plus REQUEST_TIMEOUT_SECONDS=15 must not be longer than SHUTDOWN_TIMEOUT_SECONDS=20/,
    );
    expect(() => loadConfig({ REQUEST_TIMEOUT_SECONDS: '30' })).toThrow(/SHUTDOWN_DELAY_SECONDS=5 plus REQUEST_TIMEOUT_SECONDS=30 must not be longer than SHUTDOWN_TIMEOUT_SECONDS=25/);
    expect(loadConfig({ SHUTDOWN_DELAY_SECONDS: '10', REQUEST_TIMEOUT_SECONDS: '15' })).toMatchObject({ shutdownTimeoutSeconds: 25 });
  });
});

describe('environmentOf', () => {
  it('writes settings as the variables the server reads, in the table’s order, and reads back as them', () => {
    const settings = { threshold: 0.05, port: 9000, logLevel: 'debug' as const, versionLabels: { stable: '17', canary: '18' }, modelName: undefined };
    const env = environmentOf(settings);
    expect(env).toEqual({ PORT: '9000', LOG_LEVEL: 'debug', THRESHOLD: '0.05', MODEL_VERSION_LABELS: 'stable=17,canary=18' });
    expect(Object.keys(env)).toEqual(['PORT', 'LOG_LEVEL', 'THRESHOLD', 'MODEL_VERSION_LABELS']);
    expect(loadConfig(env)).toMatchObject({ port: 9000, logLevel: 'debug', threshold: 0.05, versionLabels: { stable: '17', canary: '18' } });
  });

  it('writes every default as text the server reads back as that default', () => {
    const defined = Object.fromEntries(Object.entries(DEFAULTS).filter(([, value]) => value !== undefined));
    expect(loadConfig(environmentOf(defined))).toEqual(DEFAULTS);
  });

  it('refuses what the server would refuse, with the server’s message', () => {
    expect(() => environmentOf({ metricsPort: 8080 })).toThrow(/METRICS_PORT=8080 is also PORT/);
    expect(() => environmentOf({ threshold: -1 })).toThrow(/THRESHOLD="-1" is invalid/);
    expect(() => environmentOf({ maxBatchSize: 1.5 })).toThrow(/MAX_BATCH_SIZE="1.5" is invalid/);
  });

  it('gives each setting a variable of its own', () => {
    expect(new Set(Object.values(ENV)).size).toBe(Object.keys(SETTINGS).length);
  });
});

import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp, createMetricsApp } from './app.ts';
import { Batcher } from './batcher.ts';
import type { Detector } from '../model/detector.ts';
import { useBundledModel } from '../test/bundled-model.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetrics, localMetrics } from './metrics.ts';
import { DriftMonitor } from './drift.ts';
import { tfServingVersion } from './protocols/tfserving.ts';
import type { LoadedModel } from './serving.ts';
import { DEFAULTS } from './settings.ts';

const MODEL = 'ecg-autoencoder';
const bundled = useBundledModel();
let detector: Detector;
let normal: number[];
let anomalous: number[];
beforeAll(() => ({ detector, normal, anomalous } = bundled));

/** The real app around the real model; `state` can be changed by a test. */
function appWith(options: { loaded?: boolean; maxBodyBytes?: number; compressionThresholdBytes?: number; apiKey?: string } = {}) {
  const metrics = createMetrics();
  const logger = createLogger('test', { level: 'silent' });
  const drift = new DriftMonitor(DEFAULTS.driftWindowSize, DEFAULTS.driftWindowSeconds);
  drift.reference = detector;
  const model: LoadedModel = { detector, batcher: new Batcher(detector, { maxBatchSize: 64, maxQueuedRows: 1024, maxQueueWaitSeconds: 1, metrics, drift, logger }) };
  const state = { model: options.loaded === false ? undefined : model, draining: false };
  const app = createApp({
    state,
    modelName: MODEL,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    compressionThresholdBytes: options.compressionThresholdBytes ?? DEFAULTS.compressionThresholdBytes,
    maxBatchSize: 64,
    metrics,
    logger,
    server: { name: 'anomaly-serve', version: 'test' },
    metricsView: localMetrics(metrics.registry, drift),
    ...(options.apiKey !== undefined && { apiKeys: { has: (key: string) => key === options.apiKey } }),
  });
  const request = (path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
    app.request(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: init.headers ?? { 'Content-Type': 'application/json' },
      body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    });
  const metricsApp = createMetricsApp({ metricsView: localMetrics(metrics.registry, drift), metrics, logger: createLogger('test', { level: 'silent' }) });
  return { app, metricsApp, state, metrics, request };
}

/** An app made once the model is loaded (describe blocks run before beforeAll). */
function useApp(options: Parameters<typeof appWith>[0] = {}) {
  const api = {} as ReturnType<typeof appWith>;
  beforeAll(() => {
    Object.assign(api, appWith(options));
  });
  return api;
}

async function expectError(response: Response, status: number, message: RegExp | string) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await response.json()) as { error: string };
  expect(body.error).toMatch(message);
}

const score = (beat: number[]) => detector.score([beat])[0]!;

describe('TensorFlow Serving REST', () => {
  const api = useApp();
  const request: typeof api.request = (...args) => api.request(...args);

  it('predicts in the row format, one prediction per instance, in order', async () => {
    const response = await request(`/v1/models/${MODEL}:predict`, { body: { instances: [normal, anomalous] } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      predictions: [
        { reconstruction_error: score(normal).reconstructionError, is_anomaly: false },
        { reconstruction_error: score(anomalous).reconstructionError, is_anomaly: true },
      ],
    });
  });

  it('accepts named instances ({"beat": [...]}) and a signature_name of serving_default', async () => {
    const response = await request(`/v1/models/${MODEL}:predict`, { body: { signature_name: 'serving_default', instances: [{ beat: anomalous }] } });
    expect(((await response.json()) as { predictions: { is_anomaly: boolean }[] }).predictions[0]!.is_anomaly).toBe(true);
  });

  it.each([
    ['a list', (rows: number[][]) => rows],
    ['named', (rows: number[][]) => ({ beat: rows })],
  ])('predicts in the columnar format with inputs as %s', async (_, inputs) => {
    const response = await request(`/v1/models/${MODEL}:predict`, { body: { inputs: inputs([anomalous, normal]) } });
    expect(await response.json()).toEqual({
      outputs: {
        reconstruction_error: [score(anomalous).reconstructionError, score(normal).reconstructionError],
        is_anomaly: [true, false],
      },
    });
  });

  it('answers POST /predict as the row format', async () => {
    const response = await request('/predict', { body: { instances: [anomalous] } });
    expect(await response.json()).toEqual({ predictions: [{ reconstruction_error: score(anomalous).reconstructionError, is_anomaly: true }] });
    await expectError(await request('/predict', { body: { inputs: [anomalous] } }), 400, /POST \/predict takes the row format/);
  });

  it('answers an input at the edge of FP32\'s range: an anomaly, with a finite score', async () => {
    const response = await request(`/v1/models/${MODEL}:predict`, { body: { instances: [Array(140).fill(3.4e38), normal] } });
    expect(response.status).toBe(200);
    const { predictions } = (await response.json()) as { predictions: { reconstruction_error: number; is_anomaly: boolean }[] };
    expect(predictions[0]!.is_anomaly).toBe(true);
    expect(predictions[0]!.reconstruction_error).toBeGreaterThan(1e37);
    expect(predictions[1]).toEqual({ reconstruction_error: score(normal).reconstructionError, is_anomaly: false });
  });

  it('looks a version label up among the labels only: "constructor" is not one', async () => {
    await expectError(await request(`/v1/models/${MODEL}/labels/constructor:predict`, { body: { instances: [normal] } }), 404, 'model "ecg-autoencoder" has no version label "constructor"; its labels are "stable", "latest"');
  });

  it('answers the attribution and the p-value with signature_name "explain", in the row and the columnar format', async () => {
    const [expected] = detector.score([anomalous], { attribution: true, pValue: true });
    const rows = await request(`/v1/models/${MODEL}:predict`, { body: { signature_name: 'explain', instances: [anomalous] } });
    expect(await rows.json()).toEqual({
      predictions: [{ reconstruction_error: expected!.reconstructionError, is_anomaly: true, attribution: expected!.attribution, p_value: expected!.pValue }],
    });
    const columns = await request(`/v1/models/${MODEL}:predict`, { body: { signature_name: 'explain', inputs: [normal, anomalous] } });
    const { outputs } = (await columns.json()) as { outputs: Record<string, unknown[]> };
    expect(Object.keys(outputs)).toEqual(['reconstruction_error', 'is_anomaly', 'attribution', 'p_value']);
    expect(outputs.attribution![1]).toEqual(expected!.attribution);
    expect(outputs.p_value![1]).toBe(expected!.pValue);
  });

  it('reports the model status and metadata, and predicts on the versioned path', async () => {
    const version = tfServingVersion(detector);
    expect(version).toMatch(/^\d+$/);
    expect(await (await request(`/v1/models/${MODEL}`)).json()).toEqual({
      model_version_status: [{ version, state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }],
    });
    expect((await request(`/v1/models/${MODEL}/versions/${version}`)).status).toBe(200);
    const metadata = (await (await request(`/v1/models/${MODEL}/metadata`)).json()) as {
      model_spec: { name: string; version: string };
      metadata: { signature_def: { signature_def: Record<string, { inputs: Record<string, { dtype: string; tensor_shape: unknown }>; outputs: Record<string, unknown> }> } };
    };
    expect(metadata.model_spec).toMatchObject({ name: MODEL, version });
    expect(metadata.metadata.signature_def.signature_def.serving_default!.inputs.beat).toEqual({
      dtype: 'DT_FLOAT',
      tensor_shape: { dim: [{ size: '-1', name: '' }, { size: '140', name: '' }], unknown_rank: false },
      name: 'beat',
    });
    const signatures = metadata.metadata.signature_def.signature_def;
    expect(Object.keys(signatures)).toEqual(['serving_default', 'explain']);
    expect(Object.keys(signatures.serving_default!.outputs)).toEqual(['reconstruction_error', 'is_anomaly']);
    expect(Object.keys(signatures.explain!.outputs)).toEqual(['reconstruction_error', 'is_anomaly', 'attribution', 'p_value']);
    const predicted = await request(`/v1/models/${MODEL}/versions/${version}:predict`, { body: { instances: [normal] } });
    expect(predicted.status).toBe(200);
    await expectError(await request(`/v1/models/${MODEL}/versions/7:predict`, { body: { instances: [normal] } }), 404, `has no version "7"; it serves version "${version}"`);
  });
});

describe('Open Inference Protocol (KServe V2)', () => {
  const api = useApp();
  const request: typeof api.request = (...args) => api.request(...args);
  const input = (data: unknown, shape: unknown = [1, 140], extra: object = {}) => ({ inputs: [{ name: 'beat', shape, datatype: 'FP32', data, ...extra }] });

  it('answers health, server metadata, model metadata and model readiness', async () => {
    expect(await (await request('/v2/health/live')).json()).toEqual({ live: true });
    expect(await (await request('/v2/health/ready')).json()).toEqual({ ready: true });
    expect(await (await request('/v2')).json()).toEqual({ name: 'anomaly-serve', version: 'test', extensions: ['binary_tensor_data', 'statistics', 'model_configuration'] });
    expect(await (await request(`/v2/models/${MODEL}/ready`)).json()).toEqual({ name: MODEL, ready: true });
    expect(await (await request(`/v2/models/${MODEL}`)).json()).toMatchObject({
      name: MODEL,
      versions: [detector.version],
      platform: 'tensorflowjs',
      inputs: [{ name: 'beat', datatype: 'FP32', shape: [-1, 140] }],
      outputs: [
        { name: 'reconstruction_error', datatype: 'FP32', shape: [-1] },
        { name: 'is_anomaly', datatype: 'BOOL', shape: [-1] },
        { name: 'reconstruction', datatype: 'FP32', shape: [-1, 140] },
        { name: 'attribution', datatype: 'FP32', shape: [-1, 140] },
        { name: 'p_value', datatype: 'FP32', shape: [-1] },
      ],
    });
  });

  it('infers from flat data, echoing the id', async () => {
    const response = await request(`/v2/models/${MODEL}/infer`, { body: { id: 'req-1', ...input([...normal, ...anomalous], [2, 140]) } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      model_name: MODEL,
      model_version: detector.version,
      id: 'req-1',
      outputs: [
        { name: 'reconstruction_error', datatype: 'FP32', shape: [2], data: [score(normal).reconstructionError, score(anomalous).reconstructionError] },
        { name: 'is_anomaly', datatype: 'BOOL', shape: [2], data: [false, true] },
      ],
    });
  });

  it('infers from nested data, on the versioned path, returning the outputs asked for', async () => {
    const response = await request(`/v2/models/${MODEL}/versions/${detector.version}/infer`, {
      body: { ...input([anomalous], [1, 140]), outputs: [{ name: 'is_anomaly' }, { name: 'reconstruction' }] },
    });
    const body = (await response.json()) as { outputs: { name: string; shape: number[]; data: unknown[] }[] };
    expect(body.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['is_anomaly', [1]],
      ['reconstruction', [1, 140]],
    ]);
    expect(body.outputs[0]!.data).toEqual([true]);
    expect(body.outputs[1]!.data).toEqual(detector.score([anomalous], { reconstruction: true })[0]!.reconstruction);
  });

  it('answers the p-value and the attribution by name: the share of calibration scores at or above, and each value\'s error, whose mean is the score', async () => {
    const response = await request(`/v2/models/${MODEL}/infer`, {
      body: { ...input([normal, anomalous], [2, 140]), outputs: [{ name: 'reconstruction_error' }, { name: 'p_value' }, { name: 'attribution' }] },
    });
    const body = (await response.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
    const [scores, pValues, attribution] = body.outputs;
    expect([pValues!.shape, attribution!.shape]).toEqual([[2], [2, 140]]);
    const calibration = detector.metadata.calibration!;
    const share = (score: number) => calibration.scores.filter((s) => s >= score).length / calibration.rows;
    expect(pValues!.data).toEqual(scores!.data.map(share));
    // The anomalous example is rarer than the threshold's false-positive rate; the normal one is common.
    expect(pValues!.data[0]).toBeGreaterThan(0.5);
    expect(pValues!.data[1]).toBeLessThan(detector.metadata.threshold.targetFpr!);
    for (const row of [0, 1]) {
      const own = attribution!.data.slice(row * 140, (row + 1) * 140);
      expect(own.every((value) => value >= 0)).toBe(true);
      expect(own.reduce((sum, value) => sum + value, 0) / 140).toBeCloseTo(scores!.data[row]!, 6);
    }
  });

  it.each([
    ['a datatype other than FP32', { inputs: [{ name: 'beat', shape: [1, 140], datatype: 'INT32', data: [] }] }, /inputs\[0\]\.datatype is the string "INT32", which does not match .* FP32/],
    ['a shape of the wrong width', { inputs: [{ name: 'beat', shape: [1, 139], datatype: 'FP32', data: [] }] }, /inputs\[0\]\.shape is \[1, 139\], which does not match the model's input; it takes \[N, 140\]/],
    ['data that does not fill the shape', { inputs: [{ name: 'beat', shape: [2, 140], datatype: 'FP32', data: Array(140).fill(0) }] }, /inputs\[0\]\.data has 140 values; shape \[2, 140\] needs 280/],
    ['an unknown input name', { inputs: [{ name: 'x', shape: [1, 140], datatype: 'FP32', data: Array(140).fill(0) }] }, /inputs\[0\]\.name is the string "x", not an input; the model's input is "beat"/],
    ['no inputs', {}, /"inputs" must be a list of one input tensor/],
    ['an unknown output', { inputs: [{ name: 'beat', shape: [1, 140], datatype: 'FP32', data: Array(140).fill(0) }], outputs: [{ name: 'z' }] }, /outputs\[0\]\.name is the string "z", not an output; the model has reconstruction_error, is_anomaly, reconstruction, attribution, p_value/],
    ['a string in the data', { inputs: [{ name: 'beat', shape: [2, 140], datatype: 'FP32', data: [...Array(150).fill(0), 'x', ...Array(129).fill(0)] }] }, /inputs\[0\]\.data, row 1: value 10 is the string "x", expected a finite number/],
    ['data nested deeper than its shape', { inputs: [{ name: 'beat', shape: [1, 140], datatype: 'FP32', data: [[...Array(139).fill(0), [0]]] }] }, 'inputs[0].data, row 0: value 139 is [0], expected a finite number'],
    ['nested data with a row that is not a list', { inputs: [{ name: 'beat', shape: [2, 140], datatype: 'FP32', data: [Array(140).fill(0), 5] }] }, 'inputs[0].data[1] is 5; nested data has a list of 140 values a row'],
    ['a value past FP32\'s range', input([...Array(5).fill(0), 1e40, ...Array(134).fill(0)]), "inputs[0].data, row 0: value 5 is 1e+40, outside FP32's finite range (±3.4028234663852886e+38)"],
    ['an output named twice (an answer as large as the client likes)', { ...input(Array(140).fill(0)), outputs: [{ name: 'is_anomaly' }, { name: 'reconstruction' }, { name: 'is_anomaly' }] }, 'outputs[2] names "is_anomaly" again; ask for each output once'],
    ['more rows than MAX_BATCH_SIZE, before the data is read', { inputs: [{ name: 'beat', shape: [65, 140], datatype: 'FP32', data: [] }] }, '65 instances in one request; at most 64 are allowed (MAX_BATCH_SIZE)'],
  ])('rejects %s with 400', async (_, body, message) => {
    await expectError(await request(`/v2/models/${MODEL}/infer`, { body }), 400, message);
  });
});

describe('bad requests get a status and a JSON error that says what and where', () => {
  const api = useApp({ maxBodyBytes: 10_000 });
  const request: typeof api.request = (...args) => api.request(...args);
  const predict = (body: unknown, headers?: Record<string, string>) => request(`/v1/models/${MODEL}:predict`, { method: 'POST', body, headers });
  const withValue = (index: number, value: unknown) => JSON.stringify({ instances: [normal, normal.map((v, i) => (i === index ? '@' : v))] }).replace('"@"', String(value));

  it.each([
    ['malformed JSON', () => '{"instances": [[1, 2,', 400, /malformed JSON in the request body/],
    ['NaN (not JSON)', () => withValue(3, 'NaN'), 400, /malformed JSON in the request body/],
    ['Infinity (not JSON)', () => withValue(3, 'Infinity'), 400, /malformed JSON in the request body/],
    ['a number as a string', () => withValue(3, '"0.5"'), 400, 'instances[1]: value 3 is the string "0.5", expected a finite number'],
    ['null', () => withValue(139, 'null'), 400, 'instances[1]: value 139 is null, expected a finite number'],
    ['a huge number that overflows to Infinity', () => withValue(0, '1e999'), 400, 'instances[1]: value 0 is Infinity, expected a finite number'],
    ['a number past FP32\'s range (a sensor glitch)', () => withValue(7, '1e40'), 400, "instances[1]: value 7 is 1e+40, outside FP32's finite range (±3.4028234663852886e+38)"],
    ['a negative number past FP32\'s range', () => withValue(0, '-1e300'), 400, "instances[1]: value 0 is -1e+300, outside FP32's finite range (±3.4028234663852886e+38)"],
    ['missing instances', () => '{}', 400, /send either "instances" \(row format\) or "inputs" \(columnar format\)/],
    ['empty instances', () => '{"instances": []}', 400, /"instances" is empty; send at least one instance/],
    ['instances that are not a list', () => '{"instances": {"a": 1}}', 400, /"instances" must be a list of instances, got object/],
    ['a JSON array body', () => '[1, 2]', 400, /the request body must be a JSON object, got an array/],
    ['an empty body', () => '', 400, /the request body is empty/],
    ['139 values', () => JSON.stringify({ instances: [normal, normal.slice(1)] }), 400, 'instances[1]: expected 140 values, got 139'],
    ['141 values', () => JSON.stringify({ instances: [[...normal, 0]] }), 400, 'instances[0]: expected 140 values, got 141'],
    ['too many instances', () => JSON.stringify({ instances: Array(65).fill([0]) }), 400, /65 instances in one request; at most 64 are allowed \(MAX_BATCH_SIZE\)/],
    ['an unknown signature', () => JSON.stringify({ signature_name: 'classify', instances: [normal] }), 400, /unknown signature_name: the string "classify"; the model has "serving_default", "explain"/],
  ])('%s', async (_, body, status, message) => {
    await expectError(await predict(body()), status, message);
  });

  describe('deeply nested JSON, at every place a value is read or named', () => {
    const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
    const v2 = (fields: Record<string, string>) => {
      const input = { name: '"beat"', shape: '[1, 140]', datatype: '"FP32"', data: JSON.stringify(normal), ...fields };
      return `{"inputs": [{${Object.entries(input).map(([k, v]) => `"${k}": ${v}`).join(', ')}}]}`;
    };
    it.each([
      ['TF Serving signature_name', `/v1/models/${MODEL}:predict`, () => `{"signature_name": ${deep(50_000)}, "instances": [[1]]}`],
      ['V2 data', `/v2/models/${MODEL}/infer`, () => v2({ data: deep(50_000) })],
      ['V2 name', `/v2/models/${MODEL}/infer`, () => v2({ name: deep(50_000) })],
      ['V2 datatype', `/v2/models/${MODEL}/infer`, () => v2({ datatype: deep(50_000) })],
      ['V2 shape', `/v2/models/${MODEL}/infer`, () => v2({ shape: deep(50_000) })],
      ['V2 outputs[].name', `/v2/models/${MODEL}/infer`, () => `${v2({}).slice(0, -1)}, "outputs": [{"name": ${deep(50_000)}}]}`],
    ])('%s: 400 naming the depth and where, before anything is built', async (_, path, body) => {
      const { request } = appWith({ maxBodyBytes: 1024 * 1024 });
      await expectError(await request(path, { body: body() }), 400, /^the request body is nested more than 32 levels deep \(at position \d+\)$/);
    });

    it.each([
      ['TF Serving signature_name', `/v1/models/${MODEL}:predict`, () => ({ signature_name: 'x'.repeat(5000), instances: [normal] })],
      ['TF Serving named instance', `/v1/models/${MODEL}:predict`, () => ({ instances: [Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`key${i}`, 1]))] })],
      ['V2 name', `/v2/models/${MODEL}/infer`, () => JSON.parse(v2({ name: JSON.stringify(Array(5000).fill(1)) }))],
      ['V2 datatype', `/v2/models/${MODEL}/infer`, () => JSON.parse(v2({ datatype: JSON.stringify('FP'.repeat(5000)) }))],
      ['V2 shape', `/v2/models/${MODEL}/infer`, () => JSON.parse(v2({ shape: JSON.stringify(Array(5000).fill(140)) }))],
      ['V2 outputs[].name', `/v2/models/${MODEL}/infer`, () => ({ ...JSON.parse(v2({})), outputs: [{ name: Array(5000).fill('reconstruction') }] })],
    ])('%s: a large value is described, not copied into the message', async (_, path, body) => {
      const { request } = appWith({ maxBodyBytes: 1024 * 1024 });
      const response = await request(path, { body: body() });
      expect(response.status).toBe(400);
      const { error } = (await response.json()) as { error: string };
      expect(error.length).toBeLessThan(200);
    });
  });

  it('more instances than MAX_BATCH_SIZE: rejected by their count, before the body is parsed', async () => {
    // A body that would be malformed JSON at its end: the count must be what rejects it.
    const body = `{"instances": [${Array(100_000).fill('[]').join(',')}`;
    const { request } = appWith({ maxBodyBytes: 1024 * 1024 });
    await expectError(await request(`/v1/models/${MODEL}:predict`, { body }), 400, /more than 192 JSON arrays and objects .*at most 64 instances .*MAX_BATCH_SIZE/);
  });

  it('a body over MAX_BODY_BYTES: 413', async () => {
    await expectError(await predict(JSON.stringify({ instances: Array(8).fill(normal) })), 413, /larger than 10000 bytes \(MAX_BODY_BYTES\)/);
  });

  it('a chunked body (no Content-Length) over MAX_BODY_BYTES: 413', async () => {
    const chunk = new TextEncoder().encode(JSON.stringify({ instances: Array(8).fill(normal) }));
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(chunk);
        controller.close();
      },
    });
    const response = await api.app.request(`/v1/models/${MODEL}:predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    await expectError(response, 413, /larger than 10000 bytes \(MAX_BODY_BYTES\)/);
  });

  it('a body that is not JSON, whatever its Content-Type: 400 saying where it broke', async () => {
    await expectError(await predict('instances=1', { 'Content-Type': 'application/x-www-form-urlencoded' }), 400, /^malformed JSON in the request body: Unexpected token 'i', "instances=1" is not valid JSON$/);
  });

  it('an unknown Content-Encoding: 415 naming it', async () => {
    await expectError(await predict('{}', { 'Content-Encoding': 'br' }), 415, 'Content-Encoding "br" is not supported; send gzip, deflate or an unencoded body');
  });

  it('an unknown model: 404 naming the served one', async () => {
    await expectError(await request('/v1/models/other:predict', { body: { instances: [normal] } }), 404, 'model "other" is not served here; this server serves "ecg-autoencoder"');
    await expectError(await request('/v2/models/other/infer', { body: {} }), 404, /model "other" is not served here/);
    await expectError(await request('/v1/models/other'), 404, /model "other" is not served here/);
  });

  it('an unknown path or verb: 404 or 400', async () => {
    await expectError(await request('/v3/anything'), 404, 'no route for GET /v3/anything');
    await expectError(await request(`/v1/models/${MODEL}:classify`, { body: { instances: [normal] } }), 400, /":classify" is not supported/);
  });

  it('keeps serving after every kind of bad request', async () => {
    const response = await predict(JSON.stringify({ instances: [anomalous] }));
    expect(response.status).toBe(200);
  });
});

describe('compression (COMPRESSION_THRESHOLD_BYTES)', () => {
  const predict = (request: ReturnType<typeof appWith>['request'], rows: number) =>
    request(`/v1/models/${MODEL}:predict`, { body: { instances: Array.from({ length: rows }, () => normal) }, headers: { 'Content-Type': 'application/json', 'Accept-Encoding': 'gzip' } });

  it('compresses an answer of at least the threshold for a client that accepts it, and not a smaller one', async () => {
    const { request } = appWith();
    const large = await predict(request, 64);
    expect(large.headers.get('content-encoding')).toBe('gzip');
    expect((JSON.parse(gunzipSync(await large.arrayBuffer()).toString()) as { predictions: unknown[] }).predictions).toHaveLength(64);
    const small = await predict(request, 1);
    expect(Number(small.headers.get('content-length'))).toBeLessThan(DEFAULTS.compressionThresholdBytes);
    expect(small.headers.get('content-encoding')).toBeNull();
  });

  it('compresses the answer of a caller with an API key, and answers one without its 401 as it is', async () => {
    const { request } = appWith({ apiKey: 'a-key-long-enough-to-be-one' });
    const body = { instances: Array.from({ length: 64 }, () => normal) };
    const keyed = await request(`/v1/models/${MODEL}:predict`, { body, headers: { 'Content-Type': 'application/json', 'Accept-Encoding': 'gzip', Authorization: 'Bearer a-key-long-enough-to-be-one' } });
    expect(keyed.status).toBe(200);
    expect(keyed.headers.get('content-encoding')).toBe('gzip');
    expect((JSON.parse(gunzipSync(await keyed.arrayBuffer()).toString()) as { predictions: unknown[] }).predictions).toHaveLength(64);
    const refused = await predict(request, 64);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-encoding')).toBeNull();
    expect(await refused.json()).toMatchObject({ error: expect.stringContaining('an API key is needed') });
  });

  it('follows the setting: 0 compresses every answer, a threshold above an answer leaves it', async () => {
    const all = appWith({ compressionThresholdBytes: 0 });
    expect((await predict(all.request, 1)).headers.get('content-encoding')).toBe('gzip');
    const none = appWith({ compressionThresholdBytes: 1024 * 1024 });
    expect((await predict(none.request, 64)).headers.get('content-encoding')).toBeNull();
  });
});

describe('lifecycle as the app sees it', () => {
  it('before the model is loaded: live, not ready, and 503 for predictions', async () => {
    const { request } = appWith({ loaded: false });
    expect((await request('/v2/health/live')).status).toBe(200);
    await expectError(await request('/v2/health/ready'), 503, 'not ready: the model is loading');
    await expectError(await request(`/v1/models/${MODEL}:predict`, { body: { instances: [normal] } }), 503, /still loading/);
    await expectError(await request(`/v2/models/${MODEL}/ready`), 503, /still loading/);
  });

  it('while draining: not ready, but still predicting, with Connection: close', async () => {
    const { request, state } = appWith();
    state.draining = true;
    await expectError(await request('/v2/health/ready'), 503, 'not ready: the server is shutting down');
    await expectError(await request(`/v2/models/${MODEL}/ready`), 503, /shutting down/);
    const response = await request('/predict', { body: { instances: [normal] } });
    expect(response.status).toBe(200);
    expect(response.headers.get('connection')).toBe('close');
    expect(((await (await request(`/v1/models/${MODEL}`)).json()) as { model_version_status: { state: string }[] }).model_version_status[0]!.state).toBe('UNLOADING');
  });
});

describe('the web page', () => {
  const api = useApp();

  it('serves the page, its script, and the model facts it shows', async () => {
    const page = await api.request('/');
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<script type="module" src="/ui/app.js"></script>');
    expect((await api.request('/ui/app.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await (await api.request('/ui/model')).json()).toEqual({
      name: MODEL,
      calibrationRows: 467,
      version: detector.version,
      backend: detector.backend,
      threshold: detector.threshold,
      score: 'mae',
      signature: detector.signature,
      normalisation: detector.metadata.normalisation,
      examples: detector.metadata.examples,
    });
  });

  it('answers 503 for the model facts while the model loads', async () => {
    await expectError(await appWith({ loaded: false }).request('/ui/model'), 503, /still loading/);
  });
});

describe('GET /metrics, on the metrics port', () => {
  it('exports every metric in the Prometheus text format, counting what was served', async () => {
    const { request, metrics, metricsApp } = appWith();
    metrics.modelInfo.set({ model: MODEL, version: detector.version, backend: detector.backend }, 1);
    await request('/predict', { body: { instances: [normal, anomalous, anomalous] } });
    await request('/predict', { body: { instances: [normal.slice(1)] } });
    await request('/nowhere');
    const response = await metricsApp.request('/metrics');
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'batch_size_bucket',
      'batch_queue_wait_seconds_bucket',
      'forward_pass_seconds_bucket',
      'instances_scored_total',
      'anomalies_total',
      'reconstruction_error_bucket',
      'threshold',
      'model_info',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toMatch(new RegExp(`^anomaly_serve_${name}[{ ]`, 'm'));
    }
    expect(text).toContain('anomaly_serve_http_requests_total{method="POST",route="/predict",status="200"} 1');
    expect(text).toContain('anomaly_serve_http_requests_total{method="POST",route="/predict",status="400"} 1');
    expect(text).toContain('anomaly_serve_http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(text).toContain('anomaly_serve_instances_scored_total 3');
    expect(text).toContain('anomaly_serve_anomalies_total 2');
    expect(text).toContain('anomaly_serve_batch_size_count 1');
    expect(text).toContain(`anomaly_serve_model_info{model="${MODEL}",version="${detector.version}",backend="${detector.backend}"} 1`);
  });

  it('counts the requests answered as the duration histogram counts them, scrape after scrape', async () => {
    const { request, metricsApp } = appWith();
    const series = '{method="POST",route="/predict",status="200"}';
    for (let scrape = 1; scrape <= 3; scrape++) {
      await request('/predict', { body: { instances: [normal] } });
      const text = await (await metricsApp.request('/metrics')).text();
      expect(text).toContain(`anomaly_serve_http_requests_total${series} ${scrape}\n`);
      expect(text).toContain(`anomaly_serve_http_request_duration_seconds_count${series} ${scrape}\n`);
    }
  });

  it('is a 404 on the serving port, and the metrics port serves nothing else', async () => {
    const { request, metricsApp } = appWith();
    await expectError(await request('/metrics'), 404, 'no route for GET /metrics');
    await expectError(await metricsApp.request('/predict', { method: 'POST', body: '{}' }), 404, 'no route for POST /predict');
    await expectError(await metricsApp.request('/v2/health/ready'), 404, 'no route for GET /v2/health/ready');
  });
});

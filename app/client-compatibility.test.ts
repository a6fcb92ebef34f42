import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './settings.ts';
import { createLogger } from '../lib/logger.ts';
import { bundledExample, bundledMetadata as metadata } from '../test/bundled-model.ts';
import { tfServingVersion } from './protocols/tfserving.ts';
import { startServer, type RunningServer } from './lifecycle.ts';

/**
 * The requests that the official clients send with their defaults, byte for byte as their
 * published wire formats make them (Triton's and KServe's Python clients, TensorFlow Serving's
 * curl examples), against a real server listening on 127.0.0.1.
 */

const [normal, anomalous] = [bundledExample('normal'), bundledExample('anomalous')];
const MODEL = 'ecg-autoencoder';
const WIDTH = normal.length;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request with exactly these headers (no client adds any of its own but Host and Content-Length). */
function send(url: string, method: string, path: string, body: Buffer | string = '', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}${path}`, { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.on('error', reject);
    request.end(body);
  });
}
const json = (answer: Answer) => JSON.parse(answer.body.toString()) as Record<string, unknown>;

/** FP32 tensor data as tritonclient's set_data_from_numpy writes it: little-endian, row-major. */
function fp32(rows: number[][]): Buffer {
  const bytes = Buffer.alloc(rows.length * WIDTH * 4);
  rows.flat().forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes;
}

/** A request as tritonclient.http builds it: the JSON, then the binary data, and its header length. */
function tritonRequest(rows: number[][], extra: Record<string, unknown> = { parameters: { binary_data_output: true } }) {
  const data = fp32(rows);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'beat', shape: [rows.length, WIDTH], datatype: 'FP32', parameters: { binary_data_size: data.length } }], ...extra }));
  return { body: Buffer.concat([header, data]), headers: { 'Inference-Header-Content-Length': String(header.length) } };
}

/** A binary response split as tritonclient's InferResult reads it. */
function binaryOutputs(answer: Answer) {
  const length = Number(answer.headers['inference-header-content-length']);
  const header = JSON.parse(answer.body.subarray(0, length).toString()) as { outputs: { name: string; datatype: string; shape: number[]; parameters?: { binary_data_size: number }; data?: unknown[] }[] };
  let offset = length;
  const outputs = Object.fromEntries(
    header.outputs.map((output) => {
      if (!output.parameters) return [output.name, output.data];
      const bytes = answer.body.subarray(offset, (offset += output.parameters.binary_data_size));
      const values =
        output.datatype === 'BOOL' ? [...bytes].map((b) => b === 1) : Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
      return [output.name, values];
    }),
  );
  expect(offset).toBe(answer.body.length);
  return { header, outputs };
}

let server: RunningServer;
let url: string;
/** The scores of the JSON path, which the binary path must match (as FP32). */
let expected: { reconstruction_error: number[]; is_anomaly: boolean[] };

beforeAll(async () => {
  server = await startServer(
    loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', MAX_BODY_BYTES: '65536', MODEL_VERSION_LABELS: undefined }),
    createLogger('test', { level: 'silent' }),
  );
  await server.loaded;
  url = server.url;
  const answer = await send(url, 'POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ inputs: [normal, anomalous] }), { 'Content-Type': 'application/json' });
  expected = (json(answer) as { outputs: typeof expected }).outputs;
});
afterAll(() => server.drain());

describe('binary tensor data (Triton and KServe clients, set_data_from_numpy)', () => {
  it('scores a binary request and answers in binary when the request asks for binary_data_output (tritonclient with no outputs named)', async () => {
    const { body, headers } = tritonRequest([normal, anomalous]);
    const answer = await send(url, 'POST', `/v2/models/${MODEL}/infer`, body, headers);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/octet-stream');
    const { header, outputs } = binaryOutputs(answer);
    expect(header.outputs).toEqual([
      { name: 'reconstruction_error', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
      { name: 'is_anomaly', datatype: 'BOOL', shape: [2], parameters: { binary_data_size: 2 } },
    ]);
    // Binary tensor data carries the beats as FP32: the JSON reference sends the same values.
    const fp32 = await send(url, 'POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ inputs: [normal, anomalous].map((row) => row.map(Math.fround)) }), { 'Content-Type': 'application/json' });
    expect(outputs.reconstruction_error).toEqual((json(fp32) as { outputs: typeof expected }).outputs.reconstruction_error.map(Math.fround));
    expect(outputs.is_anomaly).toEqual([false, true]);
  });

  it('mixes binary and JSON outputs as each output asks, the reconstruction included', async () => {
    const { body, headers } = tritonRequest([anomalous], {
      outputs: [{ name: 'is_anomaly', parameters: { binary_data: false } }, { name: 'reconstruction', parameters: { binary_data: true } }],
    });
    const { header, outputs } = binaryOutputs(await send(url, 'POST', `/v2/models/${MODEL}/infer`, body, headers));
    expect(header.outputs.map((o) => [o.name, o.parameters ?? 'json'])).toEqual([
      ['is_anomaly', 'json'],
      ['reconstruction', { binary_data_size: WIDTH * 4 }],
    ]);
    expect(outputs.is_anomaly).toEqual([true]);
    expect(outputs.reconstruction).toHaveLength(WIDTH);
  });

  it('answers JSON to a binary request that asks for JSON outputs', async () => {
    const { body, headers } = tritonRequest([normal], { outputs: [{ name: 'is_anomaly' }] });
    const answer = await send(url, 'POST', `/v2/models/${MODEL}/infer`, body, headers);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.headers['inference-header-content-length']).toBeUndefined();
    expect(json(answer).outputs).toEqual([{ name: 'is_anomaly', datatype: 'BOOL', shape: [1], data: [false] }]);
  });

  it.each([
    [
      'a binary_data_size that does not match the shape',
      () => {
        const data = fp32([normal]);
        const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'beat', shape: [2, WIDTH], datatype: 'FP32', parameters: { binary_data_size: data.length } }] }));
        return { body: Buffer.concat([header, data]), headers: { 'Inference-Header-Content-Length': String(header.length) } };
      },
      `inputs[0].parameters.binary_data_size is ${WIDTH * 4} bytes; shape [2, ${WIDTH}] of FP32 is ${WIDTH * 8} bytes (4 a value)`,
    ],
    [
      'a header length past the end of the body',
      () => ({ body: Buffer.from('{}'), headers: { 'Inference-Header-Content-Length': '500' } }),
      'Inference-Header-Content-Length is 500 bytes, past the end of the 2-byte (decoded) body',
    ],
    [
      'binary data shorter than its binary_data_size',
      () => {
        const { body, headers } = tritonRequest([normal]);
        return { body: body.subarray(0, body.length - 4), headers };
      },
      `inputs[0].parameters.binary_data_size is ${WIDTH * 4} bytes, but only ${WIDTH * 4 - 4} bytes of binary data follow the JSON header`,
    ],
    [
      'bytes that no input claims',
      () => {
        const { body, headers } = tritonRequest([normal]);
        return { body: Buffer.concat([body, Buffer.alloc(3)]), headers };
      },
      '3 bytes of binary data after the JSON header belong to no input\'s binary_data_size',
    ],
    [
      'a datatype other than FP32',
      () => {
        const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'beat', shape: [1, WIDTH], datatype: 'FP64', parameters: { binary_data_size: WIDTH * 8 } }] }));
        return { body: Buffer.concat([header, Buffer.alloc(WIDTH * 8)]), headers: { 'Inference-Header-Content-Length': String(header.length) } };
      },
      'inputs[0].datatype is the string "FP64", which does not match the model\'s input; it takes FP32',
    ],
    [
      'binary_data_size without Inference-Header-Content-Length',
      () => ({ body: tritonRequest([normal]).body, headers: {} }),
      /^malformed JSON in the request body/,
    ],
    [
      'a value that is not finite',
      () => {
        const { body, headers } = tritonRequest([normal]);
        body.writeFloatLE(Number.NaN, body.length - WIDTH * 4 + 8);
        return { body, headers };
      },
      'inputs[0].data, row 0: value 2 is NaN, expected a finite number',
    ],
    [
      'an infinite value (a sensor glitch, as FP32)',
      () => {
        const { body, headers } = tritonRequest([normal, anomalous]);
        body.writeFloatLE(Number.NEGATIVE_INFINITY, body.length - WIDTH * 4 + 12);
        return { body, headers };
      },
      'inputs[0].data, row 1: value 3 is -Infinity, expected a finite number',
    ],
  ])('rejects %s with 400, saying which', async (_, make, message) => {
    const { body, headers } = make();
    const answer = await send(url, 'POST', `/v2/models/${MODEL}/infer`, body, headers);
    expect(answer.status).toBe(400);
    expect(json(answer).error).toMatch(message);
  });

  it('lists the extensions it serves', async () => {
    expect(json(await send(url, 'GET', '/v2')).extensions).toEqual(['binary_tensor_data', 'statistics', 'model_configuration']);
  });
});

describe('any Content-Type: the body is read by its own structure', () => {
  const v2Body = JSON.stringify({ inputs: [{ name: 'beat', shape: [1, WIDTH], datatype: 'FP32', data: anomalous }] });
  it.each([
    ['none', {}],
    ['JSON with a charset', { 'Content-Type': 'application/json; charset=utf-8' }],
    ['octet-stream (tritonclient.http.aio, even for JSON)', { 'Content-Type': 'application/octet-stream' }],
    ['form-urlencoded (curl -d, as in TensorFlow Serving\'s examples)', { 'Content-Type': 'application/x-www-form-urlencoded' }],
    ['text/plain', { 'Content-Type': 'text/plain' }],
  ])('%s', async (_, headers) => {
    const v2 = await send(url, 'POST', `/v2/models/${MODEL}/infer`, v2Body, headers);
    expect(v2.status).toBe(200);
    expect((json(v2).outputs as { data: unknown[] }[])[1]!.data).toEqual([true]);
    const tf = await send(url, 'POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [anomalous] }), headers);
    expect(json(tf)).toEqual({ predictions: [{ reconstruction_error: expected.reconstruction_error[1], is_anomaly: true }] });
  });

  it('still says where a body that is not JSON broke', async () => {
    const answer = await send(url, 'POST', `/v1/models/${MODEL}:predict`, '{"instances": [[1, 2]', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(answer.status).toBe(400);
    expect(json(answer).error).toMatch(/^malformed JSON in the request body: .*position 21/);
  });
});

describe('framing of answers', () => {
  it('gives JSON and binary answers their Content-Length, and chunks neither, with or without a client asking for compression', async () => {
    const { body, headers } = tritonRequest([normal]);
    const answers = [
      await send(url, 'POST', '/predict', JSON.stringify({ instances: [normal] }), { 'Content-Type': 'application/json' }),
      await send(url, 'POST', `/v2/models/${MODEL}/infer`, body, headers),
      await send(url, 'POST', '/predict', JSON.stringify({ instances: [normal] }), { 'Accept-Encoding': 'gzip' }),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers['transfer-encoding']).toBeUndefined();
      expect(Number(answer.headers['content-length'])).toBe(answer.body.length);
    }
  });
});

describe('compression', () => {
  it('takes gzip and deflate request bodies (request_compression_algorithm), binary ones included', async () => {
    const { body, headers } = tritonRequest([normal, anomalous]);
    for (const [encoding, compressed] of [['gzip', gzipSync(body)], ['deflate', deflateSync(body)]] as const) {
      const answer = await send(url, 'POST', `/v2/models/${MODEL}/infer`, compressed, { ...headers, 'Content-Encoding': encoding });
      expect(answer.status).toBe(200);
      expect(binaryOutputs(answer).outputs.is_anomaly).toEqual([false, true]);
    }
    const tf = await send(url, 'POST', `/v1/models/${MODEL}:predict`, gzipSync(JSON.stringify({ instances: [anomalous] })), { 'Content-Encoding': 'gzip' });
    expect(json(tf)).toEqual({ predictions: [{ reconstruction_error: expected.reconstruction_error[1], is_anomaly: true }] });
  });

  it('applies MAX_BODY_BYTES to the inflated body too: a small body that inflates past it is a 413', async () => {
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, ' '));
    expect(bomb.length).toBeLessThan(65536);
    const answer = await send(url, 'POST', `/v1/models/${MODEL}:predict`, bomb, { 'Content-Encoding': 'gzip' });
    expect(answer.status).toBe(413);
    expect(json(answer).error).toBe('the request body inflates to more than 65536 bytes (MAX_BODY_BYTES)');
  });

  it('rejects an unknown encoding with 415 naming it, and a corrupt body with 400', async () => {
    const unknown = await send(url, 'POST', `/v1/models/${MODEL}:predict`, '{}', { 'Content-Encoding': 'br' });
    expect([unknown.status, json(unknown).error]).toEqual([415, 'Content-Encoding "br" is not supported; send gzip, deflate or an unencoded body']);
    const corrupt = await send(url, 'POST', `/v1/models/${MODEL}:predict`, 'not gzip at all', { 'Content-Encoding': 'gzip' });
    expect(corrupt.status).toBe(400);
    expect(json(corrupt).error).toMatch(/^the request body is not valid gzip data: incorrect header check/);
  });

  it('gzips answers above 1 KiB for a client that accepts it (response_compression_algorithm), and leaves small ones alone', async () => {
    const rows = Array(8).fill(anomalous) as number[][];
    const { body, headers } = tritonRequest(rows, { outputs: [{ name: 'reconstruction', parameters: { binary_data: true } }] });
    const large = await send(url, 'POST', `/v2/models/${MODEL}/infer`, body, { ...headers, 'Accept-Encoding': 'gzip' });
    expect(large.headers['content-encoding']).toBe('gzip');
    const inflated = { ...large, body: gunzipSync(large.body) };
    expect(binaryOutputs(inflated).outputs.reconstruction).toHaveLength(8 * WIDTH);

    const small = await send(url, 'POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [normal] }), { 'Accept-Encoding': 'gzip' });
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(json(small)).toHaveProperty('predictions');
  });
});

describe('Triton statistics, model configuration and repository', () => {
  it('reports statistics from what the server measured: requests by outcome, rows, forward passes, queue and compute time', async () => {
    type ModelStats = { inference_count: number; execution_count: number; last_inference: number; inference_stats: Record<'success' | 'fail' | 'queue' | 'compute_infer', { count: number; ns: number }> };
    const statsOf = (answer: Answer) => (json(answer).model_stats as ModelStats[])[0]!;
    const before = statsOf(await send(url, 'GET', `/v2/models/${MODEL}/stats`));
    const binary = tritonRequest([normal, anomalous, normal]);
    await send(url, 'POST', `/v2/models/${MODEL}/infer`, binary.body, binary.headers);
    await send(url, 'POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [normal] }));
    await send(url, 'POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [[1, 2]] }));
    const all = json(await send(url, 'GET', '/v2/models/stats'));
    const one = json(await send(url, 'GET', `/v2/models/${MODEL}/versions/${metadata.version}/stats`));
    expect(all).toEqual(one);
    expect(all.model_stats).toMatchObject([{ name: MODEL, version: metadata.version }]);
    const stats = (all.model_stats as ModelStats[])[0]!;
    expect(stats.inference_count - before.inference_count).toBe(4);
    expect(stats.execution_count - before.execution_count).toBe(2);
    expect(stats.inference_stats.success.count - before.inference_stats.success.count).toBe(2);
    expect(stats.inference_stats.fail.count - before.inference_stats.fail.count).toBe(1);
    expect(stats.inference_stats.compute_infer.count).toBe(stats.execution_count);
    expect(stats.inference_stats.compute_infer.ns).toBeGreaterThan(before.inference_stats.compute_infer.ns);
    expect(stats.inference_stats.queue.count - before.inference_stats.queue.count).toBe(2);
    expect(stats.inference_stats.success.ns).toBeGreaterThan(stats.inference_stats.compute_infer.ns);
    expect(Math.abs(stats.last_inference - Date.now())).toBeLessThan(10_000);
    expect((await send(url, 'GET', `/v2/models/${MODEL}/versions/nope/stats`)).status).toBe(404);
  });

  it('reports the model configuration', async () => {
    const config = json(await send(url, 'GET', `/v2/models/${MODEL}/config`));
    expect(config).toMatchObject({
      name: MODEL,
      platform: 'tensorflowjs',
      max_batch_size: 64,
      input: [{ name: 'beat', data_type: 'TYPE_FP32', dims: [String(WIDTH)] }],
      output: [
        { name: 'reconstruction_error', data_type: 'TYPE_FP32', dims: ['1'], reshape: { shape: [] } },
        { name: 'is_anomaly', data_type: 'TYPE_BOOL', dims: ['1'], reshape: { shape: [] } },
        { name: 'reconstruction', data_type: 'TYPE_FP32', dims: [String(WIDTH)] },
        { name: 'attribution', data_type: 'TYPE_FP32', dims: [String(WIDTH)] },
        { name: 'p_value', data_type: 'TYPE_FP32', dims: ['1'], reshape: { shape: [] } },
      ],
    });
    expect(json(await send(url, 'GET', `/v2/models/${MODEL}/versions/${metadata.version}/config`))).toEqual(config);
  });

  it('lists the model in the repository index (get_model_repository_index posts an empty body) and refuses load and unload', async () => {
    const entry = { name: MODEL, version: metadata.version, state: 'READY', reason: '' };
    expect(JSON.parse((await send(url, 'POST', '/v2/repository/index')).body.toString())).toEqual([entry]);
    expect(JSON.parse((await send(url, 'POST', '/v2/repository/index', '{"ready": true}')).body.toString())).toEqual([entry]);
    for (const action of ['load', 'unload']) {
      const answer = await send(url, 'POST', `/v2/repository/models/${MODEL}/${action}`, '{}');
      expect(answer.status).toBe(403);
      expect(json(answer).error).toMatch(new RegExp(`^${action} is not supported: this server serves one model, "${MODEL}", loaded at start-up`));
    }
  });
});

describe('TensorFlow Serving version labels', () => {
  it('resolves stable and latest to the served version, for status, metadata and :predict', async () => {
    const version = tfServingVersion(server.state.model!.detector);
    for (const label of ['stable', 'latest']) {
      expect((json(await send(url, 'GET', `/v1/models/${MODEL}/labels/${label}`)).model_version_status as { version: string }[])[0]!.version).toBe(version);
      expect((json(await send(url, 'GET', `/v1/models/${MODEL}/labels/${label}/metadata`)).model_spec as { version: string }).version).toBe(version);
      const predicted = await send(url, 'POST', `/v1/models/${MODEL}/labels/${label}:predict`, JSON.stringify({ instances: [anomalous] }));
      expect(json(predicted)).toEqual({ predictions: [{ reconstruction_error: expected.reconstruction_error[1], is_anomaly: true }] });
    }
  });

  it('answers 404 naming an unknown label', async () => {
    const answer = await send(url, 'POST', `/v1/models/${MODEL}/labels/canary:predict`, JSON.stringify({ instances: [normal] }));
    expect([answer.status, json(answer).error]).toEqual([404, `model "${MODEL}" has no version label "canary"; its labels are "stable", "latest"`]);
  });
});

describe('MODEL_VERSION_LABELS', () => {
  let labelled: RunningServer;
  beforeAll(async () => {
    labelled = await startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', MODEL_VERSION_LABELS: `stable=${tfServingVersionOf(metadata.version)},canary=17` }), createLogger('test', { level: 'silent' }));
    await labelled.loaded;
  });
  afterAll(() => labelled.drain());
  const tfServingVersionOf = (hash: string) => String(parseInt(hash.slice(0, 12), 16));

  it('serves the labels it is given, and says when one names a version it does not serve', async () => {
    expect((await send(labelled.url, 'GET', `/v1/models/${MODEL}/labels/stable`)).status).toBe(200);
    const canary = await send(labelled.url, 'GET', `/v1/models/${MODEL}/labels/canary`);
    expect([canary.status, json(canary).error]).toEqual([404, `label "canary" names version 17, which is not served here; this server serves version ${tfServingVersionOf(metadata.version)}`]);
    expect(json(await send(labelled.url, 'GET', `/v1/models/${MODEL}/labels/latest`)).error).toMatch(/has no version label "latest"; its labels are "stable", "canary"/);
  });
});

describe('with API keys (API_KEYS_FILE): the clients’ own header options', () => {
  const KEY = 'client-compatibility-key-5d1e0b';
  let keyed: RunningServer;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-'));
    await writeFile(path.join(dir, 'keys'), `${KEY}\n`);
    keyed = await startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', API_KEYS_FILE: path.join(dir, 'keys') }), createLogger('test', { level: 'silent' }));
    await keyed.loaded;
  });
  afterAll(async () => {
    await keyed.drain();
    await rm(dir, { recursive: true, force: true });
  });

  it('tritonclient.http: is_server_ready() needs no key; infer(..., headers={"Authorization": "Bearer …"}) adds it beside its own header', async () => {
    expect((await send(keyed.url, 'GET', '/v2/health/ready')).status).toBe(200);
    const { body, headers } = tritonRequest([anomalous]);
    expect((await send(keyed.url, 'POST', `/v2/models/${MODEL}/infer`, body, headers)).status).toBe(401);
    const answer = await send(keyed.url, 'POST', `/v2/models/${MODEL}/infer`, body, { Authorization: `Bearer ${KEY}`, ...headers });
    expect(answer.status).toBe(200);
    expect(binaryOutputs(answer).outputs.is_anomaly).toEqual([true]);
  });

  it('TensorFlow Serving through requests: post(url, json=…, headers={"x-api-key": …})', async () => {
    const answer = await send(keyed.url, 'POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [anomalous] }), { 'Content-Type': 'application/json', 'x-api-key': KEY });
    expect(json(answer)).toEqual({ predictions: [{ reconstruction_error: expected.reconstruction_error[1], is_anomaly: true }] });
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentVersion, signatureFor, writeArtifact, type ModelMetadata } from '../model/artifact.ts';
import { selectBackend } from '../model/backend.ts';
import { createLogger } from '../lib/logger.ts';
import { loadConfig } from './settings.ts';
import { startServer, type RunningServer } from './lifecycle.ts';

/**
 * A model trained outside this project: another autoencoder, 24 sensor readings wide, with other
 * names for its input and outputs and nothing but what serving needs in its metadata.json. The
 * server serves it through both protocols and the page's API with no code change.
 */

const WIDTH = 24;
const NAMES = { input: 'sensors', score: 'anomaly_score', verdict: 'alarm', reconstruction: 'expected_readings' };
const NORMALISATION = { method: 'min-max', min: 0, max: 100 } as const;
const THRESHOLD = 0.2;

let dir: string;
let server: RunningServer;
let kernels: { kernel: number[][]; bias: number[] }[];

/** Readings in 0-100: smooth for a calm machine, jagged for a faulty one. */
const calm = Array.from({ length: WIDTH }, (_, i) => 50 + 10 * Math.sin(i / 3));
const faulty = Array.from({ length: WIDTH }, (_, i) => (i % 2 ? 95 : 5));

/** The score computed in plain JavaScript from the weights the test made: what the server must answer. */
function expectedScore(readings: number[]): number {
  const input = readings.map((v) => (v - NORMALISATION.min) / (NORMALISATION.max - NORMALISATION.min));
  let activation = input;
  kernels.forEach(({ kernel, bias }, layer) => {
    const z = bias.map((b, j) => b + activation.reduce((sum, a, i) => sum + a * kernel[i]![j]!, 0));
    activation = layer === kernels.length - 1 ? z.map((v) => 1 / (1 + Math.exp(-v))) : z.map((v) => Math.max(0, v));
  });
  return input.reduce((sum, v, i) => sum + Math.abs(v - activation[i]!), 0) / WIDTH;
}

/* eslint-disable-next-line @typescript-eslint/no-explicit-any -- assertions walk the JSON answers */
type Json = Record<string, any>;

async function call(method: string, route: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const response = await fetch(`${server.url}${route}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Json };
}

beforeAll(async () => {
  await selectBackend();
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [WIDTH], units: 6, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }),
      tf.layers.dense({ units: WIDTH, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }),
    ],
  });
  kernels = model.layers.map((layer) => {
    const [kernel, bias] = layer.getWeights();
    return { kernel: kernel!.arraySync() as number[][], bias: bias!.arraySync() as number[] };
  });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (saved) => ((artifacts = saved), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
  model.dispose();
  const metadata: ModelMetadata = {
    name: 'turbine-sensors',
    version: '',
    signature: signatureFor(WIDTH, NAMES, false),
    normalisation: NORMALISATION,
    threshold: { value: THRESHOLD },
  };
  metadata.version = await contentVersion(artifacts!, metadata);
  dir = await mkdtemp(path.join(tmpdir(), 'external-model-'));
  await writeArtifact(dir, { artifacts: artifacts!, metadata });
  server = await startServer(loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', MODEL_PATH: dir }), createLogger('test', { level: 'silent' }));
  await server.loaded;
});
afterAll(async () => {
  await server.drain();
  await rm(dir, { recursive: true, force: true });
});

describe('a model trained elsewhere, of another width and with other names', () => {
  it('is served under the name in its metadata.json, and describes itself in V2 and TensorFlow Serving metadata', async () => {
    const v2 = await call('GET', '/v2/models/turbine-sensors');
    expect(v2.json).toMatchObject({
      name: 'turbine-sensors',
      inputs: [{ name: 'sensors', datatype: 'FP32', shape: [-1, WIDTH] }],
      outputs: [
        { name: 'anomaly_score', datatype: 'FP32', shape: [-1] },
        { name: 'alarm', datatype: 'BOOL', shape: [-1] },
        { name: 'expected_readings', datatype: 'FP32', shape: [-1, WIDTH] },
        { name: 'attribution', datatype: 'FP32', shape: [-1, WIDTH] },
      ],
    });
    const signatureDef = (await call('GET', '/v1/models/turbine-sensors/metadata')).json.metadata.signature_def.signature_def.serving_default;
    expect(Object.keys(signatureDef.inputs)).toEqual(['sensors']);
    expect(signatureDef.inputs.sensors.tensor_shape.dim.map((d: { size: string }) => d.size)).toEqual(['-1', String(WIDTH)]);
    expect(Object.keys(signatureDef.outputs)).toEqual(['anomaly_score', 'alarm']);
    // With no calibration, "explain" has the attribution and no p-value.
    const explain = (await call('GET', '/v1/models/turbine-sensors/metadata')).json.metadata.signature_def.signature_def.explain;
    expect(Object.keys(explain.outputs)).toEqual(['anomaly_score', 'alarm', 'attribution']);
    const pValue = await call('POST', '/v2/models/turbine-sensors/infer', { inputs: [{ name: 'sensors', shape: [1, WIDTH], datatype: 'FP32', data: calm }], outputs: [{ name: 'p_value' }] });
    expect(pValue.status).toBe(400);
    expect(pValue.json.error).toMatch(/outputs\[0\]\.name is the string "p_value", not an output of this model: p-values need a calibration, which its metadata\.json does not record/);
    expect((await call('GET', '/v2/models/ecg-autoencoder')).status).toBe(404);
  });

  it('scores through TensorFlow Serving REST, rows and named instances, as the weights do', async () => {
    const { status, json } = await call('POST', '/v1/models/turbine-sensors:predict', { instances: [calm, { sensors: faulty }] });
    expect(status).toBe(200);
    expect(json.predictions.map((p: Record<string, number>) => Object.keys(p))).toEqual([
      ['anomaly_score', 'alarm'],
      ['anomaly_score', 'alarm'],
    ]);
    json.predictions.forEach((p: Record<string, number>, i: number) => expect(p.anomaly_score).toBeCloseTo(expectedScore([calm, faulty][i]!), 5));
    expect(json.predictions.map((p: Record<string, boolean>) => p.alarm)).toEqual([calm, faulty].map((row) => expectedScore(row) > THRESHOLD));
    const columnar = await call('POST', '/v1/models/turbine-sensors:predict', { inputs: { sensors: [faulty] } });
    expect(Object.keys(columnar.json.outputs)).toEqual(['anomaly_score', 'alarm']);
  });

  it('scores through the Open Inference Protocol, with its outputs by their own names', async () => {
    const { status, json } = await call('POST', '/v2/models/turbine-sensors/infer', {
      inputs: [{ name: 'sensors', shape: [2, WIDTH], datatype: 'FP32', data: [...calm, ...faulty] }],
      outputs: [{ name: 'anomaly_score' }, { name: 'expected_readings' }],
    });
    expect(status).toBe(200);
    expect(json.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape])).toEqual([
      ['anomaly_score', [2]],
      ['expected_readings', [2, WIDTH]],
    ]);
    expect(json.outputs[0].data[1]).toBeCloseTo(expectedScore(faulty), 5);
    const wrongInput = await call('POST', '/v2/models/turbine-sensors/infer', { inputs: [{ name: 'beat', shape: [1, WIDTH], datatype: 'FP32', data: calm }] });
    expect(wrongInput).toEqual({ status: 400, json: { error: 'inputs[0].name is the string "beat", not an input; the model\'s input is "sensors"' } });
    const wrongWidth = await call('POST', '/v1/models/turbine-sensors:predict', { instances: [[...calm, 1]] });
    expect(wrongWidth).toEqual({ status: 400, json: { error: `instances[0]: expected ${WIDTH} values, got ${WIDTH + 1}` } });
  });

  it('gives the page what it needs: name, signature, normalisation, and no examples', async () => {
    const { json } = await call('GET', '/ui/model');
    expect(json).toMatchObject({ name: 'turbine-sensors', threshold: THRESHOLD, normalisation: NORMALISATION, examples: [] });
    expect(json.signature.inputs).toEqual([{ name: 'sensors', datatype: 'FP32', shape: [-1, WIDTH] }]);
  });
});

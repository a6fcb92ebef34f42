import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { spawnServer } from '../lib/server-process.ts';
import { loggedError, logLines, runCommand } from '../test/command.ts';
import { describeIf } from '../test/describe-if.ts';
import { expectations, FIXTURES, readReference } from '../test/keras-reference.ts';

/**
 * Keras files that Keras wrote and people published, imported as a user imports them and served:
 * the fixtures in a plain clone, and the whole corpus where ../shared/keras-corpus is (its README
 * gives each file's source and licence). Each served score must equal the reference's, an
 * independent float64 forward pass, to 1e-5, through both protocols.
 */

const CORPUS = process.env.KERAS_CORPUS ?? '../shared/keras-corpus';

/** What each file is expected to give; a corpus file not listed here fails the suite. */
const EXPECTED: Record<string, { readonly scores: true; readonly leftOut?: RegExp } | { readonly refused: RegExp }> = {
  'telecom_dense_functional.keras': { scores: true },
  'fraud_dense_bn_functional.keras': { scores: true },
  'adsb_dense_functional_tfkeras_windows.keras': { scores: true },
  'fraud_dense_bn_functional_legacy.h5': { scores: true },
  // Sparse autoencoders: an activity regularizer on the bottleneck, which only training uses.
  'creditcard_dense_sequential_k2.h5': { scores: true, leftOut: /layer "dense_4" \(Dense\): activity_regularizer L1$/ },
  'creditcard_dense_sequential_k3.h5': { scores: true, leftOut: /layer "dense_5" \(Dense\): activity_regularizer L1L2$/ },
  'siem_nested_sequential.keras': { refused: /the file holds no weights at all: the model was saved before it was built or trained/ },
  // Sequence autoencoders: windows of [steps, features].
  'siem_lstm_sequential.keras': { scores: true },
  'bearing_lstm_functional_k2.h5': { scores: true },
  'adsb_lstm_functional_legacy.h5': { scores: true },
};

/** The model files of a folder; none where it is missing (a skipped suite still collects its tests). */
const modelFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((name) => /\.(keras|h5)$/.test(name)) : []);

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'keras-corpus-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

/**
 * Imports `file` as the corpus README says, scored by `score`, then scores its reference rows
 * through both protocols. The projects score with mean squared error; the import's default is mae.
 */
function checkFile(dir: string, name: string, score: 'mae' | 'mse'): void {
  const expected = EXPECTED[name];
  if (score === 'mse' && expected !== undefined && 'refused' in expected) return;
  it.concurrent(`${name} (${score})`, async ({ expect }) => {
    expect(expected, `${name} is not in EXPECTED: say what it should give`).toBeDefined();
    const out = path.join(scratch, `${path.basename(dir)}-${score}-${name}`);
    const result = await runCommand('model/import.ts', [path.join(dir, name), '--out', out, '--name', 'corpus', '--normalisation', 'none', '--threshold', '0.05', '--score', score]);
    if ('refused' in expected!) {
      expect(result.code).toBe(2);
      expect(loggedError(result.stderr)).toMatch(expected.refused);
      expect(existsSync(out)).toBe(false);
      return;
    }
    expect(result.code, result.stderr).toBe(0);
    const leftOut = logLines(result.stderr).find((line) => line.msg === 'left out what only training uses')?.leftOut as string[] | undefined;
    if (expected!.leftOut) expect(leftOut).toEqual([expect.stringMatching(expected!.leftOut)]);
    else expect(leftOut).toBeUndefined();
    const reference = readReference(dir, name);
    const server = await spawnServer({ MODEL_PATH: out });
    try {
      // TensorFlow Serving's instances as they come (a window as its list of steps), V2's data flat.
      const { instances, shape, scores } = expectations(reference, score);
      const tfServing = await fetch(`${server.url}/v1/models/corpus:predict`, { method: 'POST', body: JSON.stringify({ instances }) });
      expect(tfServing.status, await tfServing.clone().text()).toBe(200);
      const { predictions } = (await tfServing.json()) as { predictions: { reconstruction_error: number }[] };
      const v2 = await fetch(`${server.url}/v2/models/corpus/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'beat', shape, datatype: 'FP32', data: instances.flat(2) }] }),
      });
      expect(v2.status, await v2.clone().text()).toBe(200);
      const { outputs } = (await v2.json()) as { outputs: { name: string; data: number[] }[] };
      const v2Scores = outputs.find((output) => output.name === 'reconstruction_error')!.data;
      scores.forEach((expectedScore, i) => {
        expect(Math.abs(predictions[i]!.reconstruction_error - expectedScore)).toBeLessThan(1e-5);
        expect(Math.abs(v2Scores[i]! - expectedScore)).toBeLessThan(1e-5);
      });
    } finally {
      await server.stop();
    }
  });
}

describe('real Keras files in the repository (test/fixtures/keras-corpus)', () => {
  for (const name of modelFiles(FIXTURES)) for (const score of ['mae', 'mse'] as const) checkFile(FIXTURES, name, score);

  it('a window model through V2 as nested and binary data, and a window of another shape refused naming the model\'s', async ({ expect }) => {
    const name = 'bearing_lstm_functional_k2.h5';
    const out = path.join(scratch, 'windows');
    const result = await runCommand('model/import.ts', [path.join(FIXTURES, name), '--out', out, '--name', 'corpus', '--normalisation', 'none', '--threshold', '0.05']);
    expect(result.code, result.stderr).toBe(0);
    const { instances, shape, scores } = expectations(readReference(FIXTURES, name), 'mae');
    const server = await spawnServer({ MODEL_PATH: out });
    try {
      const infer = (init: RequestInit) => fetch(`${server.url}/v2/models/corpus/infer`, { method: 'POST', ...init });
      const nested = await infer({ body: JSON.stringify({ inputs: [{ name: 'beat', shape, datatype: 'FP32', data: instances }] }) });
      expect(nested.status, await nested.clone().text()).toBe(200);
      const nestedScores = ((await nested.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
      const header = JSON.stringify({ inputs: [{ name: 'beat', shape, datatype: 'FP32', parameters: { binary_data_size: shape.reduce((a, b) => a * b, 4) } }] });
      const binary = await infer({
        headers: { 'Inference-Header-Content-Length': String(Buffer.byteLength(header)) },
        body: Buffer.concat([Buffer.from(header), Buffer.from(new Float32Array((instances as number[][][]).flat(2)).buffer)]),
      });
      expect(binary.status, await binary.clone().text()).toBe(200);
      const binaryScores = ((await binary.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
      scores.forEach((expected, i) => {
        expect(Math.abs(nestedScores[i]! - expected)).toBeLessThan(1e-5);
        expect(Math.abs(binaryScores[i]! - expected)).toBeLessThan(1e-5);
      });
      const flat = await infer({ body: JSON.stringify({ inputs: [{ name: 'beat', shape: [1, 7], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7] }] }) });
      expect(flat.status).toBe(400);
      expect(((await flat.json()) as { error: string }).error).toMatch(/inputs\[0\]\.shape is \[1, 7\], which does not match the model's input; it takes \[N, 1, 7\]/);
      const wrong = await fetch(`${server.url}/v1/models/corpus:predict`, { method: 'POST', body: JSON.stringify({ instances: [[[1, 2, 3]]] }) });
      expect(wrong.status).toBe(400);
      expect(((await wrong.json()) as { error: string }).error).toMatch(/instances\[0\]: expected 1 lists of 7 numbers \(or 7 numbers, the steps one after the other\)/);
    } finally {
      await server.stop();
    }
  });
});

describeIf(existsSync(CORPUS), `no Keras corpus at ${CORPUS}: set KERAS_CORPUS, or put it at ../shared/keras-corpus`, 'the whole Keras corpus', () => {
  const inFixtures = new Set(modelFiles(FIXTURES));
  it('has every file listed in EXPECTED', ({ expect }) => {
    expect(modelFiles(CORPUS).filter((name) => !(name in EXPECTED))).toEqual([]);
  });
  for (const name of modelFiles(CORPUS).filter((name) => !inFixtures.has(name))) for (const score of ['mae', 'mse'] as const) checkFile(CORPUS, name, score);
});

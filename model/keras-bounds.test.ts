import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { strToU8, zipSync } from 'fflate';
import h5wasm, { type Group } from 'h5wasm/node';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { logLines } from '../test/command.ts';
import { randomAutoencoder, writeKerasModel } from '../test/keras-files.ts';

/**
 * Files built to exhaust the import (issue 23): each must be refused before the work it would
 * cost, with exit 2, a message naming what was too much and where, no HDF5 diagnostics on the
 * terminal, little memory, and nothing left behind.
 */

const WIDTH = 12;
/** A refusal's peak resident memory: Node.js with TensorFlow.js and h5wasm loaded is about 200 MiB. */
const REFUSAL_MEMORY_BYTES = 400 * 2 ** 20;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'keras-bounds-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

/**
 * Runs the import on `file` and reports its exit code, stderr, peak resident memory (VmHWM, polled)
 * and what it left in a temporary folder of its own (TMPDIR).
 */
async function importPeak(file: string, extra: string[] = []) {
  const out = path.join(scratch, `${path.basename(file)}-${extra.join('')}-out`);
  const tmp = await mkdtemp(path.join(scratch, 'tmp-'));
  // tsx keeps its cache of compiled files in the temporary folder: the shared one, to stay warm.
  const tsxCache = `tsx-${process.getuid!()}`;
  await mkdir(path.join(tmpdir(), tsxCache), { recursive: true });
  await symlink(path.join(tmpdir(), tsxCache), path.join(tmp, tsxCache));
  const child = spawn(process.execPath, ['--import', 'tsx', 'model/import.ts', file, '--out', out, '--name', 'x', '--normalisation', 'none', '--threshold', '1', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TMPDIR: tmp },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let peak = 0;
  const poll = setInterval(() => {
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, { encoding: 'utf8', flag: 'r' }))?.[1];
    if (hwm) peak = Math.max(peak, Number(hwm) * 1024);
  }, 20);
  const closed = once(child, 'close'); // its stderr read to the end: the error line can outlast the exit
  const [code] = (await once(child, 'exit')) as [number];
  clearInterval(poll);
  await closed;
  return { code, stderr, peak, out, leftInTmp: (await readdir(tmp)).filter((name) => name !== tsxCache) };
}

/** A `.keras` archive of the given entries (a real model's, unless replaced). */
async function archive(name: string, entries: Record<string, Uint8Array>): Promise<string> {
  const model = path.join(scratch, `${name}-model.keras`);
  // A scratch folder of its own: the writer's model.weights.h5 would be shared by the tests beside it.
  await writeKerasModel(model, randomAutoencoder(WIDTH, [6], 1), { format: 'keras', dialect: 'keras3', api: 'Functional', scratch: await mkdtemp(path.join(scratch, 'writer-')) });
  const { unzipSync } = await import('fflate');
  const file = path.join(scratch, `${name}.keras`);
  await writeFile(file, zipSync({ ...unzipSync(await readFile(model)), ...entries }));
  return file;
}

/** Sets the uncompressed size that the central directory declares for `entry` (its real data stays as it is). */
function declareSize(zip: Uint8Array, entry: string, size: number): Uint8Array {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let at = 0; at + 46 <= zip.length; at++) {
    if (view.getUint32(at, true) !== 0x02014b50) continue;
    const nameLength = view.getUint16(at + 28, true);
    if (Buffer.from(zip.subarray(at + 46, at + 46 + nameLength)).toString() === entry) view.setUint32(at + 24, size, true);
  }
  return zip;
}

const error = (stderr: string) => logLines(stderr).find((line) => line.level === 'error')?.msg ?? stderr;

describe.concurrent('hostile files: refused before the work, exit 2, little memory, nothing left', () => {
  const cases: [title: string, build: () => Promise<string>, message: RegExp][] = [
    [
      'a .keras whose weights entry declares 3 GiB',
      async () => {
        const file = await archive('huge-entry', {});
        await writeFile(file, declareSize(new Uint8Array(await readFile(file)), 'model.weights.h5', 3 * 2 ** 30));
        return file;
      },
      /the archive's model\.weights\.h5 inflates to 3,221,225,472 bytes, past the [\d,]+ it may take \(--max-parameters N raises it\)/,
    ],
    [
      // fflate inflates into a buffer of the declared size and stops there.
      'a .keras entry that inflates past what it declares: read no further than that',
      async () => {
        const file = await archive('lying-entry', { 'metadata.json': new Uint8Array(8 * 2 ** 20) });
        return writeFile(file, declareSize(new Uint8Array(await readFile(file)), 'metadata.json', 1024)).then(() => file);
      },
      /the archive's metadata\.json is not valid JSON/,
    ],
    [
      'a .keras of 3,000 entries',
      () => archive('many-entries', Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`junk/${i}`, new Uint8Array(16)]))),
      /the archive holds more than 64 entries; a \.keras file holds 3/,
    ],
    [
      'a config.json of 20 MB',
      () => archive('big-config', { 'config.json': strToU8(`{"class_name": "${'a'.repeat(20_000_000)}"}`) }),
      /the archive's config\.json inflates to 20,000,018 bytes, past the 16,777,216 it may take/,
    ],
    [
      'a configuration nested a million deep',
      () => archive('deep-config', { 'config.json': strToU8('['.repeat(1_000_000)) }),
      /the model configuration is nested more than 64 levels deep \(at character 64\)/,
    ],
    [
      'a configuration of 200,000 Dense layers',
      () =>
        archive('wide-config', {
          'config.json': strToU8(JSON.stringify({ class_name: 'Sequential', config: { layers: Array.from({ length: 200_000 }, () => ({ class_name: 'Dense', config: { units: 1 } })) } })),
        }),
      /the model configuration holds more than 200,000 JSON arrays and objects/,
    ],
    [
      'a configuration of 2,000 layers',
      () =>
        archive('many-layers', {
          'config.json': strToU8(JSON.stringify({ class_name: 'Sequential', config: { layers: Array.from({ length: 2000 }, (_, i) => ({ class_name: 'Dropout', config: { name: `d${i}`, rate: 0.1 } })) } })),
        }),
      /the model has 2,000 layers, past the 1,000 an autoencoder may have/,
    ],
    [
      'a Dense layer wider than the weights the file holds',
      () =>
        archive('wide-dense', {
          'config.json': strToU8(JSON.stringify({ class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'dense', units: 400_000_000 } }] } })),
        }),
      /layer "dense" \(Dense\): units 400,000,000 needs more weights than the file's 162 values/,
    ],
    ['invalid JSON in metadata.json', () => archive('bad-metadata', { 'metadata.json': strToU8('{"keras_version": 3.') }), /the archive's metadata\.json is not valid JSON/],
    ['invalid JSON in config.json', () => archive('bad-config', { 'config.json': strToU8('{"class_name": "Sequential",') }), /the archive's config\.json is not valid JSON/],
    ['a weights entry that is not HDF5', () => archive('not-hdf5', { 'model.weights.h5': strToU8('not HDF5 at all') }), /\(model\.weights\.h5\): not an HDF5 file, or a damaged one/],
    ['an entry named outside the archive', () => archive('traversal', { '../../evil.sh': strToU8('#!/bin/sh') }), /the archive's entry "\.\.\/\.\.\/evil\.sh" names a place outside it/],
    [
      'a 40 KB .h5 declaring a 20000 x 20000 kernel',
      async () => {
        const file = path.join(scratch, 'huge-kernel.h5');
        await writeKerasModel(file, randomAutoencoder(WIDTH, [6], 1), { format: 'h5', dialect: 'keras2', api: 'Sequential', scratch });
        await h5wasm.ready;
        const h5 = new h5wasm.File(file, 'a');
        try {
          const dense = (h5.get('model_weights') as Group).get('dense') as Group;
          dense.create_dataset({ name: 'huge', data: new Float32Array(4), shape: [2, 2], dtype: '<f4', maxshape: [null, null], chunks: [100, 100] }).resize([20000, 20000]);
          dense.delete_attribute('weight_names');
          dense.create_attribute('weight_names', ['huge', 'dense/bias:0'], [2]);
        } finally {
          h5.close();
        }
        return file;
      },
      /weight \/model_weights\/dense\/huge holds 400,000,000 values, past the 50,000,000 the model's weights may hold in all \(--max-parameters N raises it\)/,
    ],
    [
      'a truncated .h5',
      async () => {
        const file = path.join(scratch, 'truncated.h5');
        await writeFile(file, (await readFile('test/fixtures/keras-corpus/creditcard_dense_sequential_k2.h5')).subarray(0, 60_000));
        return file;
      },
      /truncated\.h5: not an HDF5 file, or a damaged one \(H5Fopen: unable to synchronously open file\)/,
    ],
  ];

  it.for(cases)('%s', async ([, build, message], { expect }) => {
    const file = await build();
    const { code, stderr, peak, out, leftInTmp } = await importPeak(file);
    expect(code, stderr).toBe(2);
    expect(leftInTmp).toEqual([]);
    expect(error(stderr)).toMatch(message);
    expect(stderr).not.toContain('HDF5-DIAG');
    expect(stderr).not.toContain('unexpected failure');
    expect(peak).toBeLessThan(REFUSAL_MEMORY_BYTES);
    expect(existsSync(out)).toBe(false);
  });

  it('counts each weight of a nested model once against --max-parameters', async ({ expect }) => {
    const file = path.join(scratch, 'nested.keras');
    const spec = randomAutoencoder(WIDTH, [6, 3], 1);
    await writeKerasModel(file, spec, { format: 'keras', dialect: 'keras3', api: 'Sequential', nested: true, scratch: await mkdtemp(path.join(scratch, 'writer-')) });
    const values = spec.layers.reduce((sum, layer) => sum + (layer.kind === 'Dense' ? layer.kernel.flat().length + layer.bias.length : 0), 0);
    const exact = await importPeak(file, ['--max-parameters', String(values)]);
    expect(exact.code, exact.stderr).toBe(0);
    const under = await importPeak(file, ['--max-parameters', String(values - 1)]);
    expect(under.code).toBe(2);
  });

  it('takes a file past the default budget when --max-parameters allows it', async ({ expect }) => {
    const file = path.join(scratch, 'budget.h5');
    await copyFile('test/fixtures/keras-corpus/creditcard_dense_sequential_k2.h5', file);
    const small = await importPeak(file, ['--max-parameters', '100']);
    expect(small.code).toBe(2);
    expect(error(small.stderr)).toMatch(/past the 100 the model's weights may hold in all \(--max-parameters N raises it\)/);
    const enough = await importPeak(file, ['--max-parameters', '1000000']);
    expect(enough.code, enough.stderr).toBe(0);
  });
});

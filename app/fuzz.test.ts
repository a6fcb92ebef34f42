import http from 'node:http';
import { deflateSync, gzipSync } from 'node:zlib';
import { fc, it } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { bundledMetadata } from '../test/bundled-model.ts';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';

/**
 * Property-based fuzzing of both protocols against a real server process on 127.0.0.1: requests
 * of random shapes, datatypes, encodings, huge and tiny numbers, duplicated and unknown fields.
 * Whatever is sent, it gets an HTTP answer that is not a 5xx (an error as JSON saying what), and
 * the process never exits. A seed that fast-check reports failing is kept below as a plain test.
 */

const MODEL = bundledMetadata.name;
const WIDTH = bundledMetadata.signature.inputs[0].shape[1];
const OUTPUTS = bundledMetadata.signature.outputs.map((output) => output.name);
const RUNS = { numRuns: 200 };

interface FuzzRequest {
  readonly route: string;
  readonly body: Buffer;
  readonly headers: Record<string, string>;
}

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

function send(url: string, { route, body, headers }: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}${route}`, { method: 'POST', headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, contentType: String(response.headers['content-type']), body: Buffer.concat(chunks) }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

// JSON is built as text, so that numbers JavaScript cannot hold (1e400) and duplicated keys reach the server as a client would send them.

/** A number as a client may write it: ordinary, huge, tiny, past FP32's or float64's range, or no number at all. */
const exoticValueText = fc.oneof(
  { weight: 3, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)) },
  { weight: 3, arbitrary: fc.constantFrom('1e40', '-1e39', '3.4028235e38', '3.4028234e38', '-3.5e38', '1e400', '-1e400', '1e-400', '5e-324', '1.4e-45', '-0', '1E308', '123456789012345678901234567890') },
  { weight: 1, arbitrary: fc.json({ depthSize: 'xsmall' }) },
);
const anyJson = fc.json({ depthSize: 'small' });
/** Rows of ordinary readings, `width` wide, of which one value may be exotic. */
const rowsOf = (width: fc.Arbitrary<number>) =>
  fc
    .tuple(fc.integer({ min: 0, max: 66 }), width)
    .chain(([rows, width]) =>
      fc.tuple(
        fc.array(fc.array(fc.double({ min: -8, max: 8, noNaN: true }).map(String), { minLength: width, maxLength: width }), { minLength: rows, maxLength: rows }),
        fc.option(fc.tuple(fc.nat(), fc.nat(), exoticValueText), { freq: 2 }),
      ),
    )
    .map(([rows, exotic]) => {
      if (exotic && rows.length > 0 && rows[0]!.length > 0) {
        const [row, column, value] = exotic;
        rows[row % rows.length]![column % rows[0]!.length] = value;
      }
      return rows;
    });
const widthArbitrary = fc.oneof({ weight: 8, arbitrary: fc.constant(WIDTH) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, WIDTH - 1, WIDTH + 1) });

/**
 * An object's text: each known field present with its chance (and now and then any JSON instead
 * of its value), maybe a field twice or an unknown one, in any order.
 */
const objectOf = (fields: Record<string, readonly [value: fc.Arbitrary<string>, presentOneIn: number]>) =>
  fc
    .tuple(
      fc.tuple(
        ...Object.entries(fields).map(([key, [value, presentOneIn]]) =>
          fc.option(fc.oneof({ weight: 12, arbitrary: value }, { weight: 1, arbitrary: anyJson }).map((text) => [key, text] as const), { freq: presentOneIn }),
        ),
      ),
      fc.oneof(
        { weight: 5, arbitrary: fc.constant([] as (readonly [string, string])[]) },
        { weight: 1, arbitrary: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...Object.keys(fields)), fc.string({ maxLength: 12 })), anyJson), { minLength: 1, maxLength: 2 }) },
      ),
    )
    .chain(([present, extra]) => {
      const entries = [...present.filter((entry) => entry !== null), ...extra];
      return fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length });
    })
    .map((entries) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}: ${value}`).join(', ')}}`);
const listText = (items: readonly string[]) => `[${items.join(', ')}]`;
/** Present in all but one case in this many. */
const USUALLY = 20;
/** Present in about half the cases. */
const OFTEN = 2;

const datatypeText = fc.oneof({ weight: 8, arbitrary: fc.constant('"FP32"') }, { weight: 1, arbitrary: fc.constantFrom('"FP64"', '"INT32"', '"BOOL"', '"BYTES"', '"fp32"', '""', '7', 'null') });
const v2Input = fc.tuple(rowsOf(widthArbitrary), fc.boolean(), fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) })).chain(([rows, nested, shapeSkew]) =>
  objectOf({
    name: [fc.oneof({ weight: 8, arbitrary: fc.constant('"beat"') }, { weight: 1, arbitrary: fc.constantFrom('"x"', '5', 'null') }), USUALLY],
    shape: [fc.constant(listText([String(rows.length + shapeSkew), String(rows[0]?.length ?? WIDTH)])), USUALLY],
    datatype: [datatypeText, USUALLY],
    data: [fc.constant(nested ? listText(rows.map(listText)) : listText(rows.flat())), USUALLY],
    parameters: [fc.constantFrom('{}', '{"binary_data_size": 4}', '{"binary_data_size": -1}', '{"binary_data_size": "x"}'), 8],
  }),
);
const v2Outputs = fc
  .array(
    objectOf({
      name: [fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...OUTPUTS.map((name) => JSON.stringify(name))) }, { weight: 1, arbitrary: fc.constantFrom('"z"', '5', 'null') }), USUALLY],
      parameters: [fc.constantFrom('{"binary_data": true}', '{"binary_data": false}', '{"binary_data": 1}', '[]'), OFTEN],
    }),
    { minLength: 1, maxLength: 4 },
  )
  .map(listText);
const v2Body = objectOf({
  inputs: [fc.oneof({ weight: 8, arbitrary: v2Input.map((input) => listText([input])) }, { weight: 1, arbitrary: fc.array(v2Input, { maxLength: 2 }).map(listText) }), USUALLY],
  outputs: [v2Outputs, OFTEN],
  id: [fc.string().map((s) => JSON.stringify(s)), 4],
  parameters: [fc.constantFrom('{"binary_data_output": true}', '{"binary_data_output": false}', '{"binary_data_output": "yes"}', 'null'), 4],
});

const tfServingBody = rowsOf(widthArbitrary).chain((rows) =>
  fc.oneof(
    objectOf({
      instances: [fc.constantFrom(listText(rows.map(listText)), listText(rows.map((row) => `{"beat": ${listText(row)}}`)), listText(rows.map((row) => `{"other": ${listText(row)}}`))), USUALLY],
      signature_name: [fc.constantFrom('"serving_default"', '"explain"', '"classify"', '"constructor"', '3'), 4],
    }),
    objectOf({
      inputs: [fc.constantFrom(listText(rows.map(listText)), `{"beat": ${listText(rows.map(listText))}}`), USUALLY],
      signature_name: [fc.constantFrom('"serving_default"', '"explain"', '"classify"', '"constructor"', '3'), 4],
    }),
  ),
);

const V2_ROUTES = [`/v2/models/${MODEL}/infer`, `/v2/models/${MODEL}/versions/${bundledMetadata.version}/infer`, `/v2/models/other/infer`];
const TF_SERVING_ROUTES = [`/v1/models/${MODEL}:predict`, '/predict', `/v1/models/${MODEL}/labels/stable:predict`, `/v1/models/${MODEL}:regress`];

/** The same body as it is, gzipped, deflated, or claiming an encoding it does not have. */
const encoded = (body: string) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant<[string, Buffer]>(['', Buffer.from(body)]) },
    { weight: 2, arbitrary: fc.constantFrom<[string, Buffer]>(['gzip', gzipSync(body)], ['deflate', deflateSync(body)]) },
    { weight: 1, arbitrary: fc.constantFrom<[string, Buffer]>(['gzip', Buffer.from(body)], ['br', Buffer.from(body)]) },
  ).map(([encoding, bytes]) => ({ body: bytes, headers: encoding ? { 'Content-Encoding': encoding } : ({} as Record<string, string>) }));

/** A route of `routes`, the first most often: the others are there to be refused. */
const routeOf = (routes: readonly string[]) => fc.oneof({ weight: 3 * routes.length, arbitrary: fc.constant(routes[0]!) }, { weight: routes.length, arbitrary: fc.constantFrom(...routes) });

const jsonRequest = fc
  .oneof(fc.tuple(routeOf(V2_ROUTES), v2Body), fc.tuple(routeOf(TF_SERVING_ROUTES), tfServingBody))
  .chain(([route, body]) => encoded(body).map(({ body, headers }) => ({ route, body, headers })));

/** Binary tensor data: an FP32 header and values of every kind (NaN, ±Infinity, subnormals), with a header length that may lie. */
const binaryRequest = fc
  .tuple(
    fc.integer({ min: 0, max: 66 }),
    fc.constantFrom(WIDTH, WIDTH - 1),
    fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) }),
    fc.oneof(fc.float(), fc.constantFrom(Number.NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 1e-45)),
    v2Outputs,
    fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
  )
  .map(([rows, width, sizeSkew, value, outputs, lengthSkew]) => {
    const data = Buffer.alloc(rows * width * 4);
    for (let i = 0; i < rows * width; i++) data.writeFloatLE(i % 7 === 3 ? value : (i % 11) / 10, i * 4);
    const input = `{"name": "beat", "shape": [${rows}, ${width}], "datatype": "FP32", "parameters": {"binary_data_size": ${data.length + sizeSkew}}}`;
    const header = Buffer.from(`{"inputs": [${input}], "outputs": ${outputs}, "parameters": {"binary_data_output": true}}`);
    return { route: V2_ROUTES[0]!, body: Buffer.concat([header, data]), headers: { 'Inference-Header-Content-Length': String(header.length + lengthSkew) } };
  });

/** Bytes that are no request at all. */
const garbageRequest = fc.tuple(fc.constantFrom(...V2_ROUTES, ...TF_SERVING_ROUTES), fc.uint8Array({ maxLength: 4096 }), fc.constantFrom('', 'gzip', 'deflate')).map(([route, bytes, encoding]) => ({
  route,
  body: Buffer.from(bytes),
  headers: encoding ? { 'Content-Encoding': encoding } : ({} as Record<string, string>),
}));

describe('fuzzing both protocols against a real server', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(async () => {
    expect(server.child.exitCode).toBeNull();
    expect(await server.stop()).toBe(0);
  });

  /**
   * Every request gets an answer, never a 5xx; an error is JSON that says what. A server that
   * exits fails the property, and is started anew so that fast-check can shrink the request that
   * took it down against a live one.
   */
  const answersWell = async (request: FuzzRequest) => {
    const answer = await send(server.url, request).catch((error: unknown) => error as Error);
    // A connection reset by a process that is exiting: wait to see it go.
    if (answer instanceof Error) await Promise.race([server.exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      const ended = `the server exited (${server.child.exitCode ?? server.child.signalCode})`;
      server = await spawnServer();
      throw new Error(ended);
    }
    if (answer instanceof Error) throw answer;
    expect(answer.status, answer.body.toString().slice(0, 300)).toBeLessThan(500);
    if (answer.status >= 400) {
      expect(answer.contentType).toMatch(/^application\/json/);
      expect(typeof JSON.parse(answer.body.toString()).error).toBe('string');
    }
  };

  it.prop([jsonRequest], RUNS)('JSON requests of either protocol, as they are or compressed', answersWell);
  it.prop([binaryRequest], RUNS)('binary tensor data', answersWell);
  it.prop([garbageRequest], RUNS)('bytes that are no request', answersWell);

  // What the properties found against the code they were written for, kept as plain requests.
  it.each([
    // A single FP32 overflow took the process down (exit 7) through the reconstruction-error histogram.
    ['a V2 row holding 1e40', `/v2/models/${MODEL}/infer`, `{"inputs": [{"name": "beat", "shape": [1, ${WIDTH}], "datatype": "FP32", "data": [${[...Array(WIDTH - 1).fill('0.5'), '1e40'].join(', ')}]}]}`],
    ['a TF Serving instance holding -1e39', `/v1/models/${MODEL}:predict`, `{"instances": [[${['-1e39', ...Array(WIDTH - 1).fill('0.5')].join(', ')}]]}`],
  ])('regression: %s', async (_, route, body) => {
    await answersWell({ route, body: Buffer.from(body), headers: {} });
  });

  it('is still the same process, and serves', async () => {
    expect(server.child.exitCode).toBeNull();
    const beat = bundledMetadata.examples![0]!.values;
    const answer = await send(server.url, { route: '/predict', body: Buffer.from(JSON.stringify({ instances: [beat] })), headers: {} });
    expect(answer.status).toBe(200);
  });
});

import { promisify } from 'node:util';
import { gunzip, inflate, type InputType, type ZlibOptions } from 'node:zlib';
import type { Context } from 'hono';
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.ts';
import { structureBeyond } from '../../lib/json-structure.ts';
import { requestHeader } from '../node-request.ts';

/**
 * The framing of inference requests and responses, for both protocols: the body's encoding
 * (Content-Encoding gzip or deflate), its JSON, and the Open Inference Protocol's binary tensor
 * data extension (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md):
 * a JSON header of Inference-Header-Content-Length bytes, then each binary tensor's bytes in the
 * order of the tensors in the header, little-endian, row-major. The body is read by its own
 * structure whatever its Content-Type says, as Triton and TensorFlow Serving do: their clients
 * send octet-stream, form-urlencoded (curl -d) or nothing.
 */

export const INFERENCE_HEADER_LENGTH = 'Inference-Header-Content-Length';
/** The header's name as Node.js keys a request's headers. */
const INFERENCE_HEADER_LENGTH_KEY = INFERENCE_HEADER_LENGTH.toLowerCase() as Lowercase<typeof INFERENCE_HEADER_LENGTH>;

export interface FramingLimits {
  /** MAX_BODY_BYTES: the largest body, before and after decompression. */
  readonly maxBodyBytes: number;
  /** MAX_BATCH_SIZE: bounds the arrays and objects the JSON may hold (see checkStructure). */
  readonly maxBatchSize: number;
  /**
   * The arrays and objects one instance may take: a row and the object naming it, and a window's
   * list a step. @default 2
   */
  readonly containersPerInstance?: number;
}

/** What bounds a request's JSON before it is parsed. */
type JsonLimits = Pick<FramingLimits, 'maxBatchSize' | 'containersPerInstance'>;

/** An inference request's body: its JSON, and the binary tensor data after it, if any. */
export interface FramedRequest {
  readonly json: Record<string, unknown>;
  readonly binary: BinaryData | undefined;
}

type Inflate = (buffer: InputType, options: ZlibOptions) => Promise<Buffer>;
const DECODERS: Record<string, Inflate> = { gzip: promisify(gunzip), deflate: promisify(inflate) };

/**
 * The body's bytes, decoded from its Content-Encoding, never larger than MAX_BODY_BYTES; undefined,
 * not a promise of it, when it has none, for the caller to read it as text without waiting a turn
 * (see readInferenceRequest).
 */
function decodedBody(c: Context, limits: FramingLimits): Promise<Buffer> | undefined {
  const encoding = requestHeader(c, 'content-encoding')?.trim().toLowerCase();
  return encoding === undefined || encoding === '' || encoding === 'identity' ? undefined : decode(c, encoding, limits);
}

async function decode(c: Context, encoding: string, { maxBodyBytes }: FramingLimits): Promise<Buffer> {
  const decoder = DECODERS[encoding];
  if (!decoder) throw new UnsupportedMediaTypeError(`Content-Encoding "${encoding}" is not supported; send gzip, deflate or an unencoded body`);
  try {
    // maxOutputLength stops the decompression there: a small body cannot inflate into a large one.
    return await decoder(Buffer.from(await c.req.raw.arrayBuffer()), { maxOutputLength: maxBodyBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new PayloadTooLargeError(`the request body inflates to more than ${maxBodyBytes} bytes (MAX_BODY_BYTES)`);
    }
    throw new InvalidRequestError(`the request body is not valid ${encoding} data: ${(error as Error).message}`);
  }
}

/** The length of the JSON header, from Inference-Header-Content-Length's `value`, checked against the body. */
function headerLength(value: string, bodyLength: number): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidRequestError(`${INFERENCE_HEADER_LENGTH} "${value}" is not a number of bytes`);
  const length = Number(value);
  if (length > bodyLength) {
    throw new InvalidRequestError(`${INFERENCE_HEADER_LENGTH} is ${length} bytes, past the end of the ${bodyLength}-byte (decoded) body`);
  }
  return length;
}

/**
 * Reads an inference request. `binary`: whether the protocol has binary tensor data (the Open
 * Inference Protocol); without it the whole body is JSON. The common request, plain JSON, is read
 * straight as text, as a bare endpoint's `c.req.json()` does, and waits for it through one `then`
 * (an async function would cost it a promise and a resumption more): the bytes are copied only for
 * a body that is compressed or carries binary data. The body is read from the raw Request, not
 * through Hono's `c.req`, which keeps what it read until the answer: through the wait for the
 * forward pass, where every request in the queue is copied by each young-generation collection.
 */
export function readInferenceRequest(c: Context, limits: FramingLimits, { binary }: { binary: boolean }): Promise<FramedRequest> {
  const decoding = decodedBody(c, limits);
  const declared = binary ? requestHeader(c, INFERENCE_HEADER_LENGTH_KEY) : undefined;
  if (decoding === undefined && declared === undefined) return c.req.raw.text().then((text) => jsonRequest(text, limits));
  return framedRequest(c, limits, decoding, declared);
}

const jsonRequest = (text: string, limits: FramingLimits): FramedRequest => ({ json: parseJsonObject(text, limits), binary: undefined });

/** A request whose body is compressed, or holds binary data after `declared` bytes of JSON. */
async function framedRequest(c: Context, limits: FramingLimits, decoding: Promise<Buffer> | undefined, declared: string | undefined): Promise<FramedRequest> {
  const decoded = await decoding;
  if (declared === undefined) return jsonRequest(decoded!.toString('utf8'), limits);
  const body = decoded ?? Buffer.from(await c.req.raw.arrayBuffer());
  const length = headerLength(declared, body.length);
  return { json: parseJsonObject(body.toString('utf8', 0, length), limits), binary: new BinaryData(body.subarray(length)) };
}

/** The binary tensor data of a request: each tensor takes its bytes in turn. */
export class BinaryData {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  /** The next `size` bytes, for the tensor `where`. */
  take(size: number, where: string): Uint8Array {
    if (this.offset + size > this.bytes.length) {
      throw new InvalidRequestError(
        `${where}.parameters.binary_data_size is ${size} bytes, but only ${this.bytes.length - this.offset} bytes of binary data follow the JSON header`,
      );
    }
    return this.bytes.subarray(this.offset, (this.offset += size));
  }

  /** Checks that the tensors took every byte. */
  finish(): void {
    const left = this.bytes.length - this.offset;
    if (left > 0) throw new InvalidRequestError(`${left} bytes of binary data after the JSON header belong to no input's binary_data_size`);
  }
}

/** FP32 tensor data: 4 little-endian bytes a value. */
export function decodeFp32(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

export type BinaryDatatype = 'FP32' | 'BOOL';

/** A tensor's data as bytes: FP32 little-endian, BOOL one byte a value (1 true, 0 false). */
export function encodeTensor(datatype: BinaryDatatype, data: readonly (number | boolean)[]): Uint8Array {
  if (datatype === 'BOOL') return Uint8Array.from(data, (value) => (value ? 1 : 0));
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  data.forEach((value, i) => view.setFloat32(i * 4, value as number, true));
  return bytes;
}

/**
 * Whether the client asked for a compressed answer (Accept-Encoding): app.ts compresses its answer
 * then, and the compress middleware needs the answer's Content-Length to leave a small one alone.
 */
export const acceptsCompression = (c: Context) => requestHeader(c, 'accept-encoding') !== undefined;

/**
 * Answers `c` with a JSON header followed by binary tensor data, as the extension specifies, or with
 * JSON alone when there is none. The Response is built here rather than with `c.body`, which turns
 * more than one header into a Headers object that @hono/node-server then converts back, on every
 * answer (its plain-object path is the one a bare `c.json` takes). Content-Length is stated only
 * for a client that accepts compression (acceptsCompression); otherwise @hono/node-server sets it
 * from the body, without Node.js checking it as a header (1% of a request's instructions,
 * docs/benchmarks.md).
 */
export function inferenceResponse(c: Context, header: object, binary: readonly Uint8Array[] = []): Response {
  const json = JSON.stringify(header);
  const body = binary.length === 0 ? json : Buffer.concat([Buffer.from(json), ...binary]);
  const length = acceptsCompression(c) && { 'Content-Length': String(Buffer.byteLength(body)) };
  if (binary.length === 0) return new Response(body, { headers: { 'Content-Type': 'application/json', ...length } });
  return new Response(body, { headers: { 'Content-Type': 'application/octet-stream', ...length, [INFERENCE_HEADER_LENGTH]: String(Buffer.byteLength(json)) } });
}

/** Deeper than any request of either protocol nests (V2's nested data sits 5 levels down). */
const MAX_DEPTH = 32;

/**
 * How many arrays and objects a request may hold: two a row (a TF Serving named instance is an
 * object around an array) and room for the request's own structure.
 */
const containerBudget = ({ maxBatchSize, containersPerInstance = 2 }: JsonLimits) => containersPerInstance * maxBatchSize + 64;

function countOf(text: string, character: string): number {
  let count = 0;
  for (let at = text.indexOf(character); at >= 0; at = text.indexOf(character, at + 1)) count++;
  return count;
}

/**
 * Bounds what JSON.parse would build, before it builds it. JSON.parse makes one array or object
 * for each "[" or "{" outside a string: a 4 MB body of "[]"s becomes 1.3 million arrays and
 * ~95 MiB. Counting those characters natively is cheap and bounds it from above; only a body with
 * more of them than the budget (some may be inside strings) is read character by character, to
 * be sure, and there a nesting deeper than any request's is named as such.
 */
function checkStructure(text: string, limits: JsonLimits): void {
  const { maxBatchSize } = limits;
  const budget = containerBudget(limits);
  if (countOf(text, '[') + countOf(text, '{') <= budget) return;
  const beyond = structureBeyond(text, { maxDepth: MAX_DEPTH, maxContainers: budget });
  if (beyond?.bound === 'depth') throw new InvalidRequestError(`the request body is nested more than ${MAX_DEPTH} levels deep (at position ${beyond.position})`);
  if (beyond) {
    throw new InvalidRequestError(
      `the request body holds more than ${budget} JSON arrays and objects (at position ${beyond.position}): ` +
        `a request carries at most ${maxBatchSize} instances (MAX_BATCH_SIZE)`,
    );
  }
}

/**
 * A request's JSON as an object; anything else is an error that says what was sent. Its shape is
 * bounded before it is parsed (see checkStructure), so that no oversized request costs memory.
 */
export function parseJsonObject(text: string, limits: JsonLimits): Record<string, unknown> {
  checkStructure(text, limits);
  if (text.trim() === '') throw new InvalidRequestError('the request body is empty; send a JSON object');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new InvalidRequestError(`malformed JSON in the request body: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequestError(`the request body must be a JSON object, got ${Array.isArray(body) ? 'an array' : typeof body}`);
  }
  return body as Record<string, unknown>;
}

import type { Context } from 'hono';
import { InvalidRequestError, UnsupportedMediaTypeError } from '../errors.ts';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** Deeper than any request of either protocol nests (V2's nested data sits 5 levels down). */
const MAX_DEPTH = 32;

/**
 * How many arrays and objects a request may hold: two a row (a TF Serving named instance is an
 * object around an array) and room for the request's own structure.
 */
const containerBudget = (maxBatchSize: number) => 2 * maxBatchSize + 64;

const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Bounds what JSON.parse would build, before it builds it. JSON.parse makes one array or object
 * for each "[" or "{" outside a string: a 4 MB body of "[]"s becomes 1.3 million arrays and
 * ~95 MiB, and a deep one becomes a value that every later walk over it must be wary of.
 */
function checkStructure(text: string, maxBatchSize: number): void {
  const budget = containerBudget(maxBatchSize);
  let containers = 0;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) {
      inString = true;
    } else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      if (++depth > MAX_DEPTH) throw new InvalidRequestError(`the request body is nested more than ${MAX_DEPTH} levels deep (at character ${i})`);
      if (++containers > budget) {
        throw new InvalidRequestError(
          `the request body holds more than ${budget} JSON arrays and objects (at character ${i}): ` +
            `a request carries at most ${maxBatchSize} instances (MAX_BATCH_SIZE)`,
        );
      }
    } else if (code === CLOSE_ARRAY || code === CLOSE_OBJECT) {
      depth--;
    }
  }
}

/**
 * A request body as a JSON object; anything else is an error that says what was sent. Its shape
 * is bounded before it is parsed (see checkStructure), so that no oversized or deeply nested
 * request costs memory or a deep walk.
 */
export async function readJsonObject(c: Context, maxBatchSize: number): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type');
  if (type !== undefined && !JSON_TYPE.test(type)) {
    throw new UnsupportedMediaTypeError(`Content-Type "${type}" is not JSON; send Content-Type: application/json`);
  }
  const text = await c.req.text();
  if (text.trim() === '') throw new InvalidRequestError('the request body is empty; send a JSON object');
  checkStructure(text, maxBatchSize);
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

import type { Context } from 'hono';
import { InvalidRequestError, UnsupportedMediaTypeError } from '../errors.ts';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** A request body as a JSON object; anything else is an error that says what was sent. */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type');
  if (type !== undefined && !JSON_TYPE.test(type)) {
    throw new UnsupportedMediaTypeError(`Content-Type "${type}" is not JSON; send Content-Type: application/json`);
  }
  const text = await c.req.text();
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

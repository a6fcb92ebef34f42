/**
 * Errors a request can end in, independent of HTTP: app.ts maps each to its status code in one
 * place (see its onError).
 */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
}

/** An unknown model, model version or path. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** A body in an encoding the server cannot decode (Content-Encoding). */
export class UnsupportedMediaTypeError extends Error {
  override name = 'UnsupportedMediaTypeError';
}

export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
}

/** An operation of a protocol that this server does not offer (e.g. loading another model). */
export class UnsupportedOperationError extends Error {
  override name = 'UnsupportedOperationError';
}

/** The model is not loaded yet, or failed to. */
export class NotReadyError extends Error {
  override name = 'NotReadyError';
}

/** One instance (a row) of a request that cannot be scored; the adapters say where it was. */
export class InvalidInstanceError extends Error {
  constructor(
    readonly index: number,
    readonly problem: string,
  ) {
    super(`instance ${index}: ${problem}`);
    this.name = 'InvalidInstanceError';
  }
}

/** Most items of an array, or keys of an object, that an error message shows. */
const SHOWN = 8;
const quote = (text: string) => JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);

/**
 * A short description of a request's value for an error message: a string or a small array of
 * numbers as it was sent, anything else by its kind and size. It never walks past the value's own
 * items, so a huge or deeply nested value costs no more than a small one.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (Array.isArray(value)) {
    if (value.length <= SHOWN && value.every((item) => typeof item === 'number')) return `[${value.join(', ')}]`;
    return `an array of ${value.length} ${value.length === 1 ? 'value' : 'values'}`;
  }
  if (typeof value === 'object') {
    const keys: string[] = [];
    for (const key in value) if (keys.push(quote(key)) > SHOWN) break;
    if (keys.length === 0) return 'an empty object';
    return `an object with keys ${keys.slice(0, SHOWN).join(', ')}${keys.length > SHOWN ? ', …' : ''}`;
  }
  return `a ${typeof value}`;
}

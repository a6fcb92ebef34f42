/**
 * Checking the rows a caller asks the model to score, without TensorFlow.js: the server's protocol
 * adapters and its cluster primary import this, and must not load it.
 */

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

/** The largest finite FP32 value: the input's datatype holds nothing larger. */
export const FP32_MAX = 3.4028234663852886e38;

/**
 * The instances of a window model ([steps, features]) as flat rows, each window's steps one after
 * the other: a window comes as `steps` lists of `features` values (TensorFlow Serving's instances,
 * V2's nested data), or already flat. Anything else is left for validateInstances to name.
 */
export function flattenWindows(instances: readonly unknown[], [steps, features]: readonly [number, number]): unknown[] {
  return instances.map((instance) => {
    if (!Array.isArray(instance) || instance.length !== steps || !instance.every((step) => Array.isArray(step) && step.length === features)) return instance;
    return (instance as unknown[][]).flat();
  });
}

/**
 * Checks that every instance is an array of `inputLength` numbers that FP32 holds as finite values,
 * and names the first instance (and value) that is not. A JSON number such as 1e40 is finite in
 * JavaScript but Infinity as FP32, which no score can be computed from. `window`, for a window
 * model, says what else an instance could have been.
 */
export function validateInstances(instances: readonly unknown[], inputLength: number, window?: readonly [number, number]): asserts instances is number[][] {
  const expected = window ? `${window[0]} lists of ${window[1]} numbers (or ${inputLength} numbers, the steps one after the other)` : `an array of ${inputLength} numbers`;
  instances.forEach((instance, index) => {
    if (!Array.isArray(instance)) {
      throw new InvalidInstanceError(index, `expected ${expected}, got ${describeValue(instance)}`);
    }
    if (instance.length !== inputLength) {
      throw new InvalidInstanceError(index, window ? `expected ${expected}, got ${describeValue(instance)}` : `expected ${inputLength} values, got ${instance.length}`);
    }
    for (let position = 0; position < inputLength; position++) {
      const value: unknown = instance[position];
      // One test on the common path: NaN, ±Infinity and values past FP32's range all fail it.
      if (typeof value !== 'number' || !Number.isFinite(Math.fround(value))) {
        const problem = typeof value === 'number' && Number.isFinite(value) ? `outside FP32's finite range (±${FP32_MAX})` : 'expected a finite number';
        throw new InvalidInstanceError(index, `value ${position} is ${describeValue(value)}, ${problem}`);
      }
    }
  });
}

/**
 * The rows a caller asks the model to score: what is wrong with one, and how its values are
 * described, without TensorFlow.js (the server's protocol adapters and its cluster primary import
 * this, and must not load it).
 */

/** The values of one instance of `dims`, flat, in row-major order. */
export const instanceWidth = (dims: readonly number[]) => dims.reduce((product, size) => product * size, 1);

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
 * V2's nested data), or already flat. Anything else is left for the model's normaliser to name.
 */
export function flattenWindows(instances: readonly unknown[], [steps, features]: readonly [number, number]): unknown[] {
  return instances.map((instance) => {
    if (!Array.isArray(instance) || instance.length !== steps || !instance.every((step) => Array.isArray(step) && step.length === features)) return instance;
    return (instance as unknown[][]).flat();
  });
}

/**
 * Why an instance that is not an array of the instance's width (`dims`: a row's, or a window's
 * steps × features) cannot be scored.
 */
export function shapeProblem(instance: unknown, dims: readonly number[]): string {
  const width = instanceWidth(dims);
  if (dims.length === 2) return `expected ${dims[0]} lists of ${dims[1]} numbers (or ${width} numbers, the steps one after the other), got ${describeValue(instance)}`;
  return Array.isArray(instance) ? `expected ${width} values, got ${instance.length}` : `expected an array of ${width} numbers, got ${describeValue(instance)}`;
}

/**
 * Why the value at `position` of an instance cannot be scored: it is not a number that FP32 holds
 * as a finite value. A JSON number such as 1e40 is finite in JavaScript but Infinity as FP32, which
 * no score can be computed from.
 */
export function valueProblem(position: number, value: unknown): string {
  const problem = typeof value === 'number' && Number.isFinite(value) ? `outside FP32's finite range (±${FP32_MAX})` : 'expected a finite number';
  return `value ${position} is ${describeValue(value)}, ${problem}`;
}

import { readFile, stat } from 'node:fs/promises';
import { DataFileError } from './data.ts';
import type { Normalisation } from './artifact.ts';

/**
 * A fitted scikit-learn scaler, as JSON of its class and fitted attributes, made into the
 * normalisation it applies. SCALER_PYTHON is the one line of Python that writes that JSON from the
 * pickle a project keeps (docs/model.md quotes it).
 */
export const SCALER_PYTHON =
  'import json, pickle; s = pickle.load(open("scaler.pkl", "rb")); ' +
  'json.dump({"scaler": type(s).__name__, **{k: list(getattr(s, k)) if k == "feature_range" else getattr(s, k).tolist() ' +
  'for k in ("data_min_", "data_max_", "feature_range", "mean_", "scale_", "center_") if getattr(s, k, None) is not None}}, open("scaler.json", "w"))';

/** The scalers read, and what each becomes. */
export const SCALERS = {
  MinMaxScaler: 'min-max-per-feature, from data_min_ and data_max_ (feature_range (0, 1) only)',
  StandardScaler: 'standard, mean_ and scale_ (without mean_, with_mean=False: 0)',
  RobustScaler: 'standard arithmetic, (x - center_) / scale_ (without center_, with_centering=False: 0)',
} as const;

/** A scaler's file is a few numbers a feature: past this it is not one. */
const MAX_SCALER_BYTES = 16 * 2 ** 20;

export async function readScaler(file: string, width: number): Promise<Normalisation> {
  let text: string;
  try {
    const { size } = await stat(file);
    if (size > MAX_SCALER_BYTES) throw new DataFileError(`${file}: ${size.toLocaleString('en')} bytes, past the ${MAX_SCALER_BYTES.toLocaleString('en')} a scaler's attributes take`);
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof DataFileError) throw error;
    throw new DataFileError(`${file}: cannot read the scaler (${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message})`);
  }
  let scaler: Record<string, unknown>;
  try {
    scaler = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new DataFileError(`${file}: not JSON: ${(error as Error).message}`);
  }
  if (typeof scaler !== 'object' || scaler === null || Array.isArray(scaler)) throw new DataFileError(`${file}: expected a JSON object of the scaler's class and attributes`);
  /** A fitted attribute: one finite number a feature, or, where it may be absent, `absent`. */
  const attribute = (name: string, absent?: number): number[] => {
    const value = scaler[name];
    if (value === undefined && absent !== undefined) return Array<number>(width).fill(absent);
    if (!Array.isArray(value) || value.length !== width || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new DataFileError(`${file}: ${name} must be ${width} numbers, one a feature of the model's input; got ${JSON.stringify(value)?.slice(0, 80)}`);
    }
    return value as number[];
  };
  const positive = (name: string, values: number[]) => {
    if (values.some((v) => v <= 0)) throw new DataFileError(`${file}: ${name} must be positive (it divides)`);
    return values;
  };
  switch (scaler.scaler) {
    case 'MinMaxScaler': {
      const range = scaler.feature_range;
      if (range !== undefined && JSON.stringify(range) !== '[0,1]') throw new DataFileError(`${file}: feature_range ${JSON.stringify(range)}: only MinMaxScaler's default, (0, 1), is read`);
      const min = attribute('data_min_');
      const max = attribute('data_max_');
      if (max.some((value, i) => value < min[i]!)) throw new DataFileError(`${file}: data_max_ must be at least data_min_, feature by feature`);
      return { method: 'min-max-per-feature', min, max };
    }
    case 'StandardScaler':
      return { method: 'standard', mean: attribute('mean_', 0), std: positive('scale_', attribute('scale_')) };
    case 'RobustScaler':
      return { method: 'standard', mean: attribute('center_', 0), std: positive('scale_', attribute('scale_')) };
    default:
      throw new DataFileError(`${file}: scaler ${JSON.stringify(scaler.scaler)}: one of ${Object.keys(SCALERS).join(', ')} is read`);
  }
}

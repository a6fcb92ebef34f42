import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { unzipSync, strFromU8 } from 'fflate';
import { removeIfInterrupted } from '../lib/cli.ts';
import { structureBeyond } from '../lib/json-structure.ts';
import { ArtifactError } from './artifact.ts';
import { hdf5, isDataset, isGroup, type Dataset, type Group, type H5File } from './hdf5.ts';

/**
 * Reading the model files Keras writes, without Python: the `.keras` zip of Keras 3 (config.json,
 * metadata.json, model.weights.h5) and the single HDF5 `.h5` file of Keras 2 and of Keras 3's
 * legacy format (a `model_config` attribute, a `model_weights` group). HDF5 is read with h5wasm
 * and the zip with fflate. The configuration is translated into the Keras 2 dialect that
 * TensorFlow.js reads, and every weight is matched to its layer and variable, shape checked.
 */

/** One stored weight: a variable of a layer. */
export interface StoredWeight {
  /** The variable's own name (`kernel`, `moving_mean`), where the file names it (`.h5`). */
  readonly name: string | undefined;
  /** Where the file holds it, for messages. */
  readonly path: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

export interface KerasModelFile {
  readonly format: 'keras' | 'h5';
  /** The file's sha256, hex. */
  readonly sha256: string;
  readonly kerasVersion: string | undefined;
  /** The model's configuration as Keras wrote it: `{class_name, config, ...}`. */
  readonly config: Record<string, unknown>;
  /** Each layer's weights by where the file keeps them (.h5: the layer's name; .keras: see PlacedLayer), in Keras's order. */
  readonly weights: ReadonlyMap<string, readonly StoredWeight[]>;
  /** The weights' values the file holds, all layers together. */
  readonly parameters: number;
}

type ConfigObject = Record<string, unknown>;
const isObject = (value: unknown): value is ConfigObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The weights' values a file may hold, all layers together, unless --max-parameters says more. */
export const DEFAULT_MAX_PARAMETERS = 50_000_000;

/**
 * Past these a file is not an autoencoder Keras saved but something that would exhaust the reader:
 * each is checked before the work it bounds (inflating, parsing, building).
 */
const FILE_BOUNDS = { archiveEntries: 64, configBytes: 16 * 2 ** 20, configDepth: 64, configContainers: 200_000, layers: 1000 } as const;

/**
 * The bytes a file (or its weights entry) may take for `maxParameters` values: float32 values, an
 * optimizer's state of twice as many beside them (Keras saves it), and room for HDF5's own.
 */
const maxWeightBytes = (maxParameters: number) => 16 * maxParameters + 64 * 2 ** 20;

const count = (n: number) => n.toLocaleString('en');

/** What reading one file needs: its name for messages, and what is left of its parameter budget. */
class Reading {
  private left: number;

  constructor(
    readonly shownAs: string,
    readonly maxParameters: number,
  ) {
    this.left = maxParameters;
  }

  /** The values a dataset holds, taken from the budget before they are read. */
  take(dataset: Dataset): void {
    const values = (dataset.shape ?? []).reduce((product, size) => product * size, 1);
    this.left -= values;
    if (this.left < 0) {
      throw new ArtifactError(
        `${this.shownAs}: weight ${dataset.path} holds ${count(values)} values, past the ${count(this.maxParameters)} the model's weights may hold in all (--max-parameters N raises it)`,
      );
    }
  }

  /** The values taken so far: every weight the file holds. */
  get taken(): number {
    return this.maxParameters - this.left;
  }
}

/** The HDF5 library's first complaint, without its stack of diagnostics. */
function hdf5Reason(error: unknown): string {
  const message = (error as Error).message ?? String(error);
  return /#000: .* in (\w+)\(\): (.*)/.exec(message)?.slice(1).join(': ') ?? message.split('\n')[0]!;
}

/** Runs `read` on an open HDF5 file, an error of the library's (a damaged or truncated file) said in one line. */
function readingHdf5<T>(shownAs: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ArtifactError) throw error;
    throw new ArtifactError(`${shownAs}: the HDF5 file is damaged or truncated (${hdf5Reason(error)})`);
  }
}

/** Opens an HDF5 file, naming `shownAs` in the error when it is not one. */
async function openHdf5(file: string, shownAs: string): Promise<H5File> {
  const { File } = await hdf5();
  try {
    return new File(file, 'r');
  } catch (error) {
    throw new ArtifactError(`${shownAs}: not an HDF5 file, or a damaged one (${hdf5Reason(error)})`);
  }
}

function attribute(entity: Group | Dataset, name: string): unknown {
  return name in entity.attrs ? entity.attrs[name]!.value : undefined;
}

/** A string attribute's value (h5py writes them as fixed-length bytes or variable-length UTF-8). */
function stringAttribute(entity: Group, name: string): string | undefined {
  const value = attribute(entity, name);
  return typeof value === 'string' ? value : undefined;
}

/**
 * A list-of-strings attribute, such as `layer_names` or `weight_names`; absent or empty is []. h5py
 * writes an empty list as an empty float64 array (a layer without weights: InputLayer, Dropout),
 * which h5wasm reads as an empty typed array.
 */
function stringListAttribute(entity: Group, name: string): string[] {
  const value = attribute(entity, name);
  if (value === undefined || value === null) return [];
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>, String);
  return (Array.isArray(value) ? value : [value]).map(String);
}

function weightOf(dataset: Dataset, name: string | undefined, reading: Reading): StoredWeight {
  reading.take(dataset);
  const { value, shape } = dataset;
  if (!(value instanceof Float32Array || value instanceof Float64Array)) {
    throw new ArtifactError(`${reading.shownAs}: weight ${dataset.path} is of type ${JSON.stringify(dataset.dtype)}; TensorFlow.js runs float32 weights`);
  }
  return { name, path: dataset.path, shape: shape ?? [], values: Float32Array.from(value) };
}

/**
 * The model's configuration, `source` naming where it was (the `.h5`'s attribute, the archive's
 * config.json), checked against its bounds before it is parsed; `missing` says what an absent one means.
 */
function parseConfig(text: string | undefined, shownAs: string, missing: string, source: string): ConfigObject {
  if (text === undefined) throw new ArtifactError(`${shownAs}: ${missing}`);
  if (text.length > FILE_BOUNDS.configBytes) throw new ArtifactError(`${shownAs}: the model configuration is ${count(text.length)} characters long; a model's is at most ${count(FILE_BOUNDS.configBytes)}`);
  const beyond = structureBeyond(text, { maxDepth: FILE_BOUNDS.configDepth, maxContainers: FILE_BOUNDS.configContainers });
  if (beyond) {
    const bound = beyond.bound === 'depth' ? `is nested more than ${FILE_BOUNDS.configDepth} levels deep` : `holds more than ${count(FILE_BOUNDS.configContainers)} JSON arrays and objects`;
    throw new ArtifactError(`${shownAs}: the model configuration ${bound} (at character ${beyond.position}): not a configuration Keras writes`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new ArtifactError(`${shownAs}: ${source} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(config) || typeof config.class_name !== 'string' || !isObject(config.config)) {
    throw new ArtifactError(`${shownAs}: the model configuration has no class_name and config`);
  }
  return config;
}

/**
 * A `.h5` file: the configuration in the root's `model_config` attribute; in `model_weights`, a
 * group per layer whose `weight_names` attribute lists its variables' datasets, in order.
 */
function readH5(file: H5File, reading: Reading): Omit<KerasModelFile, 'sha256' | 'parameters'> {
  const { shownAs } = reading;
  const config = parseConfig(
    stringAttribute(file, 'model_config'),
    shownAs,
    'no model_config attribute: this file holds weights alone (model.save_weights); save the whole model with model.save("model.h5") or model.save("model.keras")',
    'the model_config attribute',
  );
  const weightsGroup = file.get('model_weights');
  if (!isGroup(weightsGroup)) throw new ArtifactError(`${shownAs}: no model_weights group: the file holds a configuration but no weights`);
  const weights = new Map<string, StoredWeight[]>();
  for (const layer of stringListAttribute(weightsGroup, 'layer_names')) {
    const layerGroup = weightsGroup.get(layer);
    if (!isGroup(layerGroup)) throw new ArtifactError(`${shownAs}: model_weights lists layer "${layer}" but has no group for it`);
    const stored = stringListAttribute(layerGroup, 'weight_names').map((weightName) => {
      const dataset = layerGroup.get(weightName);
      if (!isDataset(dataset)) throw new ArtifactError(`${shownAs}: layer "${layer}" lists weight "${weightName}" but the file has no such dataset`);
      // "dense/kernel:0" (Keras 2) or "sequential/dense/kernel" (Keras 3): the variable is the last part.
      return { owner: weightName.split('/').at(-2), weight: weightOf(dataset, weightName.split('/').at(-1)!.replace(/:\d+$/, ''), reading) };
    });
    weights.set(layer, stored.map(({ weight }) => weight));
    // A nested model's group holds its layers' weights, each named after its own layer.
    for (const { owner, weight } of stored) {
      if (owner === undefined || owner === layer) continue;
      weights.set(`${layer}/layers/${owner}`, [...(weights.get(`${layer}/layers/${owner}`) ?? []), weight]);
    }
  }
  return { format: 'h5', kerasVersion: stringAttribute(file, 'keras_version'), config, weights };
}

/**
 * The weights of a layer in a `.keras` file's model.weights.h5: its own variables in `vars/0`,
 * `vars/1`, ... and those of the layers it holds (an RNN's `cell`, a wrapper's `layer`, a
 * Bidirectional's `forward_layer` then `backward_layer`, the order TensorFlow.js keeps them in).
 */
function keras3Weights(group: Group, reading: Reading): StoredWeight[] {
  const vars = group.get('vars');
  const own =
    isGroup(vars)
      ? vars
          .keys()
          .sort((a, b) => Number(a) - Number(b))
          .map((index) => vars.get(index))
          .filter(isDataset)
          .map((dataset) => weightOf(dataset, undefined, reading))
      : [];
  const order = (name: string) => (name === 'forward_layer' ? 0 : name === 'backward_layer' ? 1 : 2);
  // A nested model's `layers` are layers of their own, each read once where it is placed.
  const nested = group
    .keys()
    .filter((name) => name !== 'vars' && name !== 'layers')
    .sort((a, b) => order(a) - order(b) || a.localeCompare(b))
    .map((name) => group.get(name))
    .filter(isGroup);
  return [...own, ...nested.flatMap((child) => keras3Weights(child, reading))];
}

/** Keras's `naming.to_snake_case`: "BatchNormalization" → "batch_normalization", "LeakyReLU" → "leaky_re_lu". */
function kerasSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** A layer of the model, and where each format keeps its weights. */
interface PlacedLayer {
  readonly layer: ConfigObject;
  /**
   * In a `.keras` file: Keras 3 stores a model's layers under names made from their classes in
   * order (dense, dense_1, batch_normalization, ...), not under the layers' own names, so that the
   * file does not depend on names Keras made up; a nested model's under "<its name>/layers/".
   */
  readonly storagePath: string;
  /** In a `.h5` file: the layer's name, or "<nested model's name>/layers/<its name>". */
  readonly namePath: string;
}

const isModel = (layer: ConfigObject) => layer.class_name === 'Sequential' || layer.class_name === 'Functional' || layer.class_name === 'Model';

/**
 * A model's layers and where their weights are. With `flatten` (a Sequential model), the layers of
 * the Sequential models in it (an encoder and a decoder, say) take their place: a Sequential of
 * Sequentials is one stack of layers, and a nested model's own InputLayer goes, but the first.
 */
function placeLayers(layers: readonly unknown[], flatten: boolean, storagePrefix = '', namePrefix = ''): PlacedLayer[] {
  const used = new Map<string, number>();
  const placed = layers.flatMap((layer): PlacedLayer[] => {
    if (!isObject(layer) || typeof layer.class_name !== 'string' || !isObject(layer.config)) return [{ layer: layer as ConfigObject, storagePath: '', namePath: '' }];
    const base = kerasSnakeCase(layer.class_name);
    const count = used.get(base) ?? 0;
    used.set(base, count + 1);
    const storagePath = storagePrefix + (count === 0 ? base : `${base}_${count}`);
    const namePath = namePrefix + String(layer.config.name);
    if (flatten && layer.class_name === 'Sequential' && Array.isArray(layer.config.layers)) {
      return placeLayers(layer.config.layers, true, `${storagePath}/layers/`, `${namePath}/layers/`);
    }
    return [{ layer, storagePath, namePath }];
  });
  return flatten ? placed.filter(({ layer }, index) => index === 0 || layer.class_name !== 'InputLayer') : placed;
}

/**
 * Arguments that only training uses, which TensorFlow.js may not build (Keras 2's L1 regularizer;
 * any activity regularizer in Keras 3's files): left out, and said so.
 */
const TRAINING_ONLY_ARGUMENTS = ['kernel_regularizer', 'bias_regularizer', 'activity_regularizer', 'recurrent_regularizer', 'beta_regularizer', 'gamma_regularizer'];

/** An archive entry's name that would leave the folder it is extracted into: absolute, or with "..". */
const leavesArchive = (name: string) => /^([/\\]|[A-Za-z]:)/.test(name) || name.split(/[/\\]/).includes('..');

/** The entries of a `.keras` archive that the import reads, each inflated only after its bounds are checked. */
function archiveEntries(bytes: Uint8Array, reading: Reading): Record<string, Uint8Array> {
  const { shownAs } = reading;
  const bounds: Record<string, number> = { 'config.json': FILE_BOUNDS.configBytes, 'metadata.json': FILE_BOUNDS.configBytes, 'model.weights.h5': maxWeightBytes(reading.maxParameters) };
  let seen = 0;
  try {
    return unzipSync(bytes, {
      filter: ({ name, originalSize }) => {
        if (++seen > FILE_BOUNDS.archiveEntries) throw new ArtifactError(`${shownAs}: the archive holds more than ${FILE_BOUNDS.archiveEntries} entries; a .keras file holds 3`);
        if (leavesArchive(name)) throw new ArtifactError(`${shownAs}: the archive's entry ${JSON.stringify(name)} names a place outside it: not a file Keras writes`);
        const bound = bounds[name];
        if (bound === undefined) return false;
        if (originalSize > bound) {
          throw new ArtifactError(`${shownAs}: the archive's ${name} inflates to ${count(originalSize)} bytes, past the ${count(bound)} it may take${name.endsWith('.h5') ? ' (--max-parameters N raises it)' : ''}`);
        }
        // fflate inflates into a buffer of the declared size, and no further.
        return true;
      },
    });
  } catch (error) {
    if (error instanceof ArtifactError) throw error;
    throw new ArtifactError(`${shownAs}: not a zip file, or a damaged one, as a .keras file is not (${(error as Error).message})`);
  }
}

/** A `.keras` file: a zip of config.json, metadata.json and model.weights.h5 (layers/<class-based name>/vars/<i>). */
async function readKerasZip(bytes: Uint8Array, reading: Reading): Promise<Omit<KerasModelFile, 'sha256' | 'parameters'>> {
  const { shownAs } = reading;
  const entries = archiveEntries(bytes, reading);
  const text = (name: string) => (entries[name] ? strFromU8(entries[name]) : undefined);
  const config = parseConfig(text('config.json'), shownAs, 'no config.json in the archive: not a model saved by Keras 3 model.save("model.keras")', "the archive's config.json");
  const metadata = text('metadata.json');
  let kerasVersion: string | undefined;
  try {
    kerasVersion = metadata === undefined ? undefined : (JSON.parse(metadata) as { keras_version?: string } | null)?.keras_version;
  } catch (error) {
    throw new ArtifactError(`${shownAs}: the archive's metadata.json is not valid JSON: ${(error as Error).message}`);
  }
  const weightsBytes = entries['model.weights.h5'];
  if (!weightsBytes) throw new ArtifactError(`${shownAs}: no model.weights.h5 in the archive: the model's weights are missing`);
  // h5wasm reads from the file system: the archive's weights go to a scratch file for the read.
  const scratch = await mkdtemp(path.join(tmpdir(), 'keras-import-'));
  const removed = removeIfInterrupted(scratch);
  try {
    const weightsFile = path.join(scratch, 'model.weights.h5');
    await writeFile(weightsFile, weightsBytes);
    const weightsShownAs = `${shownAs} (model.weights.h5)`;
    const h5 = await openHdf5(weightsFile, weightsShownAs);
    try {
      return readingHdf5(weightsShownAs, () => ({ format: 'keras' as const, kerasVersion, config, weights: keras3LayerWeights(h5, reading) }));
    } finally {
      h5.close();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
    removed();
  }
}

/** A `.keras` file's weights by each layer's storage path: "dense", and a nested model's "sequential/layers/dense". */
function keras3LayerWeights(h5: H5File, reading: Reading): Map<string, StoredWeight[]> {
  const weights = new Map<string, StoredWeight[]>();
  const addLayers = (group: Group, prefix: string): void => {
    for (const name of group.keys()) {
      const layer = group.get(name);
      if (!isGroup(layer)) continue;
      weights.set(prefix + name, keras3Weights(layer, reading));
      const inner = layer.get('layers');
      if (isGroup(inner)) addLayers(inner, `${prefix}${name}/layers/`);
    }
  };
  const layers = h5.get('layers');
  if (isGroup(layers)) addLayers(layers, '');
  // tf_keras on Windows names each group by its whole path, at the root: "layers\dense".
  for (const key of h5.keys().filter((key) => key.startsWith('layers\\'))) {
    const layer = h5.get(key);
    if (isGroup(layer)) weights.set(key.slice('layers\\'.length).replaceAll('\\', '/'), keras3Weights(layer, reading));
  }
  return weights;
}

/**
 * Reads a Keras model file, `.keras` or `.h5`, told apart by their first bytes. Its size, its
 * archive's entries, its configuration and its weights are checked against their bounds before
 * they are read: `maxParameters` bounds the weights' values, all layers together.
 */
export async function readKerasFile(file: string, { maxParameters = DEFAULT_MAX_PARAMETERS }: { maxParameters?: number } = {}): Promise<KerasModelFile> {
  const reading = new Reading(file, maxParameters);
  let bytes: Buffer;
  try {
    const { size } = await stat(file);
    const bound = maxWeightBytes(maxParameters) + FILE_BOUNDS.configBytes;
    if (size > bound) throw new ArtifactError(`${file}: ${count(size)} bytes, past the ${count(bound)} a model of ${count(maxParameters)} parameters takes (--max-parameters N raises it)`);
    bytes = await readFile(file);
  } catch (error) {
    if (error instanceof ArtifactError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new ArtifactError(`${file}: cannot read the model file (${code === 'ENOENT' ? 'no such file' : code})`);
  }
  // A zip starts with "PK\x03\x04"; HDF5 with "\x89HDF\r\n\x1a\n".
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytes.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) return { ...(await readKerasZip(bytes, reading)), sha256, parameters: reading.taken };
  if (!bytes.subarray(0, 8).equals(Buffer.from('\x89HDF\r\n\x1a\n', 'latin1'))) {
    throw new ArtifactError(`${file}: neither a .keras archive nor an HDF5 .h5 file: save the model with model.save("model.keras") or model.save("model.h5")`);
  }
  const h5 = await openHdf5(file, file);
  try {
    return { ...readingHdf5(file, () => readH5(h5, reading)), sha256, parameters: reading.taken };
  } finally {
    h5.close();
  }
}

/** Where a layer is, for messages: its name and type. */
const describeLayer = (layer: ConfigObject) => `layer "${String((layer.config as ConfigObject | undefined)?.name ?? layer.name)}" (${String(layer.class_name)})`;

/** Keras 3 and 2.13+ add these to every serialized object; TensorFlow.js reads the rest. */
const KERAS_ONLY_KEYS = new Set(['module', 'registered_name', 'build_config', 'compile_config', 'shared_object_id']);

/** Keras 3 renamed some layers' arguments; TensorFlow.js reads the Keras 2 names. */
const RENAMED_ARGUMENTS: Record<string, Record<string, string>> = {
  InputLayer: { batch_shape: 'batch_input_shape' },
  LeakyReLU: { negative_slope: 'alpha' },
};

/** A dtype, or a Keras 3 DTypePolicy (Keras 2 mixed precision: Policy) naming one. */
function dtypeOf(value: unknown, where: string, shownAs: string): unknown {
  if (!isObject(value)) return value;
  const name = (value.config as ConfigObject | undefined)?.name;
  if (name !== 'float32') throw new ArtifactError(`${shownAs}: ${where} uses dtype policy ${JSON.stringify(name)}; TensorFlow.js runs float32 only`);
  return name;
}

/** A Keras 3 call of a layer ({args, kwargs} holding __keras_tensor__s) as Keras 2 writes it. */
function keras2Node(node: unknown): unknown {
  if (!isObject(node)) return node;
  const tensors: unknown[] = [];
  const collect = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(collect);
    else if (isObject(value)) {
      if (value.class_name === '__keras_tensor__') tensors.push([...((value.config as ConfigObject).keras_history as unknown[]), {}]);
      else Object.values(value).forEach(collect);
    }
  };
  collect(node.args);
  return tensors;
}

/** `input_layers` / `output_layers`: Keras 3 may write a single [name, node, tensor] unwrapped. */
const tensorList = (value: unknown) => (Array.isArray(value) && typeof value[0] === 'string' ? [value] : value);

/**
 * Translates a Keras configuration (Keras 3 or 2) into the dialect TensorFlow.js reads, and checks
 * every layer against the layers TensorFlow.js has (`supported`).
 */
function tfjsTopology(config: ConfigObject, parameters: number, shownAs: string): { topology: ConfigObject; placed: PlacedLayer[]; leftOut: string[] } {
  const supported = supportedLayers();
  const leftOut: string[] = [];
  const translate = (value: unknown, where: string): unknown => {
    if (Array.isArray(value)) return value.map((item) => translate(item, where));
    if (!isObject(value)) return value;
    const out: ConfigObject = {};
    for (const [key, item] of Object.entries(value)) {
      if (KERAS_ONLY_KEYS.has(key)) continue;
      out[key] = key === 'dtype' ? dtypeOf(item, where, shownAs) : translate(item, where);
    }
    return out;
  };
  const translateLayer = (layer: unknown): ConfigObject => {
    if (!isObject(layer) || typeof layer.class_name !== 'string') throw new ArtifactError(`${shownAs}: a layer of the model has no class_name`);
    const where = describeLayer(layer);
    if (isModel(layer)) {
      throw new ArtifactError(
        `${shownAs}: ${where} is a model inside the model; Sequential models of Sequential models are read as one stack, other nestings are not: build the autoencoder as one Sequential or Functional model`,
      );
    }
    if (!supported.has(layer.class_name)) {
      throw new ArtifactError(`${shownAs}: ${where}: TensorFlow.js has no ${layer.class_name} layer (docs/model.md, "Serve your own Keras model", lists the layers it has)`);
    }
    const translated = translate(layer, where) as ConfigObject;
    const args = translated.config as ConfigObject;
    // A size no weights in the file could fill: building it would allocate for nothing.
    for (const size of ['units', 'filters', 'output_dim', 'input_dim']) {
      if (typeof args[size] === 'number' && args[size] > parameters) {
        throw new ArtifactError(`${shownAs}: ${where}: ${size} ${count(args[size])} needs more weights than the file's ${count(parameters)} values`);
      }
    }
    for (const argument of TRAINING_ONLY_ARGUMENTS) {
      if (args[argument] !== undefined && args[argument] !== null) leftOut.push(`${where}: ${argument} ${String((args[argument] as ConfigObject).class_name ?? '')}`.trim());
      delete args[argument];
    }
    for (const [from, to] of Object.entries(RENAMED_ARGUMENTS[layer.class_name] ?? {})) {
      if (from in args) {
        args[to] = args[from];
        delete args[from];
      }
    }
    if (Array.isArray(layer.inbound_nodes)) translated.inbound_nodes = layer.inbound_nodes.map(keras2Node);
    return translated;
  };

  const { class_name: className } = config;
  if (className !== 'Sequential' && className !== 'Functional' && className !== 'Model') {
    throw new ArtifactError(`${shownAs}: the file holds a ${String(className)}, not a Sequential or Functional model`);
  }
  const { layers, ...modelConfig } = config.config as ConfigObject;
  if (!Array.isArray(layers)) throw new ArtifactError(`${shownAs}: the model configuration lists no layers`);
  const placed = placeLayers(layers, className === 'Sequential');
  if (placed.length > FILE_BOUNDS.layers) throw new ArtifactError(`${shownAs}: the model has ${count(placed.length)} layers, past the ${count(FILE_BOUNDS.layers)} an autoencoder may have`);
  const translated: ConfigObject = { ...(translate(modelConfig, 'the model') as ConfigObject), layers: placed.map(({ layer }) => translateLayer(layer)) };
  if (className !== 'Sequential') {
    translated.input_layers = tensorList(modelConfig.input_layers);
    translated.output_layers = tensorList(modelConfig.output_layers);
  }
  return { topology: { class_name: className === 'Model' ? 'Functional' : className, config: translated }, placed, leftOut };
}

/**
 * Sets each layer's weights from the file: by variable name where the file names them, else in
 * Keras's order; every layer with weights must have them all, each of the shape the layer needs.
 */
function assignWeights(model: tf.LayersModel, weightsOf: (layer: string) => readonly StoredWeight[], shownAs: string): void {
  for (const layer of model.layers) {
    const variables = layer.weights;
    if (variables.length === 0) continue;
    const where = `layer "${layer.name}" (${layer.getClassName()})`;
    const stored = weightsOf(layer.name);
    if (stored.length !== variables.length) {
      throw new ArtifactError(`${shownAs}: ${where} has ${variables.length} weights (${variables.map((v) => v.originalName.split('/').at(-1)).join(', ')}); the file holds ${stored.length} for it`);
    }
    const named = stored.every((weight) => weight.name !== undefined);
    const values = variables.map((variable, index) => {
      const name = variable.originalName.split('/').at(-1)!;
      const weight = named ? stored.find((w) => w.name === name) : stored[index];
      if (!weight) throw new ArtifactError(`${shownAs}: ${where} needs a weight "${name}"; the file has ${stored.map((w) => `"${w.name}"`).join(', ')}`);
      if (weight.shape.length !== variable.shape.length || weight.shape.some((size, axis) => size !== variable.shape[axis])) {
        throw new ArtifactError(`${shownAs}: ${where}: weight "${name}" (${weight.path}) has shape ${JSON.stringify(weight.shape)}; the layer needs ${JSON.stringify(variable.shape)}`);
      }
      return tf.tensor(weight.values, [...weight.shape]);
    });
    layer.setWeights(values);
    values.forEach((value) => value.dispose());
  }
}

/** The layer types TensorFlow.js can build: the registered serializable classes that are layers. */
export function supportedLayers(): Set<string> {
  const registered = tf.serialization.SerializationMap.getMap().classNameMap;
  return new Set(
    Object.entries(registered)
      .filter(([, [constructor]]) => constructor.prototype instanceof tf.layers.Layer && constructor !== tf.LayersModel && !(constructor.prototype instanceof tf.LayersModel))
      .map(([name]) => name),
  );
}

/**
 * Which layer a failed build failed on: the first whose configuration, built alone, fails with the
 * same message (a layer's arguments are checked when it is constructed, before any input).
 */
async function failingLayer(topology: ConfigObject, message: string): Promise<string | undefined> {
  for (const layer of (topology.config as { layers: ConfigObject[] }).layers) {
    const alone = { class_name: 'Sequential', config: { name: 'probe', layers: [layer] } };
    const failure = await tf.models.modelFromJSON({ modelTopology: alone as tf.io.ModelJSON['modelTopology'] }).then(
      (probe) => probe.dispose(),
      (error: Error) => error.message,
    );
    if (failure === message) return describeLayer(layer);
  }
  return undefined;
}

/**
 * The model a Keras file holds, as a TensorFlow.js model with the file's weights, and what of the
 * file was left out as training's alone (`leftOut`, to be said). Its input and output must be rows
 * of one width or windows of one shape, as the server's signature scores them.
 */
export async function buildModel(file: KerasModelFile, shownAs: string): Promise<{ model: tf.LayersModel; leftOut: string[] }> {
  if (file.parameters === 0) {
    throw new ArtifactError(
      `${shownAs}: the file holds no weights at all: the model was saved before it was built or trained. ` +
        'Build it (model.build((None, width))) and train it, then save it again',
    );
  }
  const { topology, placed, leftOut } = tfjsTopology(file.config, file.parameters, shownAs);
  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: topology as tf.io.ModelJSON['modelTopology'] });
  } catch (error) {
    const { message } = error as Error;
    throw new ArtifactError(`${shownAs}: ${(await failingLayer(topology, message)) ?? 'the model'}: TensorFlow.js cannot build it: ${message}`);
  }
  try {
    const input = model.inputs.map((tensor) => tensor.shape);
    const output = model.outputs.map((tensor) => tensor.shape);
    const dims = input[0]?.slice(1) ?? [];
    const sized = dims.every((size) => typeof size === 'number' && size > 0);
    if (input.length !== 1 || output.length !== 1 || dims.length < 1 || dims.length > 2 || !sized || JSON.stringify(output[0]) !== JSON.stringify(input[0])) {
      throw new ArtifactError(
        `${shownAs}: the model maps ${JSON.stringify(input)} to ${JSON.stringify(output)}; the server scores rows and windows: ` +
          'the model must take one input of shape [batch, width] or [batch, steps, features], each size fixed, and reconstruct it as one output of the same shape',
      );
    }
    const paths = new Map(placed.map(({ layer, storagePath, namePath }) => [String((layer.config as ConfigObject).name), file.format === 'keras' ? storagePath : namePath]));
    assignWeights(model, (layer) => file.weights.get(paths.get(layer) ?? layer) ?? [], shownAs);
    return { model, leftOut };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { zipSync, strToU8 } from 'fflate';
import h5wasm, { type Group } from 'h5wasm/node';
import { seededRandom } from '../model/data.ts';

/**
 * Keras model files written the way Keras writes them, for the import tests (this machine has no
 * Python): the `.keras` zip of Keras 3 and the `.h5` file of Keras 2 (tf.keras 2.15) and of Keras
 * 3's legacy format, with a Sequential or a Functional model, and their weights. The layouts follow
 * Keras's saving code: keras/src/saving/saving_lib.py (.keras: config.json, metadata.json, and
 * model.weights.h5 with layers/<name>/vars/<index>) and keras/src/legacy/saving/legacy_h5_format.py
 * (.h5: model_config, keras_version and backend attributes; model_weights/<layer>/<weight name>
 * datasets listed by each layer group's weight_names).
 */

export type LayerSpec =
  | { readonly kind: 'Dense'; readonly units: number; readonly activation: 'relu' | 'sigmoid' | 'linear' | 'tanh'; readonly kernel: number[][]; readonly bias: number[] }
  | { readonly kind: 'BatchNormalization'; readonly gamma: number[]; readonly beta: number[]; readonly movingMean: number[]; readonly movingVariance: number[] }
  | { readonly kind: 'LeakyReLU'; readonly slope: number }
  | { readonly kind: 'Dropout'; readonly rate: number }
  | { readonly kind: 'Reshape'; readonly targetShape: readonly number[] }
  | { readonly kind: 'LSTM'; readonly units: number; readonly returnSequences: boolean; readonly kernel: number[][]; readonly recurrentKernel: number[][]; readonly bias: number[] }
  | { readonly kind: 'RepeatVector'; readonly n: number }
  | { readonly kind: 'TimeDistributed'; readonly dense: Extract<LayerSpec, { kind: 'Dense' }> }
  | { readonly kind: 'Flatten' };

export interface AutoencoderSpec {
  readonly width: number;
  readonly layers: readonly LayerSpec[];
}

export type KerasDialect = 'keras3' | 'keras2';
export type ModelApi = 'Sequential' | 'Functional';

/** A small autoencoder with seeded random weights: Dense layers of `units`, the last back to `width`. */
export function randomAutoencoder(width: number, units: readonly number[], seed: number, extra: readonly LayerSpec['kind'][] = []): AutoencoderSpec {
  const random = seededRandom(seed);
  const uniform = (scale: number) => (random() * 2 - 1) * scale;
  const layers: LayerSpec[] = [];
  let inputs = width;
  [...units, width].forEach((size, i) => {
    const last = i === units.length;
    const scale = Math.sqrt(6 / (inputs + size));
    layers.push({
      kind: 'Dense',
      units: size,
      activation: last ? 'sigmoid' : 'relu',
      kernel: Array.from({ length: inputs }, () => Array.from({ length: size }, () => uniform(scale))),
      bias: Array.from({ length: size }, () => uniform(0.1)),
    });
    if (i === 0) {
      for (const kind of extra) {
        if (kind === 'BatchNormalization') {
          layers.push({
            kind,
            gamma: Array.from({ length: size }, () => 1 + uniform(0.2)),
            beta: Array.from({ length: size }, () => uniform(0.1)),
            movingMean: Array.from({ length: size }, () => uniform(0.3)),
            movingVariance: Array.from({ length: size }, () => 0.5 + random()),
          });
        } else if (kind === 'LeakyReLU') layers.push({ kind, slope: 0.2 });
        else if (kind === 'Dropout') layers.push({ kind, rate: 0.1 });
      }
    }
    inputs = size;
  });
  return { width, layers };
}

/**
 * An LSTM autoencoder of a row as a sequence, the usual shape for heartbeats: Reshape to
 * [width, 1], LSTM(units) → RepeatVector(width) → LSTM(units, sequences) → TimeDistributed(Dense(1))
 * → Flatten.
 */
export function randomLstmAutoencoder(width: number, units: number, seed: number): AutoencoderSpec {
  const random = seededRandom(seed);
  const matrix = (rows: number, columns: number) => Array.from({ length: rows }, () => Array.from({ length: columns }, () => (random() * 2 - 1) * 0.5));
  const lstm = (inputs: number, returnSequences: boolean): LayerSpec => ({
    kind: 'LSTM',
    units,
    returnSequences,
    kernel: matrix(inputs, 4 * units),
    recurrentKernel: matrix(units, 4 * units),
    bias: matrix(1, 4 * units)[0]!,
  });
  return {
    width,
    layers: [
      { kind: 'Reshape', targetShape: [width, 1] },
      lstm(1, false),
      { kind: 'RepeatVector', n: width },
      lstm(units, true),
      { kind: 'TimeDistributed', dense: { kind: 'Dense', units: 1, activation: 'linear', kernel: matrix(units, 1), bias: [0.1] } },
      { kind: 'Flatten' },
    ],
  };
}

const ACTIVATIONS = { relu: (v: number) => Math.max(0, v), sigmoid: (v: number) => 1 / (1 + Math.exp(-v)), linear: (v: number) => v, tanh: Math.tanh };

function dense(layer: Extract<LayerSpec, { kind: 'Dense' }>, x: readonly number[]): number[] {
  return layer.bias.map((b, j) => ACTIVATIONS[layer.activation](b + x.reduce((sum, v, i) => sum + v * layer.kernel[i]![j]!, 0)));
}

/** Keras's LSTM, gates in its order (input, forget, cell, output), sigmoid and tanh. */
function lstm(layer: Extract<LayerSpec, { kind: 'LSTM' }>, steps: readonly (readonly number[])[]): number[][] {
  const { units } = layer;
  let h = Array<number>(units).fill(0);
  let c = Array<number>(units).fill(0);
  const outputs: number[][] = [];
  for (const x of steps) {
    const z = layer.bias.map((b, j) => b + x.reduce((sum, v, i) => sum + v * layer.kernel[i]![j]!, 0) + h.reduce((sum, v, i) => sum + v * layer.recurrentKernel[i]![j]!, 0));
    const gate = (g: number, k: number) => z[g * units + k]!;
    c = c.map((previous, k) => ACTIVATIONS.sigmoid(gate(1, k)) * previous + ACTIVATIONS.sigmoid(gate(0, k)) * Math.tanh(gate(2, k)));
    h = c.map((cell, k) => ACTIVATIONS.sigmoid(gate(3, k)) * Math.tanh(cell));
    outputs.push(h);
  }
  return outputs;
}

/** The reconstruction of a normalised row, computed here in float64: the tests' independent forward pass. */
export function forwardByHand(spec: AutoencoderSpec, row: readonly number[]): number[] {
  let x: number[] = [...row];
  let steps: number[][] = [];
  for (const layer of spec.layers) {
    switch (layer.kind) {
      case 'Dense':
        x = dense(layer, x);
        break;
      case 'BatchNormalization':
        x = x.map((v, i) => layer.gamma[i]! * ((v - layer.movingMean[i]!) / Math.sqrt(layer.movingVariance[i]! + 1e-3)) + layer.beta[i]!);
        break;
      case 'LeakyReLU':
        x = x.map((v) => (v < 0 ? layer.slope * v : v));
        break;
      case 'Dropout':
        break; // identity at inference
      case 'Reshape':
        steps = x.map((v) => [v]);
        break;
      case 'LSTM': {
        const outputs = lstm(layer, steps);
        if (layer.returnSequences) steps = outputs;
        else x = outputs.at(-1)!;
        break;
      }
      case 'RepeatVector':
        steps = Array.from({ length: layer.n }, () => [...x]);
        break;
      case 'TimeDistributed':
        steps = steps.map((step) => dense(layer.dense, step));
        break;
      case 'Flatten':
        x = steps.flat();
        break;
    }
  }
  return x;
}

/** Keras's snake-case names of these classes (keras/src/utils/naming.py's to_snake_case). */
const SNAKE: Record<LayerSpec['kind'], string> = {
  Dense: 'dense',
  BatchNormalization: 'batch_normalization',
  LeakyReLU: 'leaky_re_lu',
  Dropout: 'dropout',
  Reshape: 'reshape',
  LSTM: 'lstm',
  RepeatVector: 'repeat_vector',
  TimeDistributed: 'time_distributed',
  Flatten: 'flatten',
};

/**
 * Names by class, as Keras gives them to new layers (dense, dense_1, batch_normalization, ...) and
 * as a `.keras` file stores every model's layers, whatever their own names.
 */
function classNames(spec: AutoencoderSpec): string[] {
  const seen = new Map<string, number>();
  return spec.layers.map((layer) => {
    const base = SNAKE[layer.kind];
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count === 0 ? base : `${base}_${count}`;
  });
}

/** The layers' own names: Keras's, or names the user gave (`custom`), which `.keras` files do not use. */
const layerNames = (spec: AutoencoderSpec, custom: boolean) => (custom ? spec.layers.map((layer, i) => `${layer.kind.toLowerCase()}_${i}_mine`) : classNames(spec));

/** Each layer's variables, by name, in Keras's order. */
function variables(layer: LayerSpec): [name: string, values: number[] | number[][]][] {
  switch (layer.kind) {
    case 'Dense':
      return [
        ['kernel', layer.kernel],
        ['bias', layer.bias],
      ];
    case 'BatchNormalization':
      return [
        ['gamma', layer.gamma],
        ['beta', layer.beta],
        ['moving_mean', layer.movingMean],
        ['moving_variance', layer.movingVariance],
      ];
    case 'LSTM':
      return [
        ['kernel', layer.kernel],
        ['recurrent_kernel', layer.recurrentKernel],
        ['bias', layer.bias],
      ];
    case 'TimeDistributed':
      return variables(layer.dense);
    default:
      return [];
  }
}

/**
 * Where a layer's variables live inside its own: an LSTM's in its cell, a wrapper's in the layer it
 * wraps. `.keras` names the attribute (`cell`, `layer`); `.h5` names the variables' own scope.
 */
function innerScope(layer: LayerSpec, dialect: KerasDialect): { keras: string; h5: string | undefined } | undefined {
  if (layer.kind === 'LSTM') return { keras: 'cell', h5: 'lstm_cell' };
  if (layer.kind === 'TimeDistributed') return { keras: 'layer', h5: dialect === 'keras3' ? 'dense' : undefined };
  return undefined;
}

/** A layer's configuration, as each dialect serializes it. */
function layerConfig(layer: LayerSpec, name: string, dialect: KerasDialect, inputShape: number[] | undefined): Record<string, unknown> {
  const keras3 = dialect === 'keras3';
  const dtype = keras3 ? { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null } : 'float32';
  const initializer = (className: string, config: object = {}) => ({ module: 'keras.initializers', class_name: className, config, registered_name: null });
  const base = { name, trainable: true, dtype };
  let config: Record<string, unknown>;
  switch (layer.kind) {
    case 'Dense':
      config = {
        ...base,
        ...(!keras3 && inputShape ? { batch_input_shape: inputShape } : {}),
        units: layer.units,
        activation: layer.activation,
        use_bias: true,
        kernel_initializer: initializer('GlorotUniform', { seed: null }),
        bias_initializer: initializer('Zeros'),
        kernel_regularizer: null,
        bias_regularizer: null,
        ...(keras3 ? {} : { activity_regularizer: null }),
        kernel_constraint: null,
        bias_constraint: null,
        ...(keras3 ? { quantization_config: null } : {}),
      };
      break;
    case 'BatchNormalization':
      config = {
        ...base,
        axis: keras3 ? -1 : [1],
        momentum: 0.99,
        epsilon: 0.001,
        center: true,
        scale: true,
        beta_initializer: initializer('Zeros'),
        gamma_initializer: initializer('Ones'),
        moving_mean_initializer: initializer('Zeros'),
        moving_variance_initializer: initializer('Ones'),
        beta_regularizer: null,
        gamma_regularizer: null,
        beta_constraint: null,
        gamma_constraint: null,
        ...(keras3 ? { synchronized: false } : {}),
      };
      break;
    case 'LeakyReLU':
      config = { ...base, ...(keras3 ? { negative_slope: layer.slope } : { alpha: layer.slope }) };
      break;
    case 'Dropout':
      config = { ...base, rate: layer.rate, seed: null, noise_shape: null };
      break;
    case 'Reshape':
      config = { ...base, ...(!keras3 && inputShape ? { batch_input_shape: inputShape } : {}), target_shape: layer.targetShape };
      break;
    case 'LSTM':
      config = {
        ...base,
        return_sequences: layer.returnSequences,
        return_state: false,
        go_backwards: false,
        stateful: false,
        unroll: false,
        ...(keras3 ? { zero_output_for_mask: false } : { time_major: false }),
        units: layer.units,
        activation: 'tanh',
        recurrent_activation: 'sigmoid',
        use_bias: true,
        kernel_initializer: initializer('GlorotUniform', { seed: null }),
        recurrent_initializer: initializer('Orthogonal', { gain: 1.0, seed: null }),
        bias_initializer: initializer('Zeros'),
        unit_forget_bias: true,
        kernel_regularizer: null,
        recurrent_regularizer: null,
        bias_regularizer: null,
        activity_regularizer: null,
        kernel_constraint: null,
        recurrent_constraint: null,
        bias_constraint: null,
        dropout: 0.0,
        recurrent_dropout: 0.0,
        ...(keras3 ? { seed: null } : { implementation: 2 }),
      };
      break;
    case 'RepeatVector':
      config = { ...base, n: layer.n };
      break;
    case 'TimeDistributed':
      config = { ...base, layer: layerConfig(layer.dense, 'dense', dialect, undefined) };
      break;
    case 'Flatten':
      config = { ...base, data_format: 'channels_last' };
      break;
  }
  return { module: 'keras.layers', class_name: layer.kind, config, registered_name: null, ...(keras3 && inputShape ? { build_config: { input_shape: inputShape } } : {}) };
}

/** The model's configuration: what config.json (.keras) or the model_config attribute (.h5) holds. */
/** An encoder and a decoder: the layers up to the narrowest Dense, and the rest. */
function encoderAndDecoder(spec: AutoencoderSpec): [LayerSpec[], LayerSpec[]] {
  const widths = spec.layers.map((layer) => (layer.kind === 'Dense' ? layer.units : Infinity));
  const bottleneck = widths.indexOf(Math.min(...widths));
  return [spec.layers.slice(0, bottleneck + 1), spec.layers.slice(bottleneck + 1)];
}

export function modelConfig(spec: AutoencoderSpec, dialect: KerasDialect, api: ModelApi, customNames = false, nested = false): Record<string, unknown> {
  const keras3 = dialect === 'keras3';
  const names = layerNames(spec, customNames);
  const batchShape = [null, spec.width] as unknown as number[];
  const inputName = keras3 ? 'input_layer' : api === 'Sequential' ? 'dense_input' : 'input_1';
  const inputLayer = (shape: number[], name: string) => ({
    module: 'keras.layers',
    class_name: 'InputLayer',
    config: { [keras3 ? 'batch_shape' : 'batch_input_shape']: shape, dtype: 'float32', sparse: false, ...(keras3 ? {} : { ragged: false }), name },
    registered_name: null,
  });
  const input = inputLayer(batchShape, inputName);
  const layers = spec.layers.map((layer, i) => layerConfig(layer, names[i]!, dialect, i === 0 ? batchShape : undefined));
  const dtype = keras3 ? { dtype: { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null } } : {};
  let config: Record<string, unknown>;
  if (api === 'Sequential' && nested) {
    // Sequential([encoder, decoder]), each a Sequential with an input of its own, as Keras writes it.
    const [encoder, decoder] = encoderAndDecoder(spec);
    const part = (name: string, partLayers: LayerSpec[], offset: number, width: number) => {
      const shape = [null, width] as unknown as number[];
      const inner = partLayers.map((layer, i) => layerConfig(layer, names[offset + i]!, dialect, i === 0 ? shape : undefined));
      const sequential = { class_name: 'Sequential', config: { name, trainable: true, ...dtype, layers: [inputLayer(shape, `${name}_input`), ...inner] } };
      return keras3 ? { module: 'keras', ...sequential, registered_name: null, build_config: { input_shape: shape } } : sequential;
    };
    const bottleneck = (encoder.at(-1) as Extract<LayerSpec, { kind: 'Dense' }>).units;
    config = { name: 'sequential', trainable: true, ...dtype, layers: [input, part('encoder', encoder, 0, spec.width), part('decoder', decoder, encoder.length, bottleneck)] };
  } else if (api === 'Sequential') {
    config = { name: 'sequential', trainable: true, ...dtype, layers: [input, ...layers], ...(keras3 ? { build_input_shape: batchShape } : {}) };
  } else {
    // Each layer with the call that connects it: Keras 3 writes {args, kwargs} of __keras_tensor__s,
    // Keras 2 [[[inbound layer, node index, tensor index, kwargs]]].
    const call = (from: string) =>
      keras3
        ? [{ args: [{ class_name: '__keras_tensor__', config: { shape: batchShape, dtype: 'float32', keras_history: [from, 0, 0] } }], kwargs: {} }]
        : [[[from, 0, 0, {}]]];
    const connected = [
      { ...input, name: inputName, inbound_nodes: [] },
      ...layers.map((layer, i) => ({ ...layer, name: names[i], inbound_nodes: call(i === 0 ? inputName : names[i - 1]!) })),
    ];
    config = {
      name: keras3 ? 'functional' : 'model',
      trainable: true,
      layers: connected,
      input_layers: [[inputName, 0, 0]],
      output_layers: [[names.at(-1), 0, 0]],
    };
  }
  const model = { class_name: api, config };
  return keras3 ? { module: 'keras', ...model, registered_name: api === 'Functional' ? 'Functional' : null, build_config: { input_shape: batchShape }, compile_config: { optimizer: 'adam', loss: 'mae' } } : model;
}

const float32 = (values: number[] | number[][]) => new Float32Array(values.flat());
const shapeOf = (values: number[] | number[][]) => (Array.isArray(values[0]) ? [values.length, (values[0] as number[]).length] : [values.length]);

/**
 * A list-of-strings attribute as h5py writes Keras's lists (keras/src/legacy/saving/
 * legacy_h5_format.py), which real files show: variable-length strings, and an empty list as an
 * empty float64 array (a layer without weights).
 */
function stringListAttribute(group: Group, name: string, values: string[]) {
  if (values.length === 0) group.create_attribute(name, new Float64Array(0), [0], '<d');
  else group.create_attribute(name, values, [values.length]);
}

/**
 * Writes the model as an `.h5` file: Keras 2 writes the configuration as bytes (a fixed-length
 * string) and names weights "dense/kernel:0"; Keras 3's legacy format writes a UTF-8 string and
 * the variables' paths, "sequential/dense/kernel".
 */
async function writeH5(file: string, spec: AutoencoderSpec, modelConfig: object | undefined, dialect: KerasDialect, api: ModelApi, customNames: boolean, nested: boolean) {
  await h5wasm.ready;
  const h5 = new h5wasm.File(file, 'w');
  try {
    const version = dialect === 'keras3' ? '3.6.0' : '2.15.0';
    if (modelConfig) {
      const config = JSON.stringify(modelConfig);
      if (dialect === 'keras2') h5.create_attribute('model_config', config, null, `S${Buffer.byteLength(config)}`);
      else h5.create_attribute('model_config', config);
    }
    h5.create_attribute('keras_version', version);
    h5.create_attribute('backend', 'tensorflow');
    h5.create_attribute('training_config', JSON.stringify({ loss: 'mae', optimizer_config: { class_name: 'Adam', config: {} } }));
    const weights = h5.create_group('model_weights');
    const names = layerNames(spec, customNames);
    if (nested) {
      if (dialect !== 'keras2') throw new Error('nested models are written as Keras 2 .h5 files only');
      // A nested model's group lists every variable of its layers, each under its layer's name.
      const [encoder, decoder] = encoderAndDecoder(spec);
      stringListAttribute(weights, 'layer_names', ['encoder', 'decoder']);
      for (const [part, partLayers, offset] of [['encoder', encoder, 0], ['decoder', decoder, encoder.length]] as const) {
        const group = weights.create_group(part);
        const vars = partLayers.flatMap((layer, i) => variables(layer).map(([variable, values]) => [`${names[offset + i]}/${variable}:0`, values] as const));
        stringListAttribute(group, 'weight_names', vars.map(([name]) => name));
        for (const [name, values] of vars) {
          const [layerName, variable] = name.split('/') as [string, string];
          const parent = group.keys().includes(layerName) ? (group.get(layerName) as Group) : group.create_group(layerName);
          parent.create_dataset({ name: variable, data: float32(values), shape: shapeOf(values), dtype: '<f4' });
        }
      }
      return;
    }
    // Sequential models list their layers without the input; Functional ones with it.
    const inputName = dialect === 'keras3' ? 'input_layer' : 'input_1';
    const listed = api === 'Functional' ? [inputName, ...names] : names;
    stringListAttribute(weights, 'layer_names', listed);
    weights.create_attribute('backend', 'tensorflow');
    weights.create_attribute('keras_version', version);
    for (const layerName of [...listed].sort()) {
      const group = weights.create_group(layerName);
      const layer = spec.layers[names.indexOf(layerName)];
      const vars = layer ? variables(layer) : [];
      const scope = [layerName, ...(layer ? [innerScope(layer, dialect)?.h5] : [])].filter(Boolean).join('/');
      const path = (variable: string) => (dialect === 'keras3' ? `${api === 'Sequential' ? 'sequential' : 'functional'}/${scope}/${variable}` : `${scope}/${variable}:0`);
      stringListAttribute(group, 'weight_names', vars.map(([variable]) => path(variable)));
      for (const [variable, values] of vars) {
        // h5py creates the groups a name's slashes imply; h5wasm needs them made first.
        const parts = path(variable).split('/');
        const parent = parts.slice(0, -1).reduce<Group>((at, part) => (at.keys().includes(part) ? (at.get(part) as Group) : at.create_group(part)), group);
        parent.create_dataset({ name: parts.at(-1)!, data: float32(values), shape: shapeOf(values), dtype: '<f4' });
      }
    }
    // Optimizer state, which the import ignores.
    h5.create_group('optimizer_weights').create_dataset({ name: 'iteration:0', data: new BigInt64Array([100n]), shape: [], dtype: '<q' });
  } finally {
    h5.close();
  }
}

/** Writes the model as a Keras 3 `.keras` archive. */
async function writeKeras(file: string, spec: AutoencoderSpec, config: object | undefined, api: ModelApi, scratch: string, nested: boolean) {
  await h5wasm.ready;
  const weightsFile = path.join(scratch, 'model.weights.h5');
  const h5 = new h5wasm.File(weightsFile, 'w');
  try {
    const writeLayers = (layers: Group, stack: LayerSpec[]) => {
      const names = classNames({ width: spec.width, layers: stack });
      stack.forEach((layer, i) => {
        const group = layers.create_group(names[i]!);
        const inner = innerScope(layer, 'keras3');
        // A layer with an inner one keeps no variables of its own: its (empty) vars, then the inner's.
        const vars = (inner ? (group.create_group('vars'), group.create_group(inner.keras)) : group).create_group('vars');
        variables(layer).forEach(([, values], index) => vars.create_dataset({ name: String(index), data: float32(values), shape: shapeOf(values), dtype: '<f4' }));
      });
    };
    const layers = h5.create_group('layers');
    if (api === 'Functional') layers.create_group('input_layer').create_group('vars');
    if (nested) {
      // Each nested model under a name by its class, its layers named within it.
      encoderAndDecoder(spec).forEach((stack, i) => {
        const model = layers.create_group(i === 0 ? 'sequential' : `sequential_${i}`);
        model.create_group('vars');
        writeLayers(model.create_group('layers'), stack);
      });
    } else {
      writeLayers(layers, [...spec.layers]);
    }
    h5.create_group('vars');
    const optimizer = h5.create_group('optimizer').create_group('vars');
    optimizer.create_dataset({ name: '0', data: new BigInt64Array([100n]), shape: [], dtype: '<q' });
  } finally {
    h5.close();
  }
  const zip = zipSync({
    'metadata.json': strToU8(JSON.stringify({ keras_version: '3.6.0', date_saved: '2026-11-24@12:00:00' })),
    ...(config ? { 'config.json': strToU8(JSON.stringify(config)) } : {}),
    'model.weights.h5': new Uint8Array(await readFile(weightsFile)),
  });
  await writeFile(file, zip);
}

export interface KerasFileOptions {
  readonly format: 'keras' | 'h5';
  readonly dialect: KerasDialect;
  readonly api: ModelApi;
  /** A folder for the scratch files. */
  readonly scratch: string;
  /** Changes the configuration before it is written (to write a broken file); undefined writes none. */
  readonly editConfig?: (config: Record<string, unknown>) => Record<string, unknown> | undefined;
  /** Layers named by the user rather than by Keras. @default false */
  readonly customNames?: boolean;
  /** With 'Sequential': Sequential([encoder, decoder]), split after the narrowest Dense. @default false */
  readonly nested?: boolean;
}

/** Writes `spec` as a Keras model file in the given format, dialect and API. */
export async function writeKerasModel(file: string, spec: AutoencoderSpec, options: KerasFileOptions): Promise<void> {
  const { format, dialect, api, scratch, editConfig = (c) => c, customNames = false, nested = false } = options;
  const config = editConfig(modelConfig(spec, dialect, api, customNames, nested));
  if (format === 'keras') {
    if (dialect !== 'keras3') throw new Error('.keras files are Keras 3');
    await writeKeras(file, spec, config, api, scratch, nested);
  } else {
    await writeH5(file, spec, config, dialect, api, customNames, nested);
  }
}

// @ts-check
// The page's script: plain JavaScript checked by TypeScript (tsc checkJs), served as is, so the
// page needs no build step and nothing from outside the server.

/**
 * @typedef {{ name: string; label?: number; rows?: number; values: number[] }} Example
 * @typedef {{ name: string; datatype: string; shape: number[] }} InputSpec
 * @typedef {InputSpec & { role: 'score' | 'verdict' | 'reconstruction' | 'attribution' | 'p_value' }} OutputSpec
 * @typedef {{ method: 'none' } | { method: 'min-max'; min: number; max: number }
 *   | { method: 'standard'; mean: number[]; std: number[] }
 *   | { method: 'min-max-per-feature'; min: number[]; max: number[] }} Normalisation
 * @typedef {{ name: string; version: string; backend: string; threshold: number; score: 'mae' | 'mse';
 *   signature: { inputs: InputSpec[]; outputs: OutputSpec[] }; calibrationRows?: number;
 *   normalisation: Normalisation; examples: Example[] }} ModelInfo
 * @typedef {{ name: string; shape: number[]; datatype: string; data: (number | boolean)[] }} OutputTensor
 */

/** @param {string} id */
function element(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found;
}

const values = /** @type {HTMLTextAreaElement} */ (element('values'));
const error = element('values-error');
const csvFile = /** @type {HTMLInputElement} */ (element('csv-file'));
const csvRow = /** @type {HTMLInputElement} */ (element('csv-row'));
/** What the page calls a row: the model's input name, once the model is known. */
let noun = 'input';
const WIDTH = 700;
const HEIGHT = 280;
const PAD = 12;
/** How many of the values that contribute most to the score the chart rings. */
const CONTRIBUTORS = 5;

/** Where the page keeps the API key it was given: for this tab only, never in the URL or on disk. */
const KEY_STORAGE = 'anomaly-serve:api-key';

/** The API key's header, once the user has given one. @returns {Record<string, string>} */
function keyHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/**
 * Asks for an API key (the server answered 401) and resolves once one is given.
 * @param {string} message why it is asked for
 * @returns {Promise<void>}
 */
function askForKey(message) {
  const form = /** @type {HTMLFormElement} */ (element('key-form'));
  const input = /** @type {HTMLInputElement} */ (element('api-key'));
  element('key-message').textContent = message;
  form.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY_STORAGE, input.value.trim());
        input.value = '';
        form.hidden = true;
        resolve();
      },
      { once: true },
    );
  });
}

/** @param {string} message */
function showError(message) {
  error.textContent = message;
  values.setAttribute('aria-invalid', message ? 'true' : 'false');
}

/**
 * The model's input: its name, its dimensions after the batch ([width], or [steps, features] for a
 * window), and its width, the values of one instance, flat (a window's steps one after the other).
 * @param {ModelInfo} model
 */
const inputOf = (model) => {
  const dims = model.signature.inputs[0]?.shape.slice(1) ?? [];
  return { name: model.signature.inputs[0]?.name ?? 'input', dims, width: dims.reduce((product, size) => product * size, 1) };
};

/** @param {ModelInfo} model @param {OutputSpec['role']} role the name of the output with that role */
const outputNamed = (model, role) => model.signature.outputs.find((output) => output.role === role)?.name ?? role;

/** @param {string} text, one row: numbers, and anything else as the text it is (the API names it) */
function parseValues(text) {
  return text
    .split(/[\s,;]+/)
    .filter((token) => token !== '')
    .map((token) => (Number.isFinite(Number(token)) ? Number(token) : token));
}

/**
 * @param {number[]} series
 * @param {[number, number]} range the values at the bottom and the top of the chart
 * @returns {string} SVG points
 */
function points(series, [low, high]) {
  const step = (WIDTH - 2 * PAD) / Math.max(1, series.length - 1);
  const y = (/** @type {number} */ v) => HEIGHT - PAD - ((v - low) / (high - low || 1)) * (HEIGHT - 2 * PAD);
  return series.map((v, i) => `${(PAD + i * step).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
}

/** Empties the chart and the figures, so that no result stands beside input it is not for. */
function clearResult() {
  for (const id of ['input-line', 'reconstruction-line', 'gap']) element(id).setAttribute('points', '');
  element('chart-title').textContent = `No ${noun} scored yet`;
  element('contributors').replaceChildren();
  for (const id of ['reconstruction-error', 'threshold', 'verdict', 'p-value', 'contributors-list']) element(id).textContent = '–';
  delete element('verdict').dataset.verdict;
}

/** A row in the units the model sees, which its reconstruction is in: as the server scales it. @param {Normalisation} normalisation @param {number[]} row */
function normalise(normalisation, row) {
  switch (normalisation.method) {
    case 'min-max':
      return row.map((v) => (v - normalisation.min) / (normalisation.max - normalisation.min));
    case 'standard':
      return row.map((v, i) => (v - (normalisation.mean[i] ?? 0)) / (normalisation.std[i] ?? 1));
    case 'min-max-per-feature':
      return row.map((v, i) => (v - (normalisation.min[i] ?? 0)) / ((normalisation.max[i] ?? 1) - (normalisation.min[i] ?? 0) || 1));
    default:
      return row;
  }
}

/**
 * The p-value in words: how many of the normal rows the model was calibrated on scored as high.
 * @param {ModelInfo} model @param {number | undefined} pValue
 */
function unusualness(model, pValue) {
  const rows = model.calibrationRows;
  if (pValue === undefined || rows === undefined) return 'not known: the model records no calibration';
  if (pValue === 0) return `scores higher than all ${rows} normal ${noun}s the model was calibrated on (p < ${(1 / rows).toPrecision(2)})`;
  if (pValue >= 0.5) return `common: ${Math.round(100 * pValue)}% of normal ${noun}s score at least this high (p = ${pValue.toFixed(2)})`;
  return `1 in ${Math.round(1 / pValue).toLocaleString('en')} normal ${noun}s scores this high (p = ${pValue.toPrecision(2)})`;
}

/**
 * Rings the values whose error contributes most to the score, on the input's line, and lists them.
 * @param {number[] | undefined} attribution @param {string} line the input's SVG points
 */
function markContributors(attribution, line) {
  const group = element('contributors');
  group.replaceChildren();
  if (!attribution) {
    element('contributors-list').textContent = 'not known: the model has no attribution output';
    return;
  }
  const total = attribution.reduce((sum, value) => sum + value, 0) || 1;
  const top = attribution
    .map((value, index) => ({ value, index }))
    .sort((a, b) => b.value - a.value)
    .slice(0, CONTRIBUTORS);
  const coordinates = line.split(' ');
  for (const { index } of top) {
    const [x, y] = (coordinates[index] ?? '0,0').split(',');
    const ring = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    ring.setAttribute('cx', x ?? '0');
    ring.setAttribute('cy', y ?? '0');
    ring.setAttribute('r', '6');
    group.append(ring);
  }
  const share = top.reduce((sum, { value }) => sum + value, 0) / total;
  element('contributors-list').textContent = `values ${top.map(({ index }) => index + 1).join(', ')}: ${Math.round(100 * share)}% of the error`;
}

/**
 * @param {ModelInfo} model @param {number[]} row @param {number[]} reconstruction @param {number} score @param {boolean} isAnomaly
 * @param {number[] | undefined} attribution @param {number | undefined} pValue
 */
function draw(model, row, reconstruction, score, isAnomaly, attribution, pValue) {
  const scaled = normalise(model.normalisation, row);
  const all = [...scaled, ...reconstruction];
  const [low, high] = [Math.min(...all), Math.max(...all)];
  /** @type {[number, number]} */
  const range = [low - 0.05 * (high - low), high + 0.05 * (high - low)];
  element('input-line').setAttribute('points', points(scaled, range));
  markContributors(attribution, points(scaled, range));
  element('p-value').textContent = unusualness(model, pValue);
  element('reconstruction-line').setAttribute('points', points(reconstruction, range));
  // The area between the two lines: along the input, then back along the reconstruction.
  element('gap').setAttribute('points', `${points(scaled, range)} ${points(reconstruction, range).split(' ').reverse().join(' ')}`);
  const verdict = isAnomaly ? 'anomaly' : 'normal';
  element('chart-title').textContent = `The ${noun} (solid) and its reconstruction (dashed): reconstruction error ${score.toFixed(5)}, ${verdict}`;
  element('reconstruction-error').textContent = score.toFixed(5);
  element('threshold').textContent = `${model.threshold.toFixed(5)} (above it: anomaly)`;
  const verdictElement = element('verdict');
  verdictElement.textContent = isAnomaly ? 'anomaly' : 'normal';
  verdictElement.dataset.verdict = verdict;
}

/** @param {ModelInfo} model */
async function score(model) {
  const row = parseValues(values.value);
  if (row.length === 0) {
    showError(`Paste the ${noun}’s values, pick an example, or load a CSV row first.`);
    return;
  }
  const input = inputOf(model);
  const response = await fetch(`/v2/models/${encodeURIComponent(model.name)}/infer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...keyHeaders() },
    body: JSON.stringify({
      inputs: [{ name: input.name, shape: [1, ...input.dims], datatype: 'FP32', data: row }],
      outputs: model.signature.outputs.map(({ name }) => ({ name })),
    }),
  }).catch((/** @type {Error} */ failure) => failure);
  if (response instanceof Error) {
    showError(`The server could not be reached: ${response.message}`);
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    showError('');
    await askForKey(`The key was refused (${body.error ?? response.status}): give another.`);
    await score(model);
    return;
  }
  if (!response.ok) {
    // The API's own message says what was wrong and where.
    showError(body.error ?? `The server answered ${response.status}.`);
    clearResult();
    return;
  }
  showError('');
  const outputs = Object.fromEntries(/** @type {OutputTensor[]} */ (body.outputs).map((o) => [o.name, o.data]));
  draw(
    model,
    /** @type {number[]} */ (row),
    /** @type {number[]} */ (outputs[outputNamed(model, 'reconstruction')]),
    /** @type {number} */ (outputs[outputNamed(model, 'score')]?.[0]),
    /** @type {boolean} */ (outputs[outputNamed(model, 'verdict')]?.[0]),
    /** @type {number[] | undefined} */ (outputs[outputNamed(model, 'attribution')]),
    /** @type {number | undefined} */ (outputs[outputNamed(model, 'p_value')]?.[0]),
  );
}

/** @param {ModelInfo} model */
async function loadCsvRow(model) {
  const file = csvFile.files?.[0];
  if (!file) return;
  const rows = (await file.text()).split(/\r?\n/).filter((line) => line.trim() !== '');
  const number = Number(csvRow.value);
  const row = rows[number - 1];
  if (!Number.isInteger(number) || row === undefined) {
    showError(`${file.name} has ${rows.length} rows; there is no row ${csvRow.value}.`);
    return;
  }
  const cells = parseValues(row);
  // A row of training data (ECG5000's, for one) carries its label after the values.
  values.value = (cells.length === inputOf(model).width + 1 ? cells.slice(0, -1) : cells).join(', ');
  await score(model);
}

async function main() {
  const response = await fetch('/ui/model', { headers: keyHeaders() });
  if (response.status === 401) {
    element('model-info').textContent = 'This server asks for an API key.';
    await askForKey(sessionStorage.getItem(KEY_STORAGE) ? 'The key was refused: give another.' : 'Give the API key you were given for it.');
    await main();
    return;
  }
  if (!response.ok) {
    element('model-info').textContent = `The model is not available (${response.status}); reload when the server is ready.`;
    return;
  }
  /** @type {ModelInfo} */
  const model = await response.json();
  element('model-info').textContent = `Model ${model.name}, version ${model.version}, on the ${model.backend} backend`;
  element('gap-legend').textContent = model.score === 'mse' ? 'the gap: the mean of its square is the reconstruction error' : 'the gap: its mean is the reconstruction error';
  // The page speaks of the model's input by its name ("beat" for the bundled model).
  noun = inputOf(model).name;
  element('contributors-legend').hidden = !model.signature.outputs.some((output) => output.role === 'attribution');
  for (const span of document.querySelectorAll('.input-name')) span.textContent = noun;
  const { dims, width } = inputOf(model);
  // A window is drawn as it is sent: its steps one after the other, each its features in order.
  element('input-length').textContent = dims.length > 1 ? `${width} (a window of ${dims[0]} ${dims[0] === 1 ? 'step' : 'steps'} of ${dims[1]} features, step after step)` : String(width);
  clearResult();
  const examples = element('examples');
  if (model.examples.length === 0) element('examples-fieldset').hidden = true;
  for (const example of model.examples) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `${example.name[0]?.toUpperCase()}${example.name.slice(1)} ${noun}`;
    const mean = example.rows ? ` (mean of ${example.rows} training rows)` : '';
    button.setAttribute('aria-label', `Score the ${example.name} example ${noun}${mean}`);
    button.addEventListener('click', () => {
      values.value = example.values.map((v) => Number(v.toPrecision(7))).join(', ');
      void score(model);
    });
    examples.append(button);
  }
  element('score').addEventListener('click', () => void score(model));
  csvFile.addEventListener('change', () => void loadCsvRow(model));
  csvRow.addEventListener('change', () => void loadCsvRow(model));
}

void main();

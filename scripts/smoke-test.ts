import { runCli, parseCommandLine, UsageError } from '../lib/cli.ts';
import { PATHS } from '../app/contract.ts';

const USAGE = `Usage: npm run smoke -- URL

Checks a deployed endpoint the way a client sees it, with API_KEY (environment) as a Bearer token
when it is set: ready; the model's facts (GET /ui/model); its example rows scored through the Open
Inference Protocol and TensorFlow Serving's REST API, each answer 200 with the signature's outputs
(names, datatypes, shapes) and the verdict each example's name says (a "normal" one normal, an
"anomalous" one an anomaly). Exit 0 when every check passes; 1, saying which failed and why.
`;

interface ModelFacts {
  readonly name: string;
  readonly version: string;
  readonly signature: { readonly inputs: { name: string; shape: number[] }[]; readonly outputs: { name: string; role: string; datatype: string }[] };
  readonly examples: { name: string; values: number[] }[];
}

class SmokeTestFailure extends Error {
  override name = 'SmokeTestFailure';
}

/** A check that must hold, or the smoke test fails saying `what`. */
function check(holds: boolean, what: string): void {
  if (!holds) throw new SmokeTestFailure(what);
}

await runCli('smoke', USAGE, async (argv, logger) => {
  const { positionals } = parseCommandLine(argv, {});
  if (positionals.length !== 1 || !/^https?:\/\/[^\s/]+\/?$/.test(positionals[0]!)) throw new UsageError('give the endpoint\'s URL, such as https://api.example.com');
  const base = positionals[0]!.replace(/\/$/, '');
  const headers = { 'Content-Type': 'application/json', ...(process.env.API_KEY ? { Authorization: `Bearer ${process.env.API_KEY}` } : {}) };
  const call = async (path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, { method: body === undefined ? 'GET' : 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) }).catch(
      (error: Error) => {
        throw new SmokeTestFailure(`${path}: ${base} could not be reached: ${(error.cause as Error | undefined)?.message ?? error.message}`);
      },
    );
    const text = await response.text();
    check(response.status === 200, `${path}: ${response.status} ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new SmokeTestFailure(`${path}: answered 200 with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  };
  try {
    check((await call(PATHS.ready)).ready === true, `${PATHS.ready}: not ready`);
    const model = (await call(PATHS.pageModel)) as unknown as ModelFacts;
    const [input] = model.signature.inputs;
    const [score, verdict] = [model.signature.outputs.find((o) => o.role === 'score')!, model.signature.outputs.find((o) => o.role === 'verdict')!];
    const examples = model.examples.filter((e) => e.name === 'normal' || e.name === 'anomalous');
    check(examples.length > 0, `model ${model.name} has no "normal" or "anomalous" example rows in its metadata.json to check verdicts with`);
    const expected = examples.map((e) => e.name === 'anomalous');
    const v2 = await call(`/v2/models/${model.name}/infer`, { inputs: [{ name: input!.name, shape: [examples.length, ...input!.shape.slice(1)], datatype: 'FP32', data: examples.flatMap((e) => e.values) }] });
    check(v2.model_version === model.version, `V2 answered version ${String(v2.model_version)}, the model's is ${model.version}`);
    const outputs = v2.outputs as { name: string; datatype: string; shape: number[]; data: unknown[] }[];
    check(
      JSON.stringify(outputs.map((o) => [o.name, o.datatype, o.shape])) === JSON.stringify([[score.name, 'FP32', [examples.length]], [verdict.name, 'BOOL', [examples.length]]]),
      `V2 outputs ${JSON.stringify(outputs.map((o) => [o.name, o.datatype, o.shape]))} are not the signature's ${score.name} (FP32) and ${verdict.name} (BOOL) of ${examples.length}`,
    );
    const v2Verdicts = outputs[1]!.data;
    examples.forEach((e, i) => check(v2Verdicts[i] === expected[i], `V2 called the ${e.name} example ${v2Verdicts[i] ? 'an anomaly' : 'normal'}`));
    const tfServing = await call(`/v1/models/${model.name}:predict`, { instances: examples.map((e) => e.values) });
    const predictions = tfServing.predictions as Record<string, unknown>[];
    examples.forEach((e, i) => {
      check(typeof predictions[i]?.[score.name] === 'number', `TensorFlow Serving's prediction ${i} has no number ${score.name}`);
      check(predictions[i]![verdict.name] === expected[i], `TensorFlow Serving called the ${e.name} example ${predictions[i]![verdict.name] ? 'an anomaly' : 'normal'}`);
    });
    logger.info({ url: base, model: model.name, version: model.version, examples: examples.map((e) => e.name) }, 'smoke test passed');
  } catch (error) {
    if (!(error instanceof SmokeTestFailure)) throw error;
    logger.error({ url: base }, `smoke test failed: ${error.message}`);
    process.exitCode = 1;
  }
});

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudBuild, stepScript, stepWorkspace } from '../test/cloudbuild.ts';
import { loggedError, runCommand } from '../test/command.ts';
import { BUNDLED_MODEL_DIR } from '../model/artifact.ts';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'model-gate-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

const gate = (args: string[]) => runCommand('scripts/model-gate.ts', args);
/** The pipeline's minimums, as cloudbuild.yaml's substitutions set them by default. */
const pipelineMinimums = () => ['_MIN_ACCURACY', '_MIN_ROC_AUC', '_MIN_RECALL', '_MAX_FPR'].flatMap((key, i) => [['--min-accuracy', '--min-roc-auc', '--min-recall', '--max-fpr'][i]!, cloudBuild.substitutions[key]!]);

describe('npm run gate', () => {
  it('passes the bundled model at the pipeline\'s default minimums', async () => {
    const result = await gate([BUNDLED_MODEL_DIR, ...pipelineMinimums()]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/"msg":"the model meets the gate"/);
  });

  it('refuses a model that falls short, naming each figure and its bound', async () => {
    const result = await gate([BUNDLED_MODEL_DIR, '--min-accuracy', '0.99', '--min-recall', '0.5', '--max-fpr', '0.01']);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/falls short: accuracy 0\.9650 is below 0\.99; false-positive rate 0\.0445 is above 0\.01$/);
  });

  it('reads the false-positive rate of an evaluation recorded before the rate was from its confusion matrix', async () => {
    const dir = path.join(scratch, 'older-evaluation');
    await cp(BUNDLED_MODEL_DIR, dir, { recursive: true });
    const metadata = JSON.parse(await readFile(path.join(dir, 'metadata.json'), 'utf8'));
    delete metadata.evaluation.falsePositiveRate;
    await writeFile(path.join(dir, 'metadata.json'), JSON.stringify(metadata));
    const result = await gate([dir, '--max-fpr', '0.04']);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/false-positive rate 0\.0445 is above 0\.04$/);
  });

  it('refuses a model that records no evaluation', async () => {
    const dir = path.join(scratch, 'unevaluated');
    await cp(BUNDLED_MODEL_DIR, dir, { recursive: true });
    const metadata = JSON.parse(await readFile(path.join(dir, 'metadata.json'), 'utf8'));
    delete metadata.evaluation;
    await writeFile(path.join(dir, 'metadata.json'), JSON.stringify(metadata));
    const result = await gate([dir, ...pipelineMinimums()]);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/records no evaluation to gate on/);
  });

  it.each([
    [[BUNDLED_MODEL_DIR, '--min-accuracy', '95%'], /--min-accuracy must be a share from 0 to 1, got "95%"/],
    [[], /name the model folder/],
    [['no-such-folder'], /no-such-folder\/metadata\.json: no such file/],
  ])('%j: a message and exit code 2', async (args, message) => {
    const result = await gate(args);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(message);
  });
});

describe('the pipeline\'s model-metadata and model-gate steps, run', () => {
  let project: string;
  beforeAll(async () => {
    project = await stepWorkspace(scratch);
    // A stand-in for gcloud that copies from a folder standing for the bucket.
    const bin = path.join(scratch, 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'gcloud'), `#!/bin/bash\necho "$*" >> ${scratch}/gcloud.log\n[ "$1 $2" = "storage cp" ] && cp "${scratch}/bucket/\${3#gs://models/}" "$4"\n`, { mode: 0o755 });
  });
  const run = (script: string) =>
    promisify(execFile)('bash', ['-c', script], { cwd: project, env: { ...process.env, PATH: `${scratch}/bin:${process.env.PATH}` } }).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
    );

  it('gates the image\'s model by default, and passes it', async () => {
    expect((await run(stepScript('model-metadata', {}))).code).toBe(0);
    expect(await readFile(path.join(project, '.model-gate/stable/metadata.json'), 'utf8')).toBe(await readFile(`${BUNDLED_MODEL_DIR}/metadata.json`, 'utf8'));
    const gated = await run(stepScript('model-gate', {}));
    expect(gated.code, gated.output).toBe(0);
  });

  it('gates _MODEL_URI\'s model, copied from Cloud Storage, and stops the build when it falls short; _MODEL_GATE=off lets it through', async () => {
    const weak = JSON.parse(await readFile(`${BUNDLED_MODEL_DIR}/metadata.json`, 'utf8'));
    weak.evaluation.rocAuc = 0.9;
    await mkdir(path.join(scratch, 'bucket', 'heartbeats', 'v2'), { recursive: true });
    await writeFile(path.join(scratch, 'bucket', 'heartbeats', 'v2', 'metadata.json'), JSON.stringify(weak));
    const uri = { _MODEL_URI: 'gs://models/heartbeats/v2' };
    expect((await run(stepScript('model-metadata', uri))).code).toBe(0);
    expect(await readFile(`${scratch}/gcloud.log`, 'utf8')).toContain('storage cp gs://models/heartbeats/v2/metadata.json .model-gate/stable/');
    const gated = await run(stepScript('model-gate', uri));
    expect(gated.code).toBe(1);
    expect(gated.output).toMatch(/falls short: ROC AUC 0\.9000 is below 0\.98/);
    const off = await run(stepScript('model-gate', { ...uri, _MODEL_GATE: 'off' }));
    expect([off.code, off.output.trim()]).toEqual([0, 'model gate: off (_MODEL_GATE)']);
  });

  it('gates a canary\'s model too: the image\'s model passes, the weak canary stops the build', async () => {
    const canary = { _CANARY_MODEL_URI: 'gs://models/heartbeats/v2' };
    expect((await run(stepScript('model-metadata', canary))).code).toBe(0);
    const gated = await run(stepScript('model-gate', canary));
    expect(gated.code).toBe(1);
    expect(gated.output).toMatch(/"msg":"the model meets the gate"/);
    expect(gated.output).toMatch(/falls short: ROC AUC 0\.9000 is below 0\.98/);
  });
});

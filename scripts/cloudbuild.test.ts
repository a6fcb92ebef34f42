import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

interface Step {
  id: string;
  name: string;
  entrypoint?: string;
  args?: string[];
  env?: string[];
  waitFor?: string[];
}
interface CloudBuild {
  substitutions: Record<string, string>;
  steps: Step[];
  images: string[];
  options: Record<string, unknown>;
}

let build: CloudBuild;
beforeAll(async () => {
  build = parse(await readFile('cloudbuild.yaml', 'utf8')) as CloudBuild;
});

/** Cloud Build's substitution, with the built-ins a trigger would set. */
function substitute(text: string): string {
  const builtIns: Record<string, string> = { PROJECT_ID: 'my-project', SHORT_SHA: '1a2b3c4' };
  let result = text;
  for (let i = 0; i < 3; i++) {
    result = result.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced: string, bare: string) => {
      const key = braced ?? bare;
      const value = build.substitutions[key] ?? builtIns[key];
      if (value === undefined) throw new Error(`cloudbuild.yaml uses $${key}, which nothing defines`);
      return value;
    });
  }
  return result;
}

const step = (id: string) => build.steps.find((s) => s.id === id)!;

/** The steps a step waits for, directly or not (Cloud Build: by default, every earlier step). */
function prerequisites(id: string): Set<string> {
  const index = build.steps.findIndex((s) => s.id === id);
  const direct = step(id).waitFor ?? build.steps.slice(0, index).map((s) => s.id);
  const all = new Set<string>();
  for (const before of direct.filter((d) => d !== '-')) {
    all.add(before);
    for (const earlier of prerequisites(before)) all.add(earlier);
  }
  return all;
}

describe('cloudbuild.yaml', () => {
  it('validates against the Cloud Build schema', async () => {
    const schema = JSON.parse(await readFile('schemas/cloudbuild.schema.json', 'utf8'));
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    expect(validate(build) ? [] : validate.errors).toEqual([]);
  });

  it('declares the substitutions a user sets, and uses none it does not define', () => {
    expect(Object.keys(build.substitutions)).toEqual(expect.arrayContaining(['_REGION', '_REPOSITORY', '_CLUSTER', '_NAMESPACE']));
    expect(build.options.dynamicSubstitutions).toBe(true);
    expect(() => substitute(JSON.stringify(build))).not.toThrow();
  });

  it('runs install → test → build → push → synth → apply → rollout status, each after the one before', () => {
    const order = ['install', 'test', 'build', 'push', 'synth', 'apply', 'rollout'];
    expect(build.steps.map((s) => s.id).filter((id) => order.includes(id))).toEqual(order);
    order.slice(1).forEach((id, i) => expect([...prerequisites(id)]).toContain(order[i]));
  });

  it('calls only npm scripts that exist, and tests with the command the README and CI use', async () => {
    const scripts = (JSON.parse(await readFile('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    const npmSteps = build.steps.filter((s) => s.entrypoint === 'npm');
    for (const { args } of npmSteps) {
      const [command, script] = args!;
      if (command === 'run') expect(Object.keys(scripts)).toContain(script);
      else if (command === 'test') expect(scripts.test).toBeDefined();
      else expect(command).toBe('ci'); // npm's own
    }
    const testCommand = npmSteps.find((s) => s.id === 'test')!.args!.join(' ');
    expect(await readFile('README.md', 'utf8')).toContain(`npm ${testCommand} `);
    expect(await readFile('.ci/run', 'utf8')).toMatch(new RegExp(`^npm ${testCommand}$`, 'm'));
  });

  it('builds, pushes and synthesizes the same image, tagged with the commit', () => {
    const image = substitute('${_IMAGE}:${SHORT_SHA}');
    expect(image).toBe('europe-west1-docker.pkg.dev/my-project/anomaly-serve/anomaly-serve:1a2b3c4');
    const buildArgs = step('build').args!.map(substitute);
    expect(buildArgs[0]).toBe('build');
    expect(buildArgs).toEqual(expect.arrayContaining(['-t', image, '--cache-from']));
    const pushArgs = step('push').args!.map(substitute);
    expect(pushArgs).toEqual(['push', '--all-tags', image.split(':')[0]]);
    expect(step('synth').env!.map(substitute)).toContain(`IMAGE=${image}`);
    expect(build.images.map(substitute)).toContain(image);
  });

  it('applies dist/ with the kubectl builder on the cluster, and waits for the synthesized Deployment with a timeout', async () => {
    for (const id of ['apply', 'rollout']) {
      expect(step(id).name).toBe('gcr.io/cloud-builders/kubectl');
      expect(step(id).env!.map(substitute)).toEqual(['CLOUDSDK_COMPUTE_REGION=europe-west1', 'CLOUDSDK_CONTAINER_CLUSTER=anomaly-serve']);
    }
    expect(step('apply').args).toEqual(['apply', '-f', 'dist']);
    const deployment = parseAllDocuments(await readFile('dist/anomaly-serve.k8s.yaml', 'utf8'))
      .map((d) => d.toJS() as { kind: string; metadata: { name: string } })
      .find((m) => m.kind === 'Deployment')!;
    const rollout = step('rollout').args!.map(substitute);
    expect(rollout.slice(0, 3)).toEqual(['rollout', 'status', `deployment/${deployment.metadata.name}`]);
    expect(rollout).toEqual(expect.arrayContaining(['--namespace', 'anomaly-serve']));
    expect(rollout.some((a) => /^--timeout=\d+s$/.test(a))).toBe(true);
    expect(step('synth').env).toContain('NAMESPACE=${_NAMESPACE}');
  });

  it('can run as a user-managed service account, which Cloud Build refuses without a logging choice', () => {
    // Cloud Build rejects a build that runs as a service account other than its legacy default
    // unless the logs go to Cloud Logging only, nowhere, or a named bucket.
    const { logging } = build.options as { logging?: string };
    expect(['CLOUD_LOGGING_ONLY', 'NONE'].includes(logging!) || (build as unknown as { logsBucket?: string }).logsBucket !== undefined).toBe(true);
  });
});

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { NODE_MAJOR } from '../lib/bundle.ts';
import { cloudBuild, step, stepScript, substitute, type CloudBuild } from '../test/cloudbuild.ts';

let build: CloudBuild;
beforeAll(() => {
  build = cloudBuild;
});

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

  it('runs install → test → build → push → synth → apply → api-keys → rollout → endpoint → smoke → verify, each after the one before', () => {
    const order = ['install', 'test', 'build', 'push', 'synth', 'apply', 'api-keys', 'rollout', 'endpoint', 'smoke', 'verify'];
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
      else expect(['ci', 'audit']).toContain(command); // npm's own
    }
    // And those that bash steps run.
    for (const { args } of build.steps.filter((s) => s.entrypoint === 'bash')) {
      for (const [, script] of args!.at(-1)!.matchAll(/npm run --silent (\w+)/g)) expect(Object.keys(scripts)).toContain(script);
    }
    const testCommand = npmSteps.find((s) => s.id === 'test')!.args!.join(' ');
    expect(await readFile('README.md', 'utf8')).toContain(`npm ${testCommand} `);
    expect(await readFile('.ci/run', 'utf8')).toMatch(new RegExp(`^npm ${testCommand}$`, 'm'));
  });

  it('runs every Node.js step, and CI, on the line of package.json\'s engines', async () => {
    const images = new Set(build.steps.map((s) => s.name).filter((name) => name.startsWith('node:')));
    expect([...images]).toEqual([`node:${NODE_MAJOR}-bookworm`]);
    expect(await readFile('.ci/run', 'utf8')).toContain(`NODE_LINE="$(node -p "require('./package.json').engines.node.match(/\\d+/)[0]")"`);
  });

  it('builds, pushes and synthesizes the same image, tagged with the commit', () => {
    const image = substitute('${_IMAGE}:${SHORT_SHA}');
    expect(image).toBe('europe-west1-docker.pkg.dev/my-project/anomaly-serve/anomaly-serve:1a2b3c4');
    const buildArgs = step('build').args!.map((arg) => substitute(arg));
    expect(buildArgs[0]).toBe('build');
    expect(buildArgs).toEqual(expect.arrayContaining(['-t', image, '--cache-from']));
    const pushArgs = step('push').args!.map((arg) => substitute(arg));
    expect(pushArgs).toEqual(['push', '--all-tags', image.split(':')[0]]);
    expect(step('synth').env!.map((arg) => substitute(arg))).toContain(`IMAGE=${image}`);
    expect(build.images.map((arg) => substitute(arg))).toContain(image);
  });

  it('applies dist/ with the kubectl builder on the cluster, and waits for the synthesized Deployment with a timeout', async () => {
    for (const id of ['apply', 'rollout', 'endpoint', 'verify']) {
      expect(step(id).name).toBe('gcr.io/cloud-builders/kubectl');
      expect(step(id).env!.map((arg) => substitute(arg))).toEqual(['CLOUDSDK_COMPUTE_REGION=europe-west1', 'CLOUDSDK_CONTAINER_CLUSTER=anomaly-serve']);
    }
    expect(step('apply').args).toEqual(['apply', '-f', 'dist']);
    const deployment = parseAllDocuments(await readFile('dist/anomaly-serve.k8s.yaml', 'utf8'))
      .map((d) => d.toJS() as { kind: string; metadata: { name: string } })
      .find((m) => m.kind === 'Deployment')!;
    expect(stepScript('rollout')).toContain(`deployments=${deployment.metadata.name}`);
    expect(stepScript('rollout')).toContain('rollout status deployment/$deployment --namespace anomaly-serve --timeout=300s');
    expect(stepScript('verify')).toContain(`rollout undo deployment/${deployment.metadata.name} --namespace anomaly-serve`);
    expect(step('synth').env).toContain('NAMESPACE=${_NAMESPACE}');
  });

  it('passes each setting of npm run synth from a substitution that is empty, so unset, by default', async () => {
    const read = [...(await readFile('charts/main.ts', 'utf8')).matchAll(/(?:setting|substitution)\(env, '(\w+)'\)/g)].map((m) => m[1]);
    const passed = Object.fromEntries(step('synth').env!.map((e) => e.split('=') as [string, string]));
    expect(Object.keys(passed).sort()).toEqual([...read].sort());
    for (const name of ['MODEL_URI', 'MODEL_SERVICE_ACCOUNT', 'ALLOWED_SOURCE_RANGES', 'INTERNAL_LOAD_BALANCER', 'DOMAIN', 'CANARY_MODEL_URI', 'CANARY_WEIGHT']) expect(substitute(passed[name]!)).toBe('');
  });

  it('gates on the model before it builds, so before it applies anything', () => {
    expect([...prerequisites('model-gate')]).toEqual(expect.arrayContaining(['install', 'model-metadata']));
    expect([...prerequisites('build')]).toContain('model-gate');
    expect([...prerequisites('apply')]).toContain('model-gate');
  });

  it('builds the image for a backend the Dockerfile accepts', async () => {
    const backend = substitute('${_BACKEND}');
    expect(['tensorflow', 'wasm']).toContain(backend);
    expect(await readFile('Dockerfile', 'utf8')).toMatch(new RegExp(`^\\s+${backend}\\) `, 'm'));
    expect(step('build').args).toEqual(expect.arrayContaining(['--build-arg', 'BACKEND=${_BACKEND}']));
  });

  it('audits the production dependencies before it builds, failing on high or critical', () => {
    expect(step('audit')).toMatchObject({ name: `node:${NODE_MAJOR}-bookworm`, entrypoint: 'npm', args: ['audit', '--omit=dev', '--audit-level=high'] });
    expect([...prerequisites('build')]).toEqual(expect.arrayContaining(['audit', 'sbom', 'test']));
  });

  it('writes a CycloneDX SBOM of the production dependencies, and keeps it with the build', async () => {
    // In the checkout, as in Cloud Build's workspace (npm reads the installed tree, node_modules),
    // but written elsewhere: in Cloud Build, npm test runs beside the step that writes the real one.
    const [written] = build.artifacts.objects.paths;
    const [flag, command] = step('sbom').args!;
    expect(command).toMatch(new RegExp(`> ${written!.replace('.', '\\.')}$`));
    const scratch = await mkdtemp(path.join(tmpdir(), 'sbom-'));
    try {
      await promisify(execFile)(step('sbom').entrypoint!, [flag!, command!.replace(`> ${written}`, `> ${path.join(scratch, written!)}`)], { maxBuffer: 64 * 1024 * 1024 });
      const sbom = JSON.parse(await readFile(path.join(scratch, written!), 'utf8')) as { bomFormat: string; components: { name: string }[] };
      expect(sbom.bomFormat).toBe('CycloneDX');
      const names = new Set(sbom.components.map((c) => c.name));
      for (const shipped of ['hono', '@hono/node-server', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'prom-client', 'zod']) expect(names).toContain(shipped);
      for (const development of ['vitest', 'typescript', 'h5wasm', 'cdk8s']) expect(names).not.toContain(development);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    expect(substitute(build.artifacts.objects.location)).toBe('gs://my-project_cloudbuild/anomaly-serve/1a2b3c4/');
  }, 60_000);

  it('asks for provenance of the images it pushes (SLSA, requestedVerifyOption)', () => {
    expect(build.options.requestedVerifyOption).toBe('VERIFIED');
    expect(build.images.map((arg) => substitute(arg))).toEqual([substitute('${_IMAGE}:${SHORT_SHA}'), substitute('${_IMAGE}:latest')]);
  });

  describe('the api-keys step, run with a stand-in for the builder’s kubectl', () => {
    let scratch: string;
    beforeAll(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'api-keys-step-'));
    });
    afterAll(() => rm(scratch, { recursive: true, force: true }));

    /** Runs the step's script with `kubectl` recording its calls (and the key file it is given); `get` finds the Secret or not. */
    async function runStep(secretExists: boolean) {
      const calls = path.join(scratch, `calls-${secretExists}`);
      const kubectl = path.join(scratch, 'kubectl.bash');
      await writeFile(
        kubectl,
        `#!/bin/bash\necho "$*" >> ${calls}\n[[ $1 == get ]] && exit ${secretExists ? 0 : 1}\nfor a; do [[ $a == --from-file=keys=* ]] && cp "\${a#--from-file=keys=}" ${calls}.key; done\necho secret/created\n`,
        { mode: 0o755 },
      );
      const script = substitute(step('api-keys').args![1]!).replaceAll('/builder/kubectl.bash', kubectl).replaceAll('/tmp/keys', path.join(scratch, 'keys'));
      const { stdout, stderr } = await promisify(execFile)('bash', ['-c', script]);
      const read = (file: string) => readFile(file, 'utf8').catch(() => undefined);
      return { log: stdout + stderr, calls: (await read(calls))?.trim().split('\n'), key: await read(`${calls}.key`), left: await read(path.join(scratch, 'keys')) };
    }

    it('makes the Secret the pods mount, with one random key, when there is none; the key is in no log and no file after', async () => {
      const secretName = (parseAllDocuments(await readFile('dist/anomaly-serve.k8s.yaml', 'utf8')).map((d) => d.toJS()) as { kind: string; spec: { template: { spec: { volumes: { secret?: { secretName: string } }[] } } } }[])
        .find((m) => m.kind === 'Deployment')!
        .spec.template.spec.volumes.find((v) => v.secret)!.secret!.secretName;
      const { calls, key, log, left } = await runStep(false);
      expect(calls).toEqual([
        `get secret ${secretName} --namespace anomaly-serve`,
        `create secret generic ${secretName} --namespace anomaly-serve --from-file=keys=${path.join(scratch, 'keys')}`,
      ]);
      expect(key).toMatch(/^[0-9a-f]{64}$/);
      expect(log).not.toContain(key);
      expect(left).toBeUndefined();
      expect((await runStep(false)).key).not.toBe(key);
    });

    it('leaves an existing Secret as it is', async () => {
      expect((await runStep(true)).calls).toEqual(['get secret anomaly-serve-api-keys --namespace anomaly-serve']);
    });

    it('runs on the cluster after dist/ is applied (the namespace exists) and before the rollout is awaited', () => {
      expect(step('api-keys').env).toEqual(step('apply').env);
      expect([...prerequisites('api-keys')]).toContain('apply');
      expect([...prerequisites('rollout')]).toContain('api-keys');
    });
  });

  it('can run as a user-managed service account, which Cloud Build refuses without a logging choice', () => {
    // Cloud Build rejects a build that runs as a service account other than its legacy default
    // unless the logs go to Cloud Logging only, nowhere, or a named bucket.
    const { logging } = build.options as { logging?: string };
    expect(['CLOUD_LOGGING_ONLY', 'NONE'].includes(logging!) || (build as unknown as { logsBucket?: string }).logsBucket !== undefined).toBe(true);
  });
});

import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { appsFrom, cleartextWarning, settingsFrom } from './main.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';
import { connects } from '../test/network-policy.ts';

const READER = 'model-reader@my-project.iam.gserviceaccount.com';

describe('settingsFrom', () => {
  it('defaults to the local image, no namespace and the gke profile', () => {
    expect(settingsFrom({})).toEqual({ image: 'anomaly-serve:dev', namespace: undefined, profile: 'gke' });
    expect(settingsFrom({ IMAGE: 'europe-docker.pkg.dev/p/r/anomaly-serve:1a2b3c4', NAMESPACE: 'ml', PROFILE: 'minikube' })).toEqual({
      image: 'europe-docker.pkg.dev/p/r/anomaly-serve:1a2b3c4',
      namespace: 'ml',
      profile: 'minikube',
    });
  });

  it('takes a model in Cloud Storage and its reader; empty (an unset Cloud Build substitution) is unset', () => {
    expect(settingsFrom({ MODEL_URI: 'gs://models/heartbeats/v1', MODEL_SERVICE_ACCOUNT: READER })).toMatchObject({ modelUri: 'gs://models/heartbeats/v1', modelServiceAccount: READER });
    expect(settingsFrom({ MODEL_URI: '', MODEL_SERVICE_ACCOUNT: '' })).toEqual(settingsFrom({}));
  });

  it('takes the load balancer’s source ranges, separated by spaces or commas, and the internal option; empty is unset', () => {
    expect(settingsFrom({ ALLOWED_SOURCE_RANGES: '203.0.113.0/24 198.51.100.0/24,2001:db8::/32', INTERNAL_LOAD_BALANCER: 'true' })).toMatchObject({
      allowedSourceRanges: ['203.0.113.0/24', '198.51.100.0/24', '2001:db8::/32'],
      internalLoadBalancer: true,
    });
    expect(settingsFrom({ ALLOWED_SOURCE_RANGES: '', INTERNAL_LOAD_BALANCER: '' })).toEqual(settingsFrom({}));
    expect(settingsFrom({ INTERNAL_LOAD_BALANCER: 'false' })).toEqual(settingsFrom({}));
  });

  it('takes the domain of the HTTPS front door; empty is unset; it warns of cleartext without one, on a public load balancer only', () => {
    expect(settingsFrom({ DOMAIN: 'anomalies.example.com' })).toMatchObject({ domain: 'anomalies.example.com' });
    expect(settingsFrom({ DOMAIN: '' })).toEqual(settingsFrom({}));
    expect(cleartextWarning(settingsFrom({}))).toMatch(/^no DOMAIN: .* API keys and beats travel in cleartext\. Set DOMAIN=/);
    expect(cleartextWarning(settingsFrom({ DOMAIN: 'anomalies.example.com' }))).toBeUndefined();
    expect(cleartextWarning(settingsFrom({ INTERNAL_LOAD_BALANCER: 'true' }))).toBeUndefined();
    expect(cleartextWarning(settingsFrom({ PROFILE: 'minikube' }))).toBeUndefined();
  });

  it.each([
    [{ PROFILE: 'minikube', DOMAIN: 'anomalies.example.com' }, /DOMAIN is for PROFILE=gke's Gateway; minikube keeps its NodePort/],
    [{ DOMAIN: 'https://anomalies.example.com/' }, /domain \("https:\/\/anomalies\.example\.com\/"\) must be a host name/],
    [{ ALLOWED_SOURCE_RANGES: '203.0.113.0/24 my-office' }, /allowedSourceRanges: "my-office" is not a CIDR block/],
    [{ INTERNAL_LOAD_BALANCER: 'yes' }, /INTERNAL_LOAD_BALANCER="yes" must be true or false/],
    [{ PROFILE: 'minikube', ALLOWED_SOURCE_RANGES: '10.0.0.0/8' }, /ALLOWED_SOURCE_RANGES and INTERNAL_LOAD_BALANCER are for PROFILE=gke's load balancer, not minikube's NodePort/],
    [{ IMAGE: 'Anomaly Serve' }, /IMAGE="Anomaly Serve" is not an image reference/],
    [{ NAMESPACE: 'ML_team' }, /NAMESPACE="ML_team" is not a Kubernetes namespace name/],
    [{ PROFILE: 'kind' }, /PROFILE="kind" must be one of gke, minikube/],
    [{ IMAGE: '' }, /IMAGE="" is empty: give it a value, or unset it for the default/],
    [{ NAMESPACE: '' }, /NAMESPACE="" is empty/],
    [{ PROFILE: ' ' }, /PROFILE=" " is empty/],
    [{ MODEL_URI: 'https://storage.googleapis.com/m', MODEL_SERVICE_ACCOUNT: READER }, /modelUri \(https:\/\/storage.googleapis.com\/m\) must be a Cloud Storage folder/],
    [{ MODEL_URI: 'gs://models/heartbeats' }, /MODEL_SERVICE_ACCOUNT goes with MODEL_URI or CANARY_MODEL_URI/],
    [{ MODEL_SERVICE_ACCOUNT: READER }, /MODEL_SERVICE_ACCOUNT goes with MODEL_URI or CANARY_MODEL_URI/],
    [{ MODEL_URI: 'gs://models/heartbeats', MODEL_SERVICE_ACCOUNT: 'model-reader' }, /gcpServiceAccount \("model-reader"\) is not a Google service account/],
  ])('rejects %j, naming the variable (or the prop it sets) and the value', (env, message) => {
    expect(() => appsFrom(env)).toThrow(message);
  });
});

describe('npm run synth', () => {
  let project: string;
  const run = promisify(execFile);
  const synth = (env: Record<string, string> = {}) =>
    run('npm', ['run', '--silent', 'synth'], { cwd: project, env: { ...process.env, ...env } }).then(
      ({ stderr }) => stderr,
      (error: { code: number; stderr: string }) => {
        throw Object.assign(new Error(error.stderr), { code: error.code });
      },
    );

  beforeAll(async () => {
    // A copy of the project's charts, so that synthesizing never touches the committed dist/.
    project = await mkdtemp(path.join(tmpdir(), 'synth-'));
    for (const entry of ['package.json', 'cdk8s.yaml', 'tsconfig.json', 'lib', 'app', 'charts', 'model', 'loadtest']) await cp(entry, path.join(project, entry), { recursive: true });
    await symlink(path.resolve('node_modules'), path.join(project, 'node_modules'));
  });
  afterAll(() => rm(project, { recursive: true, force: true }));

  it('writes, with the defaults, exactly the committed dist/: the service, and the load test in a folder of its own', async () => {
    await synth();
    for (const file of ['dist/anomaly-serve.k8s.yaml', 'dist/load-test/load-test.k8s.yaml']) {
      expect(await readFile(path.join(project, file), 'utf8')).toBe(await readFile(file, 'utf8'));
    }
  });

  it('writes dist/anomaly-serve.k8s.yaml with the image and namespace asked for, every object valid', async () => {
    await synth({ IMAGE: 'registry.example/anomaly-serve:abc', NAMESPACE: 'ml' });
    const manifests = parseAllDocuments(await readFile(path.join(project, 'dist/anomaly-serve.k8s.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
    expect(manifestProblems(manifests)).toEqual([]);
    expect(manifests[0]).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ml' }, spec: {} });
    expect(manifests.slice(1).every((m) => m.metadata.namespace === 'ml')).toBe(true);
    expect(JSON.stringify(manifests)).toContain('"image":"registry.example/anomaly-serve:abc"');
  });

  it('with MODEL_URI and MODEL_SERVICE_ACCOUNT, serves that model: an init container copies it, as the service account', async () => {
    await synth({ MODEL_URI: 'gs://models/heartbeats/v1', MODEL_SERVICE_ACCOUNT: READER });
    const manifests = parseAllDocuments(await readFile(path.join(project, 'dist/anomaly-serve.k8s.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
    expect(manifestProblems(manifests)).toEqual([]);
    const account = manifests.find((m) => m.kind === 'ServiceAccount')!;
    expect(account.metadata).toMatchObject({ name: 'anomaly-serve', annotations: { 'iam.gke.io/gcp-service-account': READER } });
    const pod = (manifests.find((m) => m.kind === 'Deployment') as unknown as { spec: { template: { spec: { serviceAccountName: string; initContainers: { command: string[] }[] } } } }).spec.template.spec;
    expect(pod.serviceAccountName).toBe('anomaly-serve');
    expect(pod.initContainers[0]!.command).toContain('gs://models/heartbeats/v1/*');
  });

  it('with ALLOWED_SOURCE_RANGES and INTERNAL_LOAD_BALANCER: an internal load balancer admitting those ranges, in the Service and the NetworkPolicy', async () => {
    await synth({ ALLOWED_SOURCE_RANGES: '10.20.0.0/16 10.30.0.0/16', INTERNAL_LOAD_BALANCER: 'true' });
    const manifests = parseAllDocuments(await readFile(path.join(project, 'dist/anomaly-serve.k8s.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
    expect(manifestProblems(manifests)).toEqual([]);
    const service = manifests.find((m) => m.kind === 'Service') as unknown as { metadata: { annotations: Record<string, string> }; spec: { loadBalancerSourceRanges: string[] } };
    expect(service.spec.loadBalancerSourceRanges).toEqual(['10.20.0.0/16', '10.30.0.0/16']);
    expect(service.metadata.annotations).toEqual({ 'networking.gke.io/load-balancer-type': 'Internal' });
    const server = { namespace: 'default', labels: (manifests.find((m) => m.kind === 'Deployment') as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels };
    expect(connects(manifests, { ip: '10.30.4.5' }, server, 8080)).toBe(true);
    expect(connects(manifests, { ip: '10.40.4.5' }, server, 8080)).toBe(false);
  });

  it('with DOMAIN: the HTTPS Gateway and a ClusterIP Service, and no warning; without, the warning that keys travel in cleartext', async () => {
    expect(await synth()).toMatch(/cdk8s synth: warning: no DOMAIN: .* cleartext/);
    expect(await synth({ DOMAIN: 'anomalies.example.com' })).not.toMatch(/warning/);
    const manifests = parseAllDocuments(await readFile(path.join(project, 'dist/anomaly-serve.k8s.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
    expect(manifestProblems(manifests)).toEqual([]);
    expect(manifests.filter((m) => m.kind === 'Service').map((m) => (m as unknown as { spec: { type: string } }).spec.type)).toEqual(['ClusterIP']);
    expect(manifests.map((m) => m.kind)).toEqual(expect.arrayContaining(['Gateway', 'HTTPRoute', 'HealthCheckPolicy', 'GCPBackendPolicy']));
  });

  it('stops on a bad setting with a message, leaving dist/ as it was', async () => {
    const before = await readFile(path.join(project, 'dist/anomaly-serve.k8s.yaml'), 'utf8');
    const error = await synth({ PROFILE: 'kind' }).catch((e: Error & { code: number }) => e);
    expect((error as Error & { code: number }).code).not.toBe(0);
    expect((error as Error).message).toMatch(/cdk8s synth: PROFILE="kind" must be one of gke, minikube/);
    expect(await readFile(path.join(project, 'dist/anomaly-serve.k8s.yaml'), 'utf8')).toBe(before);
  });
});

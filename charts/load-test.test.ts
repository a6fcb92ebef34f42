import { readFileSync } from 'node:fs';
import { Chart, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { LoadTest, type LoadTestProps } from './load-test.ts';
import { AnomalyServeChart, LoadTestChart } from './main.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk synthesized YAML */
type Any = any;

function synth(props: Partial<LoadTestProps> = {}): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { disableResourceNameHashes: true });
  new LoadTest(chart, 'LoadTest', { host: 'http://anomaly-serve', ...props });
  return Testing.synth(chart) as Manifest[];
}

const byName = (manifests: Manifest[], kind: string, name: string): Any => manifests.find((m) => m.kind === kind && m.metadata.name === name);

describe('LoadTest', () => {
  const manifests = synth();

  it('validates against the Kubernetes schemas, with no unknown fields', () => {
    expect(manifests.map((m) => `${m.kind} ${m.metadata.name}`)).toEqual([
      'ConfigMap load-test',
      'Deployment load-test-master',
      'Service load-test-master',
      'Deployment load-test-worker',
    ]);
    expect(manifestProblems(manifests)).toEqual([]);
  });

  it('ships the project’s locustfile, and nothing of the model: the locustfile asks the server', () => {
    expect(byName(manifests, 'ConfigMap', 'load-test').data).toEqual({ 'locustfile.py': readFileSync('loadtest/locustfile.py', 'utf8') });
  });

  it('runs a master with its web UI on a ClusterIP Service, and workers that find it', () => {
    const master = byName(manifests, 'Deployment', 'load-test-master').spec;
    expect(master.replicas).toBe(1);
    const [container] = master.template.spec.containers;
    expect(container.args).toEqual(['-f', '/mnt/locust/locustfile.py', '--master', '--host', 'http://anomaly-serve']);
    const service = byName(manifests, 'Service', 'load-test-master').spec;
    expect(service.type).toBe('ClusterIP');
    expect(service.ports.map((p: Any) => [p.name, p.port])).toEqual([
      ['web', 8089],
      ['master', 5557],
    ]);
    expect(master.template.metadata.labels).toMatchObject(service.selector);
    expect(service.selector).toEqual(master.selector.matchLabels);
    const workers = byName(manifests, 'Deployment', 'load-test-worker').spec;
    expect(workers.replicas).toBe(2);
    expect(workers.template.spec.containers[0].args).toEqual(['-f', '/mnt/locust/locustfile.py', '--worker', '--master-host', 'load-test-master']);
  });

  it('runs locked down, with requests on every container', () => {
    for (const deployment of manifests.filter((m) => m.kind === 'Deployment') as Any[]) {
      const spec = deployment.spec.template.spec;
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const container of spec.containers) {
        expect(container.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
        expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      }
    }
  });

  it('sets the ramp-up, plateau and ramp-down on the master when given a shape, and the worker count', () => {
    const shaped = synth({ shape: { peakUsers: 500, plateauSeconds: 600 }, workers: 5 });
    const env = Object.fromEntries(byName(shaped, 'Deployment', 'load-test-master').spec.template.spec.containers[0].env.map((e: Any) => [e.name, e.value]));
    expect(env).toMatchObject({ LOAD_SHAPE: 'ramp', PEAK_USERS: '500', RAMP_UP_SECONDS: '120', PLATEAU_SECONDS: '600', RAMP_DOWN_SECONDS: '120' });
    expect(byName(shaped, 'Deployment', 'load-test-worker').spec.replicas).toBe(5);
    expect(byName(manifests, 'Deployment', 'load-test-master').spec.template.spec.containers[0].env.map((e: Any) => e.name)).not.toContain('LOAD_SHAPE');
  });

  it.each<[string, Partial<LoadTestProps>, RegExp]>([
    ['no workers', { workers: 0 }, /workers \(0\) must be a whole number of at least 1/],
    ['a host that is not a URL', { host: 'anomaly-serve' }, /host \(anomaly-serve\) must be an http:\/\/ or https:\/\/ URL/],
    ['a shape of zero users', { shape: { peakUsers: 0 } }, /shape\.peakUsers \(0\) must be a whole number of at least 1/],
  ])('rejects %s, naming the props', (_, props, message) => {
    expect(() => synth(props)).toThrow(message);
  });

  it('points the chart’s load test at the AnomalyDetector’s Service, its workers reading the key from the server’s own Secret', () => {
    const app = Testing.app();
    const settings = { image: 'anomaly-serve:dev', profile: 'gke' as const };
    const service = new AnomalyServeChart(app, settings);
    const manifests = Testing.synth(new LoadTestChart(app, settings, service.detector)) as Manifest[];
    expect(manifestProblems(manifests)).toEqual([]);
    const args = byName(manifests, 'Deployment', 'load-test-master').spec.template.spec.containers[0].args;
    expect(args.at(-1)).toBe(`http://${service.detector.service.name}`);

    const serverPod = (Testing.synth(service) as Any[]).find((m) => m.kind === 'Deployment').spec.template.spec;
    const serverSecret = serverPod.volumes.find((v: Any) => v.secret).secret.secretName;
    const workers = byName(manifests, 'Deployment', 'load-test-worker').spec.template.spec;
    const [worker] = workers.containers;
    const volume = workers.volumes.find((v: Any) => v.secret);
    expect(volume.secret).toMatchObject({ secretName: serverSecret, items: [{ key: 'keys', path: 'keys' }] });
    expect(worker.volumeMounts).toContainEqual({ mountPath: '/etc/anomaly-serve/api-keys', name: volume.name, readOnly: true });
    expect(worker.env).toContainEqual({ name: 'API_KEYS_FILE', value: '/etc/anomaly-serve/api-keys/keys' });
    // The files are the group's to read (mode 0440): the group must be the user's.
    expect(volume.secret.defaultMode).toBe(0o440);
    expect(workers.securityContext.fsGroup).toBe(worker.securityContext.runAsUser);
    // The master sends nothing: it has no key.
    const master = byName(manifests, 'Deployment', 'load-test-master').spec.template.spec;
    expect(master.volumes.some((v: Any) => v.secret)).toBe(false);
    expect(master.containers[0].env.map((e: Any) => e.name)).not.toContain('API_KEYS_FILE');
  });
});

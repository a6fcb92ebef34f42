import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { manifestProblems, type Manifest } from './manifest-validation.ts';

/** Parsed YAML, which the tests reach into to break one field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Parsed = any;

/** The committed, synthesized manifests: each test breaks one of them. */
const synthesized = () => parseAllDocuments(readFileSync('dist/anomaly-serve.k8s.yaml', 'utf8')).map((d) => d.toJS() as Manifest & { spec: Parsed });
const byKind = (kind: string) => {
  const manifests = synthesized();
  return { manifests, manifest: manifests.find((m) => m.kind === kind)! };
};

describe('manifestProblems', () => {
  it('finds nothing wrong with the synthesized manifests', () => {
    expect(manifestProblems(synthesized())).toEqual([]);
  });

  it('names an unknown field of a core kind by its path, as an API server would reject it', () => {
    const { manifests, manifest } = byKind('Deployment');
    manifest.spec.template.spec.containers[0].imagePullPolice = 'Always';
    manifest.spec.strategy.rollingUpdate.maxSurges = 1;
    expect(manifestProblems(manifests)).toEqual([
      'Deployment anomaly-serve: unknown field .spec.strategy.rollingUpdate.maxSurges',
      'Deployment anomaly-serve: unknown field .spec.template.spec.containers[0].imagePullPolice',
    ]);
  });

  it('names a value of the wrong type or form', () => {
    const { manifests, manifest } = byKind('HorizontalPodAutoscaler');
    manifest.spec.minReplicas = 'two';
    const problems = manifestProblems(manifests);
    expect(problems).toContain('HorizontalPodAutoscaler anomaly-serve: data/spec/minReplicas must be integer');
    expect(problems).toContainEqual(expect.stringMatching(/^HorizontalPodAutoscaler anomaly-serve: \.spec\.minReplicas: Type 'string' is not assignable to type 'number/));
  });

  it('checks a ServiceMonitor against @kubernetes-models/prometheus-operator, unknown fields included', () => {
    const serviceMonitor = {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'web' },
      spec: { selector: { matchLabels: { app: 'web' } }, endpoints: [{ port: 'http', interval: '30s', scrapeEvery: '30s' }] },
    };
    expect(manifestProblems([serviceMonitor])).toEqual(['ServiceMonitor web: unknown field .spec.endpoints[0].scrapeEvery']);
    serviceMonitor.spec.endpoints[0] = { port: 'http', interval: 'often' } as never;
    expect(manifestProblems([serviceMonitor])).toEqual([expect.stringMatching(/^ServiceMonitor web: data\/spec\/endpoints\/0\/interval must match pattern/)]);
  });

  it('checks the VerticalPodAutoscaler and PodMonitoring against their CRDs in schemas/, closed to unknown fields', () => {
    const manifests = synthesized();
    const vpa = manifests.find((m) => m.kind === 'VerticalPodAutoscaler')!;
    const podMonitoring = manifests.find((m) => m.kind === 'PodMonitoring')!;
    vpa.spec.updatePolicy.updateMode = 'Sometimes';
    vpa.spec.updatePolicy.mode = 'Off';
    podMonitoring.spec.endpoints[0].interval = 'often';
    expect(manifestProblems(manifests)).toEqual([
      'VerticalPodAutoscaler anomaly-serve: /spec/updatePolicy must NOT have additional properties: mode',
      'VerticalPodAutoscaler anomaly-serve: /spec/updatePolicy/updateMode must be equal to one of the allowed values',
      'PodMonitoring anomaly-serve: /spec/endpoints/0/interval must match format "duration"',
    ]);
  });

  it('says when it has no schema for a kind', () => {
    expect(manifestProblems([{ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }])).toEqual(['Widget w: no schema for example.com/v1/Widget']);
  });
});

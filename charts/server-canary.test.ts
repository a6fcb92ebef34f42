import { Chart, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../app/settings.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';
import { connects } from '../test/network-policy.ts';
import { AnomalyDetector, type AnomalyDetectorProps } from './anomaly-detector.ts';
import { appsFrom, settingsFrom } from './main.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk synthesized YAML */
type Any = any;

const READER = 'model-reader@my-project.iam.gserviceaccount.com';
const CANARY = { modelUri: 'gs://models/heartbeats/v2', weight: 10 };
const withCanary = { domain: 'anomalies.example.com', gcpServiceAccount: READER, canary: CANARY };

function synthWith(props: Partial<AnomalyDetectorProps>): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { disableResourceNameHashes: true, namespace: 'ml' });
  new AnomalyDetector(chart, 'AnomalyDetector', { image: 'anomaly-serve:test', ...props });
  return Testing.synth(chart) as Manifest[];
}
const named = (manifests: Manifest[], kind: string, name: string) => manifests.find((m) => m.kind === kind && m.metadata.name === name) as Any;

describe('a canary', () => {
  const manifests = synthWith(withCanary);

  it('is served beside the stable model: a Deployment, Service, autoscaler, NetworkPolicy and scrape job of its own, all valid', () => {
    expect(manifestProblems(manifests)).toEqual([]);
    for (const kind of ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'NetworkPolicy', 'PodMonitoring', 'ConfigMap']) {
      expect(named(manifests, kind, kind === 'ConfigMap' ? 'anomaly-serve-canary-config' : 'anomaly-serve-canary'), kind).toBeDefined();
    }
    expect(named(manifests, 'Service', 'anomaly-serve-canary').spec.type).toBe('ClusterIP');
    expect(named(manifests, 'HorizontalPodAutoscaler', 'anomaly-serve-canary').spec.minReplicas).toBe(1);
    // No second set of alert rules, PodDisruptionBudget or VPA.
    expect(manifests.filter((m) => ['Rules', 'PodDisruptionBudget', 'VerticalPodAutoscaler'].includes(m.kind)).map((m) => m.metadata.name)).toEqual(['anomaly-serve', 'anomaly-serve', 'anomaly-serve']);
  });

  it('splits the requests by the HTTPRoute\'s weights, and health-checks both Services', () => {
    const route = named(manifests, 'HTTPRoute', 'anomaly-serve');
    expect(route.spec.rules).toEqual([
      {
        backendRefs: [
          { name: 'anomaly-serve', port: 80, weight: 90 },
          { name: 'anomaly-serve-canary', port: 80, weight: 10 },
        ],
      },
    ]);
    for (const kind of ['HealthCheckPolicy', 'GCPBackendPolicy']) {
      expect(manifests.filter((m) => m.kind === kind).map((m) => (m as Any).spec.targetRef.name)).toEqual(['anomaly-serve', 'anomaly-serve-canary']);
    }
  });

  it('copies in its own model, served under the stable model\'s name, from pods the stable Service never selects', () => {
    const canary = named(manifests, 'Deployment', 'anomaly-serve-canary');
    const stable = named(manifests, 'Deployment', 'anomaly-serve');
    expect(canary.spec.template.spec.initContainers[0].command).toContain('gs://models/heartbeats/v2/*');
    expect(named(manifests, 'ConfigMap', 'anomaly-serve-canary-config').data).toMatchObject({ MODEL_PATH: '/models', MODEL_NAME: named(manifests, 'ConfigMap', 'anomaly-serve-config').data.MODEL_NAME });
    const stableSelector = named(manifests, 'Service', 'anomaly-serve').spec.selector;
    const canaryPodLabels = canary.spec.template.metadata.labels;
    expect(Object.entries(stableSelector).every(([key, value]) => canaryPodLabels[key] === value)).toBe(false);
    expect(Object.entries(named(manifests, 'Service', 'anomaly-serve-canary').spec.selector).every(([key, value]) => canaryPodLabels[key] === value)).toBe(true);
    expect(stable.spec.template.metadata.labels['app.kubernetes.io/instance']).toBe('anomaly-serve');
  });

  it('admits Google\'s load balancers to the canary\'s pods, and lets them read Cloud Storage', () => {
    const pod = { namespace: 'ml', labels: named(manifests, 'Deployment', 'anomaly-serve-canary').spec.template.metadata.labels };
    expect(connects(manifests, { ip: '35.191.3.4' }, pod, DEFAULTS.port)).toBe(true);
    expect(connects(manifests, { ip: '198.51.100.7' }, pod, DEFAULTS.port)).toBe(false);
    expect(connects(manifests, pod, { ip: '142.250.1.1' }, 443)).toBe(true);
  });

  it.each([
    [{ canary: CANARY, gcpServiceAccount: READER }, /canary needs domain/],
    [{ canary: CANARY, domain: 'anomalies.example.com' }, /canary needs gcpServiceAccount/],
    [{ ...withCanary, canary: { ...CANARY, weight: 101 } }, /ServerCanary: canary\.weight \(101\) must be a whole percentage from 0 to 100/],
    [{ ...withCanary, canary: { ...CANARY, modelUri: 'models/v2' } }, /canary\.modelUri \(models\/v2\) must be a Cloud Storage folder/],
  ])('refuses %j, naming the props', (props, message) => {
    expect(() => synthWith(props as Partial<AnomalyDetectorProps>)).toThrow(message);
  });
});

describe('npm run synth with a canary', () => {
  it('takes CANARY_MODEL_URI and CANARY_WEIGHT together, beside DOMAIN and MODEL_SERVICE_ACCOUNT', () => {
    const env = { DOMAIN: 'anomalies.example.com', MODEL_SERVICE_ACCOUNT: READER, CANARY_MODEL_URI: CANARY.modelUri, CANARY_WEIGHT: '10' };
    expect(settingsFrom(env).canary).toEqual(CANARY);
    expect(settingsFrom({ CANARY_MODEL_URI: '', CANARY_WEIGHT: '' })).toEqual(settingsFrom({}));
    expect(() => appsFrom(env)).not.toThrow();
  });

  it.each([
    [{ CANARY_MODEL_URI: CANARY.modelUri, MODEL_SERVICE_ACCOUNT: READER, DOMAIN: 'anomalies.example.com' }, /CANARY_MODEL_URI and CANARY_WEIGHT go together/],
    [{ CANARY_MODEL_URI: CANARY.modelUri, CANARY_WEIGHT: '10%', MODEL_SERVICE_ACCOUNT: READER }, /CANARY_WEIGHT="10%" must be a whole percentage/],
    [{ CANARY_MODEL_URI: CANARY.modelUri, CANARY_WEIGHT: '10', DOMAIN: 'anomalies.example.com' }, /MODEL_SERVICE_ACCOUNT goes with MODEL_URI or CANARY_MODEL_URI/],
    [{ CANARY_MODEL_URI: CANARY.modelUri, CANARY_WEIGHT: '10', MODEL_SERVICE_ACCOUNT: READER }, /canary needs domain/],
  ])('rejects %j', (env, message) => {
    expect(() => appsFrom(env)).toThrow(message);
  });
});

import { Chart, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../app/settings.ts';
import { AnomalyDetector, type AnomalyDetectorProps } from './anomaly-detector.ts';
import { AnomalyServeChart, LoadTestChart, PROFILES, type Profile } from './main.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';
import { connects, type PodEnd } from '../test/network-policy.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk synthesized YAML */
type Any = any;

const NAMESPACE = 'anomaly-serve';
const { port: SERVING, metricsPort: METRICS } = DEFAULTS;

/** The service and the load test of a profile, in one namespace, as `npm run synth` writes them. */
function synthProfile(profile: Profile): Manifest[] {
  const app = Testing.app();
  const settings = { image: 'anomaly-serve:test', profile, namespace: NAMESPACE };
  const service = new AnomalyServeChart(app, settings);
  return [...Testing.synth(service), ...Testing.synth(new LoadTestChart(app, settings, service.detector))] as Manifest[];
}

function synthWith(props: Partial<AnomalyDetectorProps>): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { disableResourceNameHashes: true, namespace: NAMESPACE });
  new AnomalyDetector(chart, 'AnomalyDetector', { image: 'anomaly-serve:test', ...props });
  return Testing.synth(chart) as Manifest[];
}

/** A pod of a Deployment in the manifests, as the policies see it. */
function podOf(manifests: Manifest[], name: string): PodEnd {
  const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === name) as Any;
  return { namespace: deployment.metadata.namespace, labels: deployment.spec.template.metadata.labels };
}

const server = (manifests: Manifest[]) => podOf(manifests, 'anomaly-serve');
const somewhereOnTheInternet = { ip: '198.51.100.7' };
const podIn = (namespace: string, labels: Record<string, string> = { app: 'anything' }): PodEnd => ({ namespace, labels });

describe.each(PROFILES)('the %s profile’s NetworkPolicy', (profile) => {
  const manifests = synthProfile(profile);

  it('is valid, selects the server pods and isolates them both ways', () => {
    expect(manifestProblems(manifests)).toEqual([]);
    const policies = manifests.filter((m) => m.kind === 'NetworkPolicy') as Any[];
    expect(policies).toHaveLength(1);
    expect(policies[0].spec.podSelector.matchLabels).toEqual((manifests.find((m) => m.kind === 'Deployment') as Any).spec.selector.matchLabels);
    expect(policies[0].spec.policyTypes).toEqual(['Ingress', 'Egress']);
  });

  it('admits clients from anywhere to the serving port, and the in-cluster load test', () => {
    expect(connects(manifests, somewhereOnTheInternet, server(manifests), SERVING)).toBe(true);
    expect(connects(manifests, podOf(manifests, 'load-test-worker'), server(manifests), SERVING)).toBe(true);
  });

  it('admits to the metrics port only the monitoring’s namespace (none on minikube, which has no monitoring)', () => {
    expect(connects(manifests, podIn('gmp-system'), server(manifests), METRICS)).toBe(profile === 'gke');
    for (const source of [somewhereOnTheInternet, podOf(manifests, 'load-test-worker'), podIn(NAMESPACE), podIn('default')]) {
      expect(connects(manifests, source, server(manifests), METRICS)).toBe(false);
    }
  });

  it('admits nothing to any other port', () => {
    for (const port of [22, 80, 5557, 8081, 9090]) expect(connects(manifests, podIn(NAMESPACE), server(manifests), port)).toBe(false);
  });

  it('lets the server out to DNS only: no Google API, no other pod, no address outside', () => {
    expect(connects(manifests, server(manifests), podIn('kube-system', { 'k8s-app': 'kube-dns' }), 53, 'UDP')).toBe(true);
    expect(connects(manifests, server(manifests), podIn('kube-system', { 'k8s-app': 'kube-dns' }), 53, 'TCP')).toBe(true);
    expect(connects(manifests, server(manifests), { ip: '142.250.185.106' }, 443)).toBe(false);
    expect(connects(manifests, server(manifests), podOf(manifests, 'load-test-master'), 8089)).toBe(false);
  });
});

describe('the NetworkPolicy’s options', () => {
  it('with allowedSourceRanges: only those addresses (and the load test) reach the serving port, and the Service keeps client addresses', () => {
    const manifests = synthWith({ allowedSourceRanges: ['203.0.113.0/24', '2001:db8::/32'] });
    expect(manifestProblems(manifests)).toEqual([]);
    const pod = server(manifests);
    expect(connects(manifests, { ip: '203.0.113.5' }, pod, SERVING)).toBe(true);
    expect(connects(manifests, { ip: '2001:db8::1' }, pod, SERVING)).toBe(true);
    expect(connects(manifests, somewhereOnTheInternet, pod, SERVING)).toBe(false);
    expect(connects(manifests, podIn(NAMESPACE, { 'app.kubernetes.io/name': 'locust', 'app.kubernetes.io/component': 'worker' }), pod, SERVING)).toBe(true);
    expect(connects(manifests, podIn(NAMESPACE), pod, SERVING)).toBe(false);
    expect(connects(manifests, podIn('other', { 'app.kubernetes.io/name': 'locust' }), pod, SERVING)).toBe(false);
    // A node forwarding from its own address would be refused: Local keeps the client's.
    expect((manifests.find((m) => m.kind === 'Service') as Any).spec.externalTrafficPolicy).toBe('Local');
  });

  it('with modelUri: HTTPS to public addresses and the metadata server as well (Cloud Storage, Workload Identity), never to private ones', () => {
    const manifests = synthWith({ modelUri: 'gs://models/ecg', gcpServiceAccount: 'reader@project.iam.gserviceaccount.com' });
    expect(manifestProblems(manifests)).toEqual([]);
    const pod = server(manifests);
    expect(connects(manifests, pod, { ip: '142.250.185.106' }, 443)).toBe(true);
    expect(connects(manifests, pod, { ip: '169.254.169.254' }, 80)).toBe(true);
    expect(connects(manifests, pod, { ip: '2607:f8b0:4004:c1b::5f' }, 443)).toBe(true);
    expect(connects(manifests, pod, { ip: '10.8.0.12' }, 443)).toBe(false);
    expect(connects(manifests, pod, { ip: 'fd12:3456::8' }, 443)).toBe(false);
    expect(connects(manifests, pod, { ip: '142.250.185.106' }, 80)).toBe(false);
  });

  it('with the Prometheus Operator: the Prometheus’ namespace, from its address or given', () => {
    const fromAddress = synthWith({ monitoring: 'prometheus-operator', autoscaling: { prometheusAddress: 'http://prometheus-operated.observability.svc:9090' } });
    expect(connects(fromAddress, podIn('observability'), server(fromAddress), METRICS)).toBe(true);
    expect(connects(fromAddress, podIn('gmp-system'), server(fromAddress), METRICS)).toBe(false);
    const defaulted = synthWith({ monitoring: 'prometheus-operator' });
    expect(connects(defaulted, podIn('monitoring'), server(defaulted), METRICS)).toBe(true);
    const given = synthWith({ monitoring: 'prometheus-operator', monitoringNamespace: 'prom' });
    expect(connects(given, podIn('prom'), server(given), METRICS)).toBe(true);
  });

  it('networkPolicy false: no policy, the pods are open', () => {
    const manifests = synthWith({ networkPolicy: false, allowedSourceRanges: ['203.0.113.0/24'] });
    expect(manifests.map((m) => m.kind)).not.toContain('NetworkPolicy');
    expect(connects(manifests, podIn('default'), server(manifests), METRICS)).toBe(true);
    expect((manifests.find((m) => m.kind === 'Service') as Any).spec).not.toHaveProperty('externalTrafficPolicy');
  });

  it.each<[string, Partial<AnomalyDetectorProps>, RegExp]>([
    ['a monitoring namespace without monitoring', { monitoring: 'none', monitoringNamespace: 'monitoring' }, /monitoringNamespace needs monitoring gmp or prometheus-operator/],
    ['a monitoring namespace that is not a name', { monitoringNamespace: 'Monitoring!' }, /monitoringNamespace \("Monitoring!"\) must be a namespace's name/],
  ])('rejects %s, naming the props', (_, props, message) => {
    expect(() => synthWith(props)).toThrow(message);
  });
});

import { Chart, Testing } from 'cdk8s';
import { ServiceType } from 'cdk8s-plus-27';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../app/settings.ts';
import { PATHS } from '../app/contract.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';
import { connects } from '../test/network-policy.ts';
import { AnomalyDetector, type AnomalyDetectorProps } from './anomaly-detector.ts';
import { GOOGLE_LOAD_BALANCER_RANGES } from './server-gateway.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk synthesized YAML */
type Any = any;

const NAMESPACE = 'ml';
const DOMAIN = 'anomalies.example.com';

function synthWith(props: Partial<AnomalyDetectorProps>): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { disableResourceNameHashes: true, namespace: NAMESPACE });
  new AnomalyDetector(chart, 'AnomalyDetector', { image: 'anomaly-serve:test', ...props });
  return Testing.synth(chart) as Manifest[];
}
const all = (manifests: Manifest[], kind: string) => manifests.filter((m) => m.kind === kind) as Any[];
const one = (manifests: Manifest[], kind: string, name = 'anomaly-serve') => all(manifests, kind).find((m) => m.metadata.name === name);

describe('the HTTPS front door (domain)', () => {
  const manifests = synthWith({ domain: DOMAIN });
  const serverPod = () => {
    const deployment = one(manifests, 'Deployment');
    return { namespace: NAMESPACE, labels: deployment.spec.template.metadata.labels };
  };

  it('is valid against the Gateway API\'s and GKE\'s published schemas, unknown fields included', () => {
    expect(manifests.map((m) => m.kind)).toEqual(expect.arrayContaining(['Gateway', 'HTTPRoute', 'HealthCheckPolicy', 'GCPBackendPolicy']));
    expect(manifestProblems(manifests)).toEqual([]);
    // The validation would catch a field the schemas do not have.
    const gateway = one(manifests, 'Gateway');
    expect(manifestProblems([{ ...gateway, spec: { ...gateway.spec, tls: {} } }]).join()).toMatch(/unknown field|additional properties.*tls/i);
    const policy = one(manifests, 'GCPBackendPolicy');
    expect(manifestProblems([{ ...policy, spec: { ...policy.spec, default: { timeout: 30 } } }])).not.toEqual([]);
  });

  it('terminates HTTPS with the certificate map\'s certificate on a managed Gateway, and redirects HTTP to HTTPS', () => {
    const gateway = one(manifests, 'Gateway');
    expect(gateway.metadata.annotations).toEqual({ 'networking.gke.io/certmap': 'anomaly-serve-certmap' });
    expect(gateway.spec).toEqual({
      gatewayClassName: 'gke-l7-global-external-managed',
      listeners: [
        { name: 'https', protocol: 'HTTPS', port: 443, hostname: DOMAIN },
        { name: 'http', protocol: 'HTTP', port: 80, hostname: DOMAIN },
      ],
    });
    const service = one(manifests, 'Service');
    expect(one(manifests, 'HTTPRoute').spec).toEqual({
      parentRefs: [{ name: 'anomaly-serve', sectionName: 'https' }],
      hostnames: [DOMAIN],
      rules: [{ backendRefs: [{ name: service.metadata.name, port: service.spec.ports[0].port }] }],
    });
    expect(one(manifests, 'HTTPRoute', 'anomaly-serve-https-redirect').spec).toEqual({
      parentRefs: [{ name: 'anomaly-serve', sectionName: 'http' }],
      hostnames: [DOMAIN],
      rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }],
    });
  });

  it('health-checks the readiness path on the pods\' serving port, and sets the backend\'s timeout', () => {
    const targetRef = { group: '', kind: 'Service', name: 'anomaly-serve' };
    expect(one(manifests, 'HealthCheckPolicy').spec).toEqual({
      default: { config: { type: 'HTTP', httpHealthCheck: { port: DEFAULTS.port, requestPath: PATHS.ready } } },
      targetRef,
    });
    expect(one(manifests, 'GCPBackendPolicy').spec).toEqual({ default: { timeoutSec: 30 }, targetRef });
  });

  it('leaves no public layer-4 load balancer: the Service is ClusterIP, and nothing else is a LoadBalancer', () => {
    expect(all(manifests, 'Service').map((s) => s.spec.type)).toEqual(['ClusterIP']);
    expect(manifests.some((m) => (m as Any).spec?.type === 'LoadBalancer')).toBe(false);
  });

  it('admits to the serving port Google\'s proxies and health checks and the in-cluster load test, and nobody else', () => {
    for (const range of GOOGLE_LOAD_BALANCER_RANGES) {
      const inside = range.replace(/\.0\/\d+$/, '.9');
      expect(connects(manifests, { ip: inside }, serverPod(), DEFAULTS.port)).toBe(true);
    }
    expect(connects(manifests, { ip: '198.51.100.7' }, serverPod(), DEFAULTS.port)).toBe(false);
    expect(connects(manifests, { ip: '35.190.255.1' }, serverPod(), DEFAULTS.port)).toBe(false);
    expect(connects(manifests, { ip: '35.191.0.9' }, serverPod(), DEFAULTS.metricsPort)).toBe(false);
  });

  it('takes a certificate map, a class, a static address, a timeout and a Cloud Armor policy', () => {
    const tuned = synthWith({
      domain: DOMAIN,
      certificateMap: 'prod-certs',
      gatewayClass: 'gke-l7-regional-external-managed',
      staticAddress: 'anomaly-serve-ip',
      backendTimeoutSeconds: 10,
      cloudArmorPolicy: 'block-bots',
    });
    expect(manifestProblems(tuned)).toEqual([]);
    const gateway = one(tuned, 'Gateway');
    expect(gateway.metadata.annotations['networking.gke.io/certmap']).toBe('prod-certs');
    expect(gateway.spec.gatewayClassName).toBe('gke-l7-regional-external-managed');
    expect(gateway.spec.addresses).toEqual([{ type: 'NamedAddress', value: 'anomaly-serve-ip' }]);
    expect(one(tuned, 'GCPBackendPolicy').spec.default).toEqual({ timeoutSec: 10, securityPolicy: 'block-bots' });
  });

  it.each([
    [{ domain: 'https://anomalies.example.com' }, /ServerGateway: domain \("https:\/\/anomalies\.example\.com"\) must be a host name/],
    [{ domain: '*.example.com' }, /must be a host name/],
    [{ domain: DOMAIN, serviceType: ServiceType.LOAD_BALANCER }, /AnomalyDetector: domain puts a Gateway in front: serviceType must be CLUSTER_IP/],
    [{ domain: DOMAIN, allowedSourceRanges: ['203.0.113.0/24'] }, /filter clients with cloudArmorPolicy/],
    [{ cloudArmorPolicy: 'block-bots' }, /AnomalyDetector: cloudArmorPolicy configures the Gateway, which needs domain/],
    [{ domain: DOMAIN, backendTimeoutSeconds: 0 }, /backendTimeoutSeconds \(0\) must be a whole number of seconds from 1/],
    [{ domain: DOMAIN, certificateMap: 'Prod_Certs' }, /certificateMap \("Prod_Certs"\) must be a Google Cloud resource name/],
  ])('refuses %j, naming the props', (props, message) => {
    expect(() => synthWith(props as Partial<AnomalyDetectorProps>)).toThrow(message);
  });
});

describe('without a domain', () => {
  it('keeps the layer-4 load balancer, and makes no Gateway', () => {
    const manifests = synthWith({});
    expect(all(manifests, 'Service').map((s) => s.spec.type)).toEqual(['LoadBalancer']);
    expect(all(manifests, 'Gateway')).toEqual([]);
  });
});

import { Chart, Testing } from 'cdk8s';
import { ServiceType } from 'cdk8s-plus-27';
import { describe, expect, it } from 'vitest';
import { CONTAINER_USER, PATHS } from '../app/contract.ts';
import { DEFAULTS } from '../app/settings.ts';
import { AnomalyDetector, type AnomalyDetectorProps } from './anomaly-detector.ts';
import { AnomalyServeChart, type Profile } from './main.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk synthesized YAML */
type Any = any;

function synthProfile(profile: Profile): Manifest[] {
  return Testing.synth(new AnomalyServeChart(Testing.app(), { image: 'registry.example/anomaly-serve:abc123', profile })) as Manifest[];
}

function synthWith(props: Partial<AnomalyDetectorProps>): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { disableResourceNameHashes: true });
  new AnomalyDetector(chart, 'AnomalyDetector', { image: 'anomaly-serve:test', ...props });
  return Testing.synth(chart) as Manifest[];
}

const find = (manifests: Manifest[], kind: string): Any => manifests.find((m) => m.kind === kind);
const podSpec = (manifests: Manifest[]): Any => find(manifests, 'Deployment').spec.template.spec;
const allContainers = (manifests: Manifest[]): Any[] => [...(podSpec(manifests).initContainers ?? []), ...podSpec(manifests).containers];

describe.each(['gke', 'minikube'] as const)('the %s profile', (profile) => {
  const manifests = synthProfile(profile);

  it('validates against the Kubernetes and CRD schemas, with no unknown fields', () => {
    expect(manifestProblems(manifests)).toEqual([]);
  });

  it('sets requests on every container and a memory limit', () => {
    for (const container of allContainers(manifests)) {
      expect(container.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.resources.limits.memory).toEqual(expect.any(String));
    }
  });

  it('probes the app’s health paths on its port, and exposes only that port on the Service', () => {
    const [server] = podSpec(manifests).containers;
    expect(server.ports).toEqual([
      { containerPort: DEFAULTS.port, name: 'http' },
      { containerPort: DEFAULTS.metricsPort, name: 'metrics' },
    ]);
    expect(find(manifests, 'ConfigMap').data).toMatchObject({ PORT: String(DEFAULTS.port), METRICS_PORT: String(DEFAULTS.metricsPort) });
    expect(find(manifests, 'Service').spec.ports).toEqual([expect.objectContaining({ name: 'http', targetPort: DEFAULTS.port })]);
    expect(server.readinessProbe.httpGet).toMatchObject({ path: PATHS.ready, port: DEFAULTS.port });
    expect(server.livenessProbe.httpGet).toMatchObject({ path: PATHS.live, port: DEFAULTS.port });
    expect(server.startupProbe.httpGet).toMatchObject({ path: PATHS.live, port: DEFAULTS.port });
  });

  it('runs locked down: non-root numeric user, read-only root, no escalation, no capabilities, seccomp, no token', () => {
    const spec = podSpec(manifests);
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: CONTAINER_USER, seccompProfile: { type: 'RuntimeDefault' } });
    expect(spec.automountServiceAccountToken).toBe(false);
    for (const container of allContainers(manifests)) {
      expect(container.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: CONTAINER_USER,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(container.volumeMounts).toContainEqual({ mountPath: '/tmp', name: 'tmp' });
    }
    expect(spec.volumes).toContainEqual({ emptyDir: {}, name: 'tmp' });
  });

  it('leaves replicas to the HPA, which scales the Deployment by name on CPU', () => {
    const deployment = find(manifests, 'Deployment');
    expect(deployment.spec).not.toHaveProperty('replicas');
    const hpa = find(manifests, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }]);
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
  });

  it('selects the pods by stable labels in the Deployment, Service and PDB', () => {
    const deployment = find(manifests, 'Deployment');
    const podLabels = deployment.spec.template.metadata.labels;
    const selector = deployment.spec.selector.matchLabels;
    expect(selector).toEqual({ 'app.kubernetes.io/name': 'anomaly-serve', 'app.kubernetes.io/instance': 'anomaly-serve' });
    expect(podLabels).toMatchObject(selector);
    expect(find(manifests, 'Service').spec.selector).toEqual(selector);
    // minikube's single node cannot honour a PodDisruptionBudget; GKE's profile has one.
    const budgets = manifests.filter((m) => m.kind === 'PodDisruptionBudget') as Any[];
    expect(budgets.map((pdb) => pdb.spec.selector.matchLabels)).toEqual(profile === 'gke' ? [selector] : []);
  });

  it('names every object without a hash', () => {
    for (const { metadata } of manifests) expect(metadata.name).toMatch(/^anomaly-serve(-config)?$/);
  });

  it('configures the server through a ConfigMap, and a change to it rolls the pods', () => {
    const configMap = find(manifests, 'ConfigMap');
    expect(configMap.data).toMatchObject({ MODEL_NAME: 'ecg-autoencoder', MODEL_PATH: 'model/artifacts', MAX_BATCH_SIZE: '64', LOG_LEVEL: 'info' });
    const [server] = podSpec(manifests).containers;
    expect(server.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    const hash = (m: Manifest[]) => find(m, 'Deployment').spec.template.metadata.annotations['anomaly-serve/config-hash'];
    expect(hash(synthWith({ server: { logLevel: 'debug' } }))).not.toBe(hash(synthWith({})));
    expect(hash(synthWith({}))).toBe(hash(synthWith({})));
  });

  it('asks for API keys: the Secret anomaly-serve-api-keys mounted read-only as a folder, and API_KEYS_FILE naming its file', () => {
    const spec = podSpec(manifests);
    const [server] = spec.containers;
    expect(spec.volumes).toContainEqual({ name: 'api-keys', secret: { secretName: 'anomaly-serve-api-keys', items: [{ key: 'keys', path: 'keys' }], defaultMode: 0o440 } });
    // Not a subPath mount: that would never see the Secret's updates.
    expect(server.volumeMounts).toContainEqual({ mountPath: '/etc/anomaly-serve/api-keys', name: 'api-keys', readOnly: true });
    expect(find(manifests, 'ConfigMap').data.API_KEYS_FILE).toBe('/etc/anomaly-serve/api-keys/keys');
  });

  it('spreads the pods softly across zones and nodes', () => {
    expect(podSpec(manifests).topologySpreadConstraints.map((c: Any) => [c.topologyKey, c.whenUnsatisfiable])).toEqual([
      ['topology.kubernetes.io/zone', 'ScheduleAnyway'],
      ['kubernetes.io/hostname', 'ScheduleAnyway'],
    ]);
  });
});

describe('what the profiles change', () => {
  it('gke: a LoadBalancer, a memory-only VPA that only recommends, a PDB, a PodMonitoring and its alert Rules', () => {
    const manifests = synthProfile('gke');
    expect(manifests.map((m) => m.kind)).toEqual([
      'ConfigMap',
      'Deployment',
      'Service',
      'HorizontalPodAutoscaler',
      'VerticalPodAutoscaler',
      'PodDisruptionBudget',
      'NetworkPolicy',
      'PodMonitoring',
      'Rules',
    ]);
    expect(find(manifests, 'Service').spec.type).toBe('LoadBalancer');
    const vpa = find(manifests, 'VerticalPodAutoscaler');
    expect(vpa.spec.targetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'anomaly-serve' });
    expect(vpa.spec.updatePolicy.updateMode).toBe('Off');
    expect(vpa.spec.resourcePolicy.containerPolicies[0].controlledResources).toEqual(['memory']);
    expect(find(manifests, 'PodDisruptionBudget').spec.minAvailable).toBe(1);
    expect(find(manifests, 'PodMonitoring').spec.endpoints).toEqual([{ port: 'metrics', path: PATHS.metrics, interval: '30s' }]);
  });

  it('minikube: NodePort 30001, IfNotPresent, small requests, no VPA', () => {
    const manifests = synthProfile('minikube');
    expect(manifests.map((m) => m.kind)).not.toContain('VerticalPodAutoscaler');
    expect(find(manifests, 'Service').spec).toMatchObject({ type: 'NodePort', ports: [{ nodePort: 30001, port: 80, targetPort: DEFAULTS.port }] });
    const [server] = podSpec(manifests).containers;
    expect(server.imagePullPolicy).toBe('IfNotPresent');
    expect(server.resources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
  });
});

describe('AnomalyDetector options', () => {
  it('a model from Cloud Storage: an init container copies it into an emptyDir, as a Workload Identity service account', () => {
    const manifests = synthWith({ modelUri: 'gs://models/ecg/v3', gcpServiceAccount: 'reader@project.iam.gserviceaccount.com' });
    expect(manifestProblems(manifests)).toEqual([]);
    const account = find(manifests, 'ServiceAccount');
    expect(account.metadata.annotations).toEqual({ 'iam.gke.io/gcp-service-account': 'reader@project.iam.gserviceaccount.com' });
    const spec = podSpec(manifests);
    expect(spec.serviceAccountName).toBe(account.metadata.name);
    const [copy] = spec.initContainers;
    expect(copy.command).toEqual(['gcloud', 'storage', 'cp', '--recursive', 'gs://models/ecg/v3/*', '/models']);
    expect(copy.volumeMounts).toContainEqual({ mountPath: '/models', name: 'model' });
    expect(spec.containers[0].volumeMounts).toContainEqual({ mountPath: '/models', name: 'model', readOnly: true });
    expect(find(manifests, 'ConfigMap').data.MODEL_PATH).toBe('/models');
  });

  it('prometheus-operator monitoring: a ServiceMonitor labelled for kube-prometheus-stack, on a headless Service of the metrics port alone', () => {
    const manifests = synthWith({ monitoring: 'prometheus-operator' });
    expect(manifestProblems(manifests)).toEqual([]);
    const monitor = find(manifests, 'ServiceMonitor');
    expect(monitor.metadata.labels.release).toBe('kube-prometheus-stack');
    const services = manifests.filter((m) => m.kind === 'Service') as Any[];
    const labelled = (service: Any) => Object.entries(monitor.spec.selector.matchLabels).every(([key, value]) => service.metadata.labels[key] === value);
    // The operator scrapes the Services the selector matches: the metrics one, not the client-facing one.
    const [scraped, ...others] = services.filter(labelled);
    expect(others).toEqual([]);
    expect(scraped.metadata.name).toBe('anomaly-serve-metrics');
    expect(scraped.spec).toMatchObject({ clusterIP: 'None', selector: find(manifests, 'Deployment').spec.selector.matchLabels });
    expect(scraped.spec.ports).toEqual([{ name: 'metrics', port: DEFAULTS.metricsPort, targetPort: DEFAULTS.metricsPort }]);
    expect(monitor.spec.endpoints).toEqual([{ port: 'metrics', path: PATHS.metrics, interval: '30s' }]);
    expect(manifests.map((m) => m.kind)).not.toContain('PodMonitoring');
  });

  it.each([
    ['gmp', 'in-flight', 'prometheus.googleapis.com|anomaly_serve_inference_requests_in_flight|gauge', 16],
    ['gmp', 'requests-per-second', 'prometheus.googleapis.com|anomaly_serve_http_requests_total|counter', 4800],
    ['prometheus-operator', 'in-flight', 'anomaly_serve_inference_requests_in_flight', 16],
    ['prometheus-operator', 'requests-per-second', 'anomaly_serve_http_requests', 4800],
  ] as const)('autoscaling on load with %s monitoring, %s: the HPA keeps CPU and the per-pod metric as its adapter names it', (monitoring, metric, name, target) => {
    const manifests = synthWith({ monitoring, autoscaling: { mode: 'load', metric } });
    expect(manifestProblems(manifests)).toEqual([]);
    expect(find(manifests, 'HorizontalPodAutoscaler').spec.metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } },
      { type: 'Pods', pods: { metric: { name }, target: { type: 'AverageValue', averageValue: target } } },
    ]);
  });

  it('autoscaling by KEDA on Managed Prometheus: a ScaledObject with the CPU and Prometheus triggers and the HPA behaviour, no HPA of its own', () => {
    const chart = new Chart(Testing.app(), 'test', { disableResourceNameHashes: true, namespace: 'ml' });
    new AnomalyDetector(chart, 'AnomalyDetector', { image: 'anomaly-serve:test', autoscaling: { mode: 'keda', gcpProject: 'my-project', targetPerPod: 10 } });
    const manifests = Testing.synth(chart) as Manifest[];
    expect(manifestProblems(manifests)).toEqual([]);
    expect(manifests.map((m) => m.kind)).not.toContain('HorizontalPodAutoscaler');
    expect(find(manifests, 'Deployment').spec).not.toHaveProperty('replicas');
    const scaled = find(manifests, 'ScaledObject');
    expect(scaled.spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: 'anomaly-serve' }, minReplicaCount: 2, maxReplicaCount: 10 });
    expect(scaled.spec.advanced.horizontalPodAutoscalerConfig.behavior).toEqual(find(synthWith({}), 'HorizontalPodAutoscaler').spec.behavior);
    expect(scaled.spec.triggers).toEqual([
      { type: 'cpu', metricType: 'Utilization', metadata: { value: '60' } },
      {
        type: 'prometheus',
        metadata: {
          serverAddress: 'https://monitoring.googleapis.com/v1/projects/my-project/location/global/prometheus',
          query: 'sum(anomaly_serve_inference_requests_in_flight{job="anomaly-serve",namespace="ml"})',
          threshold: '10',
        },
        authenticationRef: { name: 'anomaly-serve' },
      },
    ]);
    expect(find(manifests, 'TriggerAuthentication').spec).toEqual({ podIdentity: { provider: 'gcp' } });
  });

  it('autoscaling by KEDA on an in-cluster Prometheus: queried directly, no authentication', () => {
    const manifests = synthWith({ monitoring: 'prometheus-operator', autoscaling: { mode: 'keda', metric: 'requests-per-second' } });
    expect(manifestProblems(manifests)).toEqual([]);
    const [, prometheus] = find(manifests, 'ScaledObject').spec.triggers;
    expect(prometheus).toEqual({
      type: 'prometheus',
      metadata: { serverAddress: 'http://prometheus-operated.monitoring.svc:9090', query: 'sum(rate(anomaly_serve_http_requests_total{job="anomaly-serve-metrics"}[1m]))', threshold: '4800' },
    });
    expect(manifests.map((m) => m.kind)).not.toContain('TriggerAuthentication');
  });

  it('a load balancer that admits given source ranges, or an internal one', () => {
    const restricted = synthWith({ allowedSourceRanges: ['203.0.113.0/24', '2001:db8::/32'] });
    expect(manifestProblems(restricted)).toEqual([]);
    expect(find(restricted, 'Service').spec.loadBalancerSourceRanges).toEqual(['203.0.113.0/24', '2001:db8::/32']);
    expect(find(restricted, 'Service').metadata.annotations).toBeUndefined();
    const internal = synthWith({ internalLoadBalancer: true });
    expect(manifestProblems(internal)).toEqual([]);
    expect(find(internal, 'Service').metadata.annotations).toEqual({ 'networking.gke.io/load-balancer-type': 'Internal' });
    expect(find(internal, 'Service').spec).not.toHaveProperty('loadBalancerSourceRanges');
  });

  it('API keys from a Secret of another name, or none: apiKeysSecret false serves openly', () => {
    const named = synthWith({ apiKeysSecret: 'ecg-clients' });
    expect(podSpec(named).volumes).toContainEqual(expect.objectContaining({ secret: expect.objectContaining({ secretName: 'ecg-clients' }) }));
    const open = synthWith({ apiKeysSecret: false });
    expect(manifestProblems(open)).toEqual([]);
    expect(podSpec(open).volumes.map((v: Any) => v.name)).toEqual(['tmp']);
    expect(find(open, 'ConfigMap').data).not.toHaveProperty('API_KEYS_FILE');
  });

  it('a VPA that sets memory on running pods, and a threshold override', () => {
    const manifests = synthWith({ verticalPodAutoscaler: { updateMode: 'InPlaceOrRecreate', maxAllowed: { memory: '2Gi' } }, server: { threshold: 0.05 } });
    expect(manifestProblems(manifests)).toEqual([]);
    expect(find(manifests, 'VerticalPodAutoscaler').spec.updatePolicy.updateMode).toBe('InPlaceOrRecreate');
    expect(find(manifests, 'ConfigMap').data.THRESHOLD).toBe('0.05');
  });

  it.each<[string, Partial<AnomalyDetectorProps>, RegExp]>([
    ['min above max replicas', { minReplicas: 5, maxReplicas: 3 }, /minReplicas \(5\) must not exceed maxReplicas \(3\)/],
    ['zero min replicas', { minReplicas: 0 }, /minReplicas \(0\) must be a whole number of at least 1/],
    ['a VPA acting on CPU', { verticalPodAutoscaler: { updateMode: 'Recreate', controlledResources: ['cpu', 'memory'] } }, /verticalPodAutoscaler\.controlledResources includes cpu with updateMode Recreate, while the HorizontalPodAutoscaler scales on CPU/],
    ['a NodePort below the range', { serviceType: ServiceType.NODE_PORT, nodePort: 8080 }, /nodePort \(8080\) must be in the NodePort range 30000-32767/],
    ['a NodePort above the range', { serviceType: ServiceType.NODE_PORT, nodePort: 40000 }, /nodePort \(40000\) must be in the NodePort range/],
    ['a NodePort on a LoadBalancer', { nodePort: 30001 }, /nodePort \(30001\) needs serviceType NODE_PORT, not LoadBalancer/],
    ['a CPU target over 100%', { targetCpuUtilization: 150 }, /targetCpuUtilization \(150\) must be a whole percentage from 1 to 100/],
    ['a PDB that blocks every drain', { minReplicas: 2, minAvailable: 2 }, /minAvailable \(2\) must be below minReplicas \(2\)/],
    ['a memory request over its limit', { resources: { memoryRequest: '2Gi', memoryLimit: '1Gi' } }, /resources\.memoryRequest \(2Gi\) is above resources\.memoryLimit \(1Gi\)/],
    ['a quantity that is not one', { resources: { cpuRequest: 'half' } }, /"half" is not a Kubernetes quantity/],
    ['a model URI outside Cloud Storage', { modelUri: 's3://bucket/model', gcpServiceAccount: 'reader@project.iam.gserviceaccount.com' }, /modelUri \(s3:\/\/bucket\/model\) must be a Cloud Storage folder/],
    ['a model URI without a service account', { modelUri: 'gs://bucket/model' }, /modelUri needs gcpServiceAccount/],
    ['a port out of range', { server: { port: 70000 } }, /the server would refuse these settings: PORT="70000" is invalid/],
    ['a metrics port out of range', { server: { metricsPort: 0 } }, /server\.metricsPort \(0\) must be from 1 to 65535/],
    ['the metrics on the serving port', { server: { port: 9000, metricsPort: 9000 } }, /the server would refuse these settings: METRICS_PORT=9000 is also PORT/],
    ['a negative threshold', { server: { threshold: -1 } }, /the server would refuse these settings: THRESHOLD="-1" is invalid/],
    ['a deadline shorter than the drain', { server: { shutdownDelaySeconds: 20, shutdownTimeoutSeconds: 30 } }, /the server would refuse these settings: SHUTDOWN_DELAY_SECONDS=20 plus REQUEST_TIMEOUT_SECONDS=15 must not be longer than SHUTDOWN_TIMEOUT_SECONDS=30/],
    ['an empty image', { image: ' ' }, /image must name a container image/],
    ['a Secret name that is not one', { apiKeysSecret: 'API Keys' }, /apiKeysSecret \("API Keys"\) must be a Secret's name/],
    ['a source range that is not a CIDR', { allowedSourceRanges: ['10.0.0.0/8', '10.0.0.300/32'] }, /allowedSourceRanges: "10\.0\.0\.300\/32" is not a CIDR block/],
    ['a prefix longer than the address', { allowedSourceRanges: ['10.0.0.0/33'] }, /allowedSourceRanges: "10\.0\.0\.0\/33" is not a CIDR block/],
    ['no source range at all', { allowedSourceRanges: [] }, /allowedSourceRanges is empty: leave it out to admit every address/],
    ['source ranges on a NodePort', { serviceType: ServiceType.NODE_PORT, allowedSourceRanges: ['10.0.0.0/8'] }, /allowedSourceRanges and internalLoadBalancer need serviceType LOAD_BALANCER, not NodePort/],
    ['load autoscaling without metrics', { monitoring: 'none', autoscaling: { mode: 'load' } }, /autoscaling\.mode load scales on the server's metrics, which monitoring 'none' does not collect/],
    ['KEDA on Managed Prometheus without a project', { autoscaling: { mode: 'keda' } }, /autoscaling\.mode keda with monitoring gmp needs autoscaling\.gcpProject/],
    ['a load target of zero', { autoscaling: { mode: 'load', targetPerPod: 0 } }, /autoscaling\.targetPerPod \(0\) must be above 0/],
  ])('rejects %s, naming the props', (_, props, message) => {
    expect(() => synthWith(props)).toThrow(message);
  });

  it('matches the snapshot (gke profile)', () => {
    expect(synthProfile('gke')).toMatchSnapshot();
  });
});

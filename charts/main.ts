import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ApiObject, App, Chart, JsonPatch, type ChartProps } from 'cdk8s';
import { ImagePullPolicy, Namespace, ServiceType } from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import { AnomalyDetector, type AnomalyDetectorProps } from './anomaly-detector.ts';
import { DNS_LABEL } from './k8s-values.ts';
import { PropsError } from './props-error.ts';
import { LoadTest } from './load-test.ts';

export const PROFILES = ['gke', 'minikube'] as const;
export type Profile = (typeof PROFILES)[number];

export interface Settings {
  readonly image: string;
  readonly namespace?: string;
  readonly profile: Profile;
  /** A model folder in Cloud Storage to serve instead of the image's (the construct's modelUri). */
  readonly modelUri?: string;
  /** The Google service account that may read it (the construct's gcpServiceAccount). */
  readonly modelServiceAccount?: string;
  /** The client CIDRs the load balancer and the NetworkPolicy admit (the construct's allowedSourceRanges). */
  readonly allowedSourceRanges?: readonly string[];
  /** A load balancer reachable from the VPC only (the construct's internalLoadBalancer). */
  readonly internalLoadBalancer?: boolean;
  /** The domain of the HTTPS front door (the construct's domain). */
  readonly domain?: string;
  /** A canary model beside the stable one, and its percentage of the requests (the construct's canary). */
  readonly canary?: { readonly modelUri: string; readonly weight: number };
}

export class SettingsError extends Error {
  override name = 'SettingsError';
}

const IMAGE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/**
 * A setting's value, or undefined when unset. Set but empty is an error: `IMAGE=$TAG` with TAG
 * unset would otherwise synthesize the default image without a word.
 */
function setting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  if (value !== undefined && value.trim() === '') throw new SettingsError(`${name}=${JSON.stringify(value)} is empty: give it a value, or unset it for the default`);
  return value?.trim();
}

/**
 * A setting that Cloud Build passes from an optional substitution, where unset arrives as "": for
 * these, empty means unset.
 */
const substitution = (env: NodeJS.ProcessEnv, name: string) => env[name]?.trim() || undefined;

/**
 * Reads IMAGE, NAMESPACE, PROFILE, MODEL_URI, MODEL_SERVICE_ACCOUNT, ALLOWED_SOURCE_RANGES,
 * INTERNAL_LOAD_BALANCER, DOMAIN, CANARY_MODEL_URI and CANARY_WEIGHT, naming the variable and the
 * value when one is wrong.
 */
export function settingsFrom(env: NodeJS.ProcessEnv): Settings {
  const image = setting(env, 'IMAGE') ?? 'anomaly-serve:dev';
  if (!IMAGE.test(image)) throw new SettingsError(`IMAGE=${JSON.stringify(image)} is not an image reference such as registry/repository/name:tag`);
  const namespace = setting(env, 'NAMESPACE');
  if (namespace !== undefined && !DNS_LABEL.test(namespace)) {
    throw new SettingsError(`NAMESPACE=${JSON.stringify(namespace)} is not a Kubernetes namespace name (lower-case letters, digits and "-", at most 63)`);
  }
  const profile = setting(env, 'PROFILE') ?? 'gke';
  if (!(PROFILES as readonly string[]).includes(profile)) throw new SettingsError(`PROFILE=${JSON.stringify(profile)} must be one of ${PROFILES.join(', ')}`);
  const modelUri = substitution(env, 'MODEL_URI');
  const modelServiceAccount = substitution(env, 'MODEL_SERVICE_ACCOUNT');
  // Separated by spaces or commas: Cloud Build's --substitutions takes commas for its own.
  const ranges = substitution(env, 'ALLOWED_SOURCE_RANGES')?.split(/[\s,]+/).filter(Boolean);
  const internal = substitution(env, 'INTERNAL_LOAD_BALANCER');
  if (internal !== undefined && internal !== 'true' && internal !== 'false') throw new SettingsError(`INTERNAL_LOAD_BALANCER=${JSON.stringify(internal)} must be true or false`);
  if ((ranges || internal === 'true') && profile !== 'gke') throw new SettingsError(`ALLOWED_SOURCE_RANGES and INTERNAL_LOAD_BALANCER are for PROFILE=gke's load balancer, not ${profile}'s NodePort`);
  const domain = substitution(env, 'DOMAIN');
  if (domain !== undefined && profile !== 'gke') throw new SettingsError(`DOMAIN is for PROFILE=gke's Gateway; ${profile} keeps its NodePort`);
  const canaryUri = substitution(env, 'CANARY_MODEL_URI');
  const canaryWeight = substitution(env, 'CANARY_WEIGHT');
  if ((canaryUri === undefined) !== (canaryWeight === undefined)) throw new SettingsError('CANARY_MODEL_URI and CANARY_WEIGHT go together: the canary model, and its percentage of the requests');
  // The service account reads the models in Cloud Storage: the stable one's, the canary's, or both.
  if ((modelUri !== undefined || canaryUri !== undefined) !== (modelServiceAccount !== undefined)) {
    throw new SettingsError('MODEL_SERVICE_ACCOUNT goes with MODEL_URI or CANARY_MODEL_URI: the Google service account that may read the models in Cloud Storage');
  }
  if (canaryWeight !== undefined && !/^\d{1,3}$/.test(canaryWeight)) throw new SettingsError(`CANARY_WEIGHT=${JSON.stringify(canaryWeight)} must be a whole percentage, such as 10`);
  return {
    image,
    namespace,
    profile: profile as Profile,
    ...(modelUri ? { modelUri } : {}),
    ...(modelServiceAccount ? { modelServiceAccount } : {}),
    ...(ranges ? { allowedSourceRanges: ranges } : {}),
    ...(internal === 'true' ? { internalLoadBalancer: true } : {}),
    ...(domain ? { domain } : {}),
    ...(canaryUri ? { canary: { modelUri: canaryUri, weight: Number(canaryWeight) } } : {}),
  };
}

/**
 * What `npm run synth` warns of: a public endpoint without HTTPS, where the API keys the charts ask
 * for cross the internet in cleartext.
 */
export function cleartextWarning(settings: Settings): string | undefined {
  if (settings.profile !== 'gke' || settings.domain !== undefined || settings.internalLoadBalancer) return undefined;
  return 'no DOMAIN: the API is served over plain HTTP on a public layer-4 load balancer, so API keys and beats travel in cleartext. Set DOMAIN=api.example.com (Cloud Build: _DOMAIN) for an HTTPS Gateway with a Google-managed certificate (docs/kubernetes.md#https-with-a-domain)';
}

/** What each profile changes from the construct's defaults (which suit GKE). */
const PROFILE_PROPS: Record<Profile, Partial<AnomalyDetectorProps>> = {
  gke: {},
  minikube: {
    serviceType: ServiceType.NODE_PORT,
    nodePort: 30001,
    // The image is built into minikube's own Docker, not pulled.
    imagePullPolicy: ImagePullPolicy.IF_NOT_PRESENT,
    resources: { cpuRequest: '100m', memoryRequest: '128Mi', memoryLimit: '512Mi' },
    minReplicas: 1,
    maxReplicas: 3,
    minAvailable: false,
    verticalPodAutoscaler: false,
    monitoring: 'none',
  },
};

/** The chart `cdk8s synth` writes to dist/anomaly-serve.k8s.yaml. */
export class AnomalyServeChart extends Chart {
  readonly detector: AnomalyDetector;

  constructor(scope: Construct, settings: Settings, props: ChartProps = {}) {
    super(scope, 'anomaly-serve', { ...props, namespace: settings.namespace, disableResourceNameHashes: true });
    // First in the file, so that `kubectl apply -f dist` creates it before what goes in it.
    if (settings.namespace) {
      const namespace = new Namespace(this, 'Namespace', { metadata: { name: settings.namespace } });
      // The chart puts its namespace on every object; a Namespace is not in one.
      ApiObject.of(namespace).addJsonPatch(JsonPatch.remove('/metadata/namespace'));
    }
    const model = { modelUri: settings.modelUri, gcpServiceAccount: settings.modelServiceAccount };
    this.detector = new AnomalyDetector(this, 'AnomalyDetector', {
      image: settings.image,
      ...PROFILE_PROPS[settings.profile],
      ...model,
      allowedSourceRanges: settings.allowedSourceRanges,
      internalLoadBalancer: settings.internalLoadBalancer,
      domain: settings.domain,
      canary: settings.canary,
    });
  }
}

/** The chart `cdk8s synth` writes to dist/load-test/load-test.k8s.yaml. */
export class LoadTestChart extends Chart {
  readonly loadTest: LoadTest;

  constructor(scope: Construct, settings: Settings, detector: AnomalyDetector) {
    super(scope, 'load-test', { namespace: settings.namespace, disableResourceNameHashes: true });
    this.loadTest = new LoadTest(this, 'LoadTest', {
      host: `http://${detector.service.name}`,
      workers: settings.profile === 'minikube' ? 1 : 2,
      apiKeysSecret: detector.apiKeysSecret,
    });
  }
}

/**
 * The two apps `cdk8s synth` writes, built from the environment: a bad setting (SettingsError) or a
 * combination of props the constructs refuse (PropsError) is reported, naming it.
 */
export function appsFrom(env: NodeJS.ProcessEnv): { readonly service: App; readonly loadTest: App } {
  const settings = settingsFrom(env);
  const service = new App();
  const chart = new AnomalyServeChart(service, settings);
  // In a folder of its own: `kubectl apply -f dist` does not descend into it, so the load test is
  // applied only on demand, with `kubectl apply -f dist/load-test`.
  const loadTest = new App({ outdir: path.join(service.outdir, 'load-test') });
  new LoadTestChart(loadTest, settings, chart.detector);
  return { service, loadTest };
}

/**
 * `--check-settings` builds the charts without writing them: `npm run synth` runs it first, because
 * `cdk8s synth` empties dist/ before it runs this app.
 */
function main(): void {
  let apps: ReturnType<typeof appsFrom>;
  try {
    apps = appsFrom(process.env);
  } catch (error) {
    if (!(error instanceof SettingsError || error instanceof PropsError)) throw error;
    process.stderr.write(`cdk8s synth: ${error.message}\n`);
    process.exit(2);
  }
  if (process.argv.includes('--check-settings')) {
    const warning = cleartextWarning(settingsFrom(process.env));
    if (warning) process.stderr.write(`cdk8s synth: warning: ${warning}\n`);
    return;
  }
  apps.service.synth();
  apps.loadTest.synth();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();

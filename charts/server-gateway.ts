import { ApiObject, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';
import { PATHS } from '../app/contract.ts';
import { DNS_LABEL, DNS_SUBDOMAIN } from './k8s-values.ts';
import { PropsError } from './props-error.ts';

/**
 * Where Google Cloud's load balancers connect from: the Google Front Ends that proxy an external
 * Application Load Balancer's requests, and its health checks. A pod behind a Gateway sees these
 * addresses, never the clients'.
 */
export const GOOGLE_LOAD_BALANCER_RANGES = ['35.191.0.0/16', '130.211.0.0/22'] as const;

/** GKE's GatewayClass of a global external Application Load Balancer, the one a public HTTPS endpoint needs. */
export const DEFAULT_GATEWAY_CLASS = 'gke-l7-global-external-managed';

/**
 * The certificate map the Gateway names by default: the one `scripts/create-cluster.sh --domain`
 * makes (a test holds the two together).
 */
export const DEFAULT_CERTIFICATE_MAP = 'anomaly-serve-certmap';

/** What a user chooses of the HTTPS front door (the AnomalyDetector's props include these). */
export interface ServerGatewayOptions {
  /**
   * The domain clients call over HTTPS, e.g. api.example.com: with it, a Gateway terminates TLS with
   * a Google-managed certificate (Certificate Manager) and the Service is ClusterIP, with no public
   * layer-4 load balancer. @default none: no Gateway, the Service is a LoadBalancer on port 80
   */
  readonly domain?: string;
  /** The Certificate Manager certificate map whose entry for the domain holds its certificate. @default 'anomaly-serve-certmap', what scripts/create-cluster.sh --domain makes */
  readonly certificateMap?: string;
  /** GKE's GatewayClass. @default 'gke-l7-global-external-managed' */
  readonly gatewayClass?: string;
  /** A reserved global static IP address, by name, for the Gateway (the domain's DNS record points at it). @default an ephemeral address */
  readonly staticAddress?: string;
  /** How long the load balancer waits for an answer, in seconds (GCPBackendPolicy). @default 30 */
  readonly backendTimeoutSeconds?: number;
  /** A Cloud Armor security policy, by name, for the backend (GCPBackendPolicy). @default none */
  readonly cloudArmorPolicy?: string;
}

export interface ServerGatewayProps extends ServerGatewayOptions {
  readonly metadata: ApiObjectMetadata & { readonly name: string };
  readonly domain: string;
  /** The Services it routes to, each with its port and its share of the requests (HTTPRoute weights); the first is the stable one. */
  readonly services: readonly { readonly name: string; readonly port: number; readonly weight: number }[];
  /** The container port the load balancer's health checks call (container-native: the pod's own). */
  readonly servingPort: number;
}

/** A host name of a domain: labels of letters, digits and "-", at least two (RFC 1123). */
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The HTTPS front door on GKE, in the Gateway API (`gateway.networking.k8s.io/v1`): a Gateway of a
 * managed class with an HTTPS listener (its certificate from a Certificate Manager map) and an HTTP
 * one, an HTTPRoute from the HTTPS listener to the server's Service, one that redirects HTTP to
 * HTTPS, and GKE's HealthCheckPolicy (the readiness path) and GCPBackendPolicy (timeout, Cloud Armor).
 */
export class ServerGateway extends Construct {
  readonly gateway: ApiObject;
  readonly route: ApiObject;

  constructor(scope: Construct, id: string, props: ServerGatewayProps) {
    super(scope, id);
    validate(props);
    const { metadata, domain, services } = props;
    const { name } = metadata;
    const parent = (sectionName: string) => ({ parentRefs: [{ name, sectionName }], hostnames: [domain] });
    // One Service: no weight, as before canaries; several: each its share.
    const backendRefs = services.map(({ name: service, port, weight }) => ({ name: service, port, ...(services.length > 1 ? { weight } : {}) }));
    this.gateway = new ApiObject(this, 'Resource', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { ...metadata, annotations: { ...metadata.annotations, 'networking.gke.io/certmap': props.certificateMap ?? DEFAULT_CERTIFICATE_MAP } },
      spec: {
        gatewayClassName: props.gatewayClass ?? DEFAULT_GATEWAY_CLASS,
        listeners: [
          { name: 'https', protocol: 'HTTPS', port: 443, hostname: domain },
          { name: 'http', protocol: 'HTTP', port: 80, hostname: domain },
        ],
        ...(props.staticAddress ? { addresses: [{ type: 'NamedAddress', value: props.staticAddress }] } : {}),
      },
    });
    this.route = new ApiObject(this, 'Route', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata,
      spec: { ...parent('https'), rules: [{ backendRefs }] },
    });
    new ApiObject(this, 'HttpsRedirect', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { ...metadata, name: `${name}-https-redirect` },
      spec: { ...parent('http'), rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }] },
    });
    // GKE's policies attach to a Service: each backend gets its own (the stable one's ids unsuffixed).
    services.forEach((service, i) => {
      const suffix = i === 0 ? '' : `-${service.name}`;
      const targetRef = { group: '', kind: 'Service', name: service.name };
      const policyMetadata = { ...metadata, name: service.name };
      new ApiObject(this, `HealthCheckPolicy${suffix}`, {
        apiVersion: 'networking.gke.io/v1',
        kind: 'HealthCheckPolicy',
        metadata: policyMetadata,
        spec: {
          default: { config: { type: 'HTTP', httpHealthCheck: { port: props.servingPort, requestPath: PATHS.ready } } },
          targetRef,
        },
      });
      new ApiObject(this, `BackendPolicy${suffix}`, {
        apiVersion: 'networking.gke.io/v1',
        kind: 'GCPBackendPolicy',
        metadata: policyMetadata,
        spec: {
          default: { timeoutSec: props.backendTimeoutSeconds ?? 30, ...(props.cloudArmorPolicy ? { securityPolicy: props.cloudArmorPolicy } : {}) },
          targetRef,
        },
      });
    });
  }
}

function validate(props: ServerGatewayProps): void {
  const fail = (message: string) => {
    throw new PropsError('ServerGateway', message);
  };
  if (!DOMAIN.test(props.domain)) fail(`domain (${JSON.stringify(props.domain)}) must be a host name such as api.example.com (lower case, no scheme, no port, no wildcard)`);
  for (const [key, value] of [['certificateMap', props.certificateMap], ['staticAddress', props.staticAddress], ['cloudArmorPolicy', props.cloudArmorPolicy]] as const) {
    // Google Cloud resource names: a letter, then letters, digits and "-", at most 63.
    if (value !== undefined && !/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) fail(`${key} (${JSON.stringify(value)}) must be a Google Cloud resource name (a-z, 0-9, "-", at most 63)`);
  }
  if (props.gatewayClass !== undefined && !DNS_SUBDOMAIN.test(props.gatewayClass)) fail(`gatewayClass (${JSON.stringify(props.gatewayClass)}) must be a GatewayClass's name`);
  const timeout = props.backendTimeoutSeconds;
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1 && timeout <= 2_147_483_647)) fail(`backendTimeoutSeconds (${timeout}) must be a whole number of seconds from 1`);
  if (!DNS_LABEL.test(props.metadata.name)) fail(`the name (${JSON.stringify(props.metadata.name)}) must be a DNS label`);
}

import { ApiObject, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';

export interface ScrapeEndpoint {
  /** The port's name or number on the pod (PodMonitoring) or Service (ServiceMonitor). */
  readonly port: string | number;
  /** @default '/metrics' */
  readonly path?: string;
  /** @default '30s' */
  readonly interval?: string;
}

export interface PodMonitoringProps {
  readonly metadata?: ApiObjectMetadata;
  /** Labels of the pods to scrape. */
  readonly matchLabels: Record<string, string>;
  readonly endpoints: readonly ScrapeEndpoint[];
}

/**
 * A PodMonitoring (`monitoring.googleapis.com/v1`): Google Cloud Managed Service for Prometheus
 * scrapes the selected pods.
 */
export class PodMonitoring extends Construct {
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: PodMonitoringProps) {
    super(scope, id);
    if (props.endpoints.length === 0) throw new Error('endpoints must name at least one port to scrape');
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'monitoring.googleapis.com/v1',
      kind: 'PodMonitoring',
      metadata: props.metadata,
      spec: {
        selector: { matchLabels: props.matchLabels },
        endpoints: props.endpoints.map(scrapeEndpoint),
      },
    });
  }
}

export function scrapeEndpoint({ port, path, interval }: ScrapeEndpoint) {
  return { port, path: path ?? '/metrics', interval: interval ?? '30s' };
}

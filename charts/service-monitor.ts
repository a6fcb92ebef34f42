import { ApiObject, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';
import { scrapeEndpoint, type ScrapeEndpoint } from './pod-monitoring.ts';

export interface ServiceMonitorProps {
  /** Its labels must match the Prometheus' serviceMonitorSelector (kube-prometheus-stack: `release`). */
  readonly metadata?: ApiObjectMetadata;
  /** Labels of the Services whose endpoints are scraped. */
  readonly matchLabels: Record<string, string>;
  /** Ports by their name on the Service. */
  readonly endpoints: readonly (ScrapeEndpoint & { readonly port: string })[];
}

/**
 * A ServiceMonitor (`monitoring.coreos.com/v1`): the Prometheus Operator (kube-prometheus-stack)
 * scrapes every pod behind the selected Services.
 */
export class ServiceMonitor extends Construct {
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: ServiceMonitorProps) {
    super(scope, id);
    if (props.endpoints.length === 0) throw new Error('endpoints must name at least one port to scrape');
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: props.metadata,
      spec: {
        selector: { matchLabels: props.matchLabels },
        endpoints: props.endpoints.map(scrapeEndpoint),
      },
    });
  }
}

import * as kplus from 'cdk8s-plus-27';
import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { ServerAlertRules, type ServerAlertsOptions } from './server-alert-rules.ts';
import { PATHS } from '../app/contract.ts';
import { DNS_LABEL } from './k8s-values.ts';
import { PodMonitoring } from './pod-monitoring.ts';
import { PORT_NAMES } from './server-deployment.ts';
import { ServiceMonitor } from './service-monitor.ts';
import { PropsError } from './props-error.ts';

/** What collects the server's metrics: Google Cloud Managed Service for Prometheus, the Prometheus Operator, or nothing. */
export type Monitoring = 'gmp' | 'prometheus-operator' | 'none';

/** What a user chooses of the monitoring (the AnomalyDetector's props include these). */
export interface ServerMonitoringOptions {
  /**
   * What scrapes the metrics port: 'gmp' (a PodMonitoring), 'prometheus-operator' (a ServiceMonitor on a
   * headless Service of that port) or 'none'. @default 'gmp' (Google Cloud Managed Service for Prometheus)
   */
  readonly monitoring?: Monitoring;
  /** Labels of the ServiceMonitor and the PrometheusRule, for the Prometheus' selectors. @default { release: 'kube-prometheus-stack' } */
  readonly serviceMonitorLabels?: Record<string, string>;
  /**
   * The namespace of what scrapes the metrics port. @default 'gmp-system' with monitoring 'gmp'; the
   * Prometheus' (from autoscaling.prometheusAddress, else 'monitoring') with 'prometheus-operator'
   */
  readonly monitoringNamespace?: string;
  /**
   * The alerting rules (a Rules object with 'gmp', a PrometheusRule with 'prometheus-operator'),
   * each tuned or turned off; false for none. @default every alert at its defaults (docs/metrics.md#alerts)
   */
  readonly alerts?: ServerAlertsOptions | false;
}

/** The Prometheus job of the server's series: the PodMonitoring's name, or the ServiceMonitor's Service's. */
const jobOf = (name: string, monitoring: Monitoring) => (monitoring === 'prometheus-operator' ? `${name}-metrics` : name);

/** The PromQL label matcher of the server's series, in the chart's namespace when it has one. */
export function seriesSelector(scope: Construct, name: string, monitoring: Monitoring): string {
  const namespace = Chart.of(scope).namespace;
  return `job="${jobOf(name, monitoring)}"${namespace ? `,namespace="${namespace}"` : ''}`;
}

export interface ServerMonitoringProps extends ServerMonitoringOptions {
  /** The name of its objects (the metrics Service's gets `-metrics`). */
  readonly name: string;
  /** The labels every object of the detector carries. */
  readonly labels: Record<string, string>;
  /** The server pods' stable labels. */
  readonly selectorLabels: Record<string, string>;
  /** The server container's metrics port. */
  readonly metricsPort: number;
}

/**
 * The namespace whose pods scrape the metrics port, if any: the NetworkPolicy admits it. With the
 * Prometheus Operator, the namespace of the Prometheus at `prometheusAddress`.
 */
export function monitoringNamespace(options: ServerMonitoringOptions, prometheusAddress: string): string | undefined {
  const monitoring = options.monitoring ?? 'gmp';
  if (options.monitoringNamespace !== undefined) {
    if (monitoring === 'none') throw new PropsError('ServerMonitoring', "monitoringNamespace needs monitoring gmp or prometheus-operator: with 'none' nothing scrapes the metrics");
    if (!DNS_LABEL.test(options.monitoringNamespace)) throw new PropsError('ServerMonitoring', `monitoringNamespace (${JSON.stringify(options.monitoringNamespace)}) must be a namespace's name`);
    return options.monitoringNamespace;
  }
  if (monitoring === 'gmp') return 'gmp-system';
  if (monitoring === 'none') return undefined;
  // A Service's in-cluster name: <service>.<namespace>.svc[.cluster.local].
  return /^[a-z0-9-]+\.([a-z0-9-]+)\.svc(?:\.|$)/.exec(new URL(prometheusAddress).hostname)?.[1] ?? 'monitoring';
}

/**
 * How the server's metrics port is scraped: a PodMonitoring (Managed Prometheus), or a ServiceMonitor
 * on a headless Service of the metrics port alone (the Prometheus Operator), so that the
 * client-facing Service never carries that port.
 */
export class ServerMonitoring extends Construct {
  constructor(scope: Construct, id: string, props: ServerMonitoringProps) {
    super(scope, id);
    const { name, labels, selectorLabels } = props;
    const scrape = [{ port: PORT_NAMES.metrics, path: PATHS.metrics }];
    const monitoring = props.monitoring ?? 'gmp';
    const operatorLabels = props.serviceMonitorLabels ?? { release: 'kube-prometheus-stack' };
    if (monitoring === 'gmp') {
      new PodMonitoring(this, 'Resource', { metadata: { name, labels }, matchLabels: selectorLabels, endpoints: scrape });
    } else if (monitoring === 'prometheus-operator') {
      const metricsLabels = { ...selectorLabels, 'app.kubernetes.io/component': 'metrics' };
      new kplus.Service(this, 'MetricsService', {
        metadata: { name: jobOf(name, monitoring), labels: { ...labels, ...metricsLabels } },
        type: kplus.ServiceType.CLUSTER_IP,
        clusterIP: 'None',
        selector: kplus.Pods.select(this, 'MetricsPods', { labels: selectorLabels }),
        ports: [{ port: props.metricsPort, targetPort: props.metricsPort, name: PORT_NAMES.metrics }],
      });
      new ServiceMonitor(this, 'Resource', {
        metadata: { name, labels: { ...labels, ...operatorLabels } },
        matchLabels: metricsLabels,
        endpoints: scrape,
      });
    }
    if (props.alerts !== undefined && props.alerts !== false && monitoring === 'none') {
      throw new PropsError('ServerMonitoring', "alerts needs monitoring gmp or prometheus-operator: with 'none' nothing evaluates them");
    }
    if (props.alerts !== false && monitoring !== 'none') {
      new ServerAlertRules(this, 'AlertRules', {
        metadata: { name, labels: { ...labels, ...(monitoring === 'prometheus-operator' ? operatorLabels : {}) } },
        monitoring,
        selector: seriesSelector(this, name, monitoring),
        alerts: props.alerts,
      });
    }
  }
}

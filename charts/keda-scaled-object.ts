import { ApiObject, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';

/** A KEDA trigger (https://keda.sh/docs/2.10/scalers/). */
export interface KedaTrigger {
  readonly type: string;
  readonly metadata: Record<string, string>;
  /** @default the scaler's: AverageValue for most */
  readonly metricType?: 'AverageValue' | 'Value' | 'Utilization';
  /** A TriggerAuthentication in the same namespace. @default none */
  readonly authenticationRef?: string;
}

export interface KedaScaledObjectProps {
  readonly metadata: ApiObjectMetadata;
  /** The Deployment to scale, by name. */
  readonly deploymentName: string;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** The scale-up and scale-down behaviour of the HorizontalPodAutoscaler KEDA makes, as autoscaling/v2 writes it. @default KEDA's */
  readonly behavior?: unknown;
  readonly triggers: readonly KedaTrigger[];
}

/**
 * A KEDA ScaledObject (keda.sh/v1alpha1): KEDA makes and owns the HorizontalPodAutoscaler of the
 * Deployment, fed by its triggers.
 */
export class KedaScaledObject extends Construct {
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: KedaScaledObjectProps) {
    super(scope, id);
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: props.metadata,
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: props.deploymentName },
        minReplicaCount: props.minReplicas,
        maxReplicaCount: props.maxReplicas,
        ...(props.behavior === undefined ? {} : { advanced: { horizontalPodAutoscalerConfig: { behavior: props.behavior } } }),
        triggers: props.triggers.map(({ authenticationRef, ...trigger }) => ({ ...trigger, ...(authenticationRef ? { authenticationRef: { name: authenticationRef } } : {}) })),
      },
    });
  }
}

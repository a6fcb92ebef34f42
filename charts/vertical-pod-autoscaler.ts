import { ApiObject, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';
import { parseQuantity } from './k8s-values.ts';

/** When the VPA applies its recommendations (the CRD's `updatePolicy.updateMode`). */
export type VpaUpdateMode = 'Off' | 'Initial' | 'Recreate' | 'InPlaceOrRecreate';
export type VpaResource = 'cpu' | 'memory';

/** Kubernetes quantities, e.g. `{ memory: '256Mi' }`. */
export type ResourceQuantities = Partial<Record<VpaResource, string>>;

export interface VpaContainerPolicy {
  /** The container the policy is for; `*` is every container. */
  readonly containerName: string;
  /** `Off` turns the VPA off for this container. @default 'Auto' */
  readonly mode?: 'Auto' | 'Off';
  /** The resources the VPA recommends for and sets. @default ['cpu', 'memory'] */
  readonly controlledResources?: readonly VpaResource[];
  /** Whether it sets requests only, or limits in proportion too. @default 'RequestsAndLimits' */
  readonly controlledValues?: 'RequestsAndLimits' | 'RequestsOnly';
  /** Lower bounds of its recommendations. @default no bound */
  readonly minAllowed?: ResourceQuantities;
  /** Upper bounds of its recommendations. @default no bound */
  readonly maxAllowed?: ResourceQuantities;
}

/** The workload a VPA sizes. */
export interface VpaTarget {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
}

export interface VerticalPodAutoscalerProps {
  readonly metadata?: ApiObjectMetadata;
  readonly target: VpaTarget;
  /** @default 'Off' (recommendations only) */
  readonly updateMode?: VpaUpdateMode;
  /** @default none: every container, every resource */
  readonly containerPolicies?: readonly VpaContainerPolicy[];
}

/**
 * A VerticalPodAutoscaler (`autoscaling.k8s.io/v1`): recommends, and in the modes other than
 * `Off` sets, the resource requests of a workload's pods.
 */
export class VerticalPodAutoscaler extends Construct {
  readonly apiObject: ApiObject;
  readonly updateMode: VpaUpdateMode;
  readonly containerPolicies: readonly VpaContainerPolicy[];

  constructor(scope: Construct, id: string, props: VerticalPodAutoscalerProps) {
    super(scope, id);
    this.updateMode = props.updateMode ?? 'Off';
    this.containerPolicies = props.containerPolicies ?? [];
    this.containerPolicies.forEach((policy, i) => {
      for (const resource of ['cpu', 'memory'] as const) {
        const min = policy.minAllowed?.[resource];
        const max = policy.maxAllowed?.[resource];
        if (min !== undefined && max !== undefined && parseQuantity(min) > parseQuantity(max)) {
          throw new Error(`containerPolicies[${i}].minAllowed.${resource} (${min}) is above containerPolicies[${i}].maxAllowed.${resource} (${max})`);
        }
      }
    });
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'autoscaling.k8s.io/v1',
      kind: 'VerticalPodAutoscaler',
      metadata: props.metadata,
      spec: {
        targetRef: { apiVersion: props.target.apiVersion, kind: props.target.kind, name: props.target.name },
        updatePolicy: { updateMode: this.updateMode },
        ...(this.containerPolicies.length > 0 && {
          resourcePolicy: {
            containerPolicies: this.containerPolicies.map((policy) => ({
              containerName: policy.containerName,
              mode: policy.mode,
              controlledResources: policy.controlledResources,
              controlledValues: policy.controlledValues,
              minAllowed: policy.minAllowed,
              maxAllowed: policy.maxAllowed,
            })),
          },
        }),
      },
    });
  }

  /** Whether the VPA may change a resource of running or new pods (not just recommend). */
  acts(resource: VpaResource): boolean {
    if (this.updateMode === 'Off') return false;
    if (this.containerPolicies.length === 0) return true;
    return this.containerPolicies.some((p) => p.mode !== 'Off' && (p.controlledResources ?? ['cpu', 'memory']).includes(resource));
  }
}

import { ApiObject, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';

export interface KedaTriggerAuthenticationProps {
  readonly metadata: ApiObjectMetadata;
  /** Who KEDA is when it queries: GKE Workload Identity of KEDA's operator ('gcp'). */
  readonly podIdentity: 'gcp';
}

/** A KEDA TriggerAuthentication (keda.sh/v1alpha1) by pod identity. */
export class KedaTriggerAuthentication extends Construct {
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: KedaTriggerAuthenticationProps) {
    super(scope, id);
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'TriggerAuthentication',
      metadata: props.metadata,
      spec: { podIdentity: { provider: props.podIdentity } },
    });
  }
}

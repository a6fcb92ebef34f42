import { ApiObject, JsonPatch } from 'cdk8s';
import type * as kplus from 'cdk8s-plus-27';

/** A container's security context: a non-root numeric user, a read-only root, no way to more rights. */
export function restrictedContainer(user: number): kplus.ContainerSecurityContextProps {
  return { ensureNonRoot: true, user, group: user, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false };
}

/**
 * What cdk8s-plus has no prop for: the RuntimeDefault seccomp profile, and dropping every
 * capability (its Capability enum has no ALL). Call it once the Deployment has all its containers.
 */
export function restrictPods(deployment: kplus.Deployment): void {
  const object = ApiObject.of(deployment);
  object.addJsonPatch(JsonPatch.add('/spec/template/spec/securityContext/seccompProfile', { type: 'RuntimeDefault' }));
  const containers = [...deployment.initContainers.map((_, i) => `initContainers/${i}`), ...deployment.containers.map((_, i) => `containers/${i}`)];
  for (const container of containers) {
    object.addJsonPatch(JsonPatch.add(`/spec/template/spec/${container}/securityContext/capabilities`, { drop: ['ALL'] }));
  }
}

/** Validates recorded Kubernetes objects against the official OpenAPI schema (kubernetes-models). */
import type { Recorded } from "./mocks.ts";

interface Model {
  validate(): void;
}
type ModelClass = new (data: object) => Model;

/** "kubernetes:apps/v1:StatefulSet" -> the module "kubernetes-models/apps/v1/StatefulSet". */
function modelPath(type: string): string {
  const [, groupVersion, kind] = type.split(":");
  const [group, version] = groupVersion!.split("/");
  return group === "core"
    ? `kubernetes-models/${version}/${kind}`
    : `kubernetes-models/${group}/${version}/${kind}`;
}

/** Throws naming the object and the schema errors when one is invalid; returns how many were checked. */
export async function validateKubernetesObjects(resources: Recorded[]): Promise<number> {
  const objects = resources.filter((r) => r.type.startsWith("kubernetes:"));
  for (const object of objects) {
    const kind = object.type.split(":")[2]!;
    const module = (await import(modelPath(object.type))) as Record<string, ModelClass>;
    const Model = module[kind]!;
    try {
      new Model(object.inputs).validate();
    } catch (err) {
      throw new Error(
        `${object.type} ${object.name} does not match the Kubernetes schema: ${(err as Error).message}`,
      );
    }
  }
  return objects.length;
}

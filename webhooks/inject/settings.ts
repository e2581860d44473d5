// Where injection settings come from, in the places upstream keeps them:
// - a directory holding `config` and `values` (ConfigMap istio-sidecar-injector mounted,
//   as istiod reads /var/lib/istio/inject) plus a mesh config file;
// - the cluster: ConfigMaps istio-sidecar-injector[-<rev>] and istio[-<rev>];
// - built-in defaults of the pinned release.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  defaultInjectorConfig,
  defaultMeshConfig,
  defaultValues,
  parseInjectorConfig,
  parseMeshConfig,
  parseValues,
} from "./config.ts";
import type { InjectionSettings } from "./inject.ts";

export interface SettingsOptions {
  revision?: string;
  nativeSidecars?: boolean;
}

export function defaultSettings(options: SettingsOptions = {}): InjectionSettings {
  return {
    injector: defaultInjectorConfig(),
    values: { ...defaultValues(), revision: options.revision ?? "" },
    mesh: defaultMeshConfig(),
    revision: options.revision ?? "",
    nativeSidecars: options.nativeSidecars ?? false,
  };
}

/** Reads `<dir>/config`, `<dir>/values` and the mesh file; a file that is missing keeps the default. */
export function settingsFromFiles(dir: string, meshFile: string | undefined, options: SettingsOptions = {}): InjectionSettings {
  const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : undefined);
  const config = read(join(dir, "config"));
  const values = read(join(dir, "values"));
  const mesh = meshFile ? read(meshFile) : undefined;
  if (meshFile && mesh === undefined) throw new Error(`mesh config file ${meshFile} does not exist`);
  if (config === undefined && values === undefined) throw new Error(`${dir} has neither a config nor a values file`);
  return withSources(config, values, mesh, options);
}

/** The ConfigMaps holding a revision's settings: istio-sidecar-injector[-<rev>] and istio[-<rev>]. */
export function settingsConfigMapNames(revision: string | undefined): { injector: string; mesh: string } {
  const suffix = revision && revision !== "default" ? `-${revision}` : "";
  return { injector: `istio-sidecar-injector${suffix}`, mesh: `istio${suffix}` };
}

interface ConfigMapData {
  data?: Record<string, string>;
}

/** Settings from those ConfigMaps' contents, however they were read (a cache, an API call). */
export function settingsFromConfigMaps(
  namespace: string,
  injector: ConfigMapData | undefined,
  mesh: ConfigMapData | undefined,
  options: SettingsOptions = {},
): InjectionSettings {
  const names = settingsConfigMapNames(options.revision);
  if (!injector) throw new Error(`ConfigMap ${namespace}/${names.injector} not found: is the control plane installed?`);
  return withSources(injector.data?.config, injector.data?.values, mesh?.data?.mesh, options);
}

/** Reads the ConfigMaps the control plane of `revision` uses in `namespace` (one API call each). */
export async function settingsFromCluster(
  kc: KubeConfig,
  namespace: string,
  options: SettingsOptions = {},
): Promise<InjectionSettings> {
  // Imported here so offline users (rigger inject without --kubeconfig) skip loading it.
  const { ApiError, rawClient } = await import("../../kube/raw-client.ts");
  const client = rawClient(kc);
  const names = settingsConfigMapNames(options.revision);
  const read = (name: string) =>
    client.get<ConfigMapData>(`/api/v1/namespaces/${namespace}/configmaps/${name}`).catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    });
  const [injector, mesh] = await Promise.all([read(names.injector), read(names.mesh)]);
  return settingsFromConfigMaps(namespace, injector, mesh, options);
}

function withSources(
  config: string | undefined,
  values: string | undefined,
  mesh: string | undefined,
  options: SettingsOptions,
): InjectionSettings {
  const parsedValues = values !== undefined ? parseValues(values) : defaultValues();
  const revision = options.revision ?? parsedValues.revision ?? "";
  return {
    injector: config !== undefined ? parseInjectorConfig(config) : defaultInjectorConfig(),
    values: parsedValues,
    mesh: mesh !== undefined ? parseMeshConfig(mesh) : defaultMeshConfig(),
    revision,
    nativeSidecars: options.nativeSidecars ?? false,
  };
}

// Proves the validating webhook is wired end to end before it may fail closed: a server-side
// dry-run create of a Gateway that is schema-valid but semantically wrong must come back
// denied by an admission webhook. Dry run: nothing is stored, nothing else sees it.
import { ApiError, type RawClient } from "../kube/raw-client.ts";

export type SelfTestOutcome = "denied" | "admitted" | "no-gateway-crd";

export function selfTestGateway(namespace: string, revisionLabel: string): object {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "Gateway",
    metadata: {
      name: "rigger-validation-self-test",
      namespace,
      labels: { "istio.io/rev": revisionLabel },
    },
    spec: { servers: [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["not a valid host!"] }] },
  };
}

export async function runValidationSelfTest(
  client: RawClient,
  namespace: string,
  revisionLabel: string,
): Promise<SelfTestOutcome> {
  try {
    await client.create(
      `/apis/networking.istio.io/v1/namespaces/${namespace}/gateways?dryRun=All`,
      selfTestGateway(namespace, revisionLabel),
    );
    return "admitted";
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 404) return "no-gateway-crd";
    if (/admission webhook .* denied the request/.test(err.message)) return "denied";
    throw err;
  }
}

// A client of the mesh CA for e2e tests: CSRs, ServiceAccount tokens, and
// IstioCertificateService/CreateCertificate over gRPC with TLS verified against a root.
import "reflect-metadata";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { RawClient } from "../../kube/raw-client.ts";
import { createCertificateRequest } from "../../pki/certificates.ts";

const PROTO = fileURLToPath(new URL("../../istiod/ca/ca.proto", import.meta.url));
/** A PEM CSR for a fresh P-256 key; `uri` is what the CSR asks for (the CA must ignore it). */
export function csrPem(uri = "spiffe://cluster.local/ns/istio-system/sa/istiod"): Promise<string> {
  return createCertificateRequest(uri, "e2e");
}

/** A ServiceAccount token from the TokenRequest API. */
export async function serviceAccountToken(
  client: RawClient,
  namespace: string,
  serviceAccount: string,
  audience = "istio-ca",
): Promise<string> {
  const response = await client.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: [audience], expirationSeconds: 600 } },
  );
  return response.status.token;
}

export interface CaClient {
  /** `deadlineMs`: the call's gRPC deadline (none when absent). */
  createCertificate(csr: string, token: string | undefined, validitySeconds?: number, deadlineMs?: number): Promise<string[]>;
  close(): void;
}

export function caClient(address: string, rootPem: string, serverName = "istiod.istio-system.svc"): CaClient {
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true });
  const proto = grpc.loadPackageDefinition(definition) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  const client = new proto.istio.v1.auth.IstioCertificateService(address, grpc.credentials.createSsl(Buffer.from(rootPem)), {
    "grpc.ssl_target_name_override": serverName,
  }) as unknown as grpc.Client & {
    CreateCertificate(
      request: object,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: (err: grpc.ServiceError | null, response?: { cert_chain: string[] }) => void,
    ): void;
  };
  return {
    createCertificate: (csr, token, validitySeconds = 0, deadlineMs) =>
      new Promise((resolve, reject) => {
        const metadata = new grpc.Metadata();
        if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
        const options = deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
        client.CreateCertificate({ csr, validity_duration: validitySeconds }, metadata, options, (err, response) =>
          err ? reject(err) : resolve(response?.cert_chain ?? []),
        );
      }),
    close: () => client.close(),
  };
}

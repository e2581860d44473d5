// A fastify HTTPS server on 127.0.0.1 with its own throwaway CA, for tests whose
// webhook configurations point the apiserver at `clientConfig.url`.
import Fastify, { type FastifyInstance } from "fastify";
import { createCertificateAuthority, issueCertificate } from "../../pki/certificates.ts";

export interface TestWebhookServer {
  app: FastifyInstance;
  /** https://127.0.0.1:<port> */
  baseUrl: string;
  /** base64 of the CA PEM, as `clientConfig.caBundle` wants it. */
  caBundle: string;
  close(): Promise<void>;
}

/** `routes` registers handlers before the server starts listening on a free port. */
export async function startTestWebhookServer(routes: (app: FastifyInstance) => void): Promise<TestWebhookServer> {
  const ca = await createCertificateAuthority("rigger-e2e-webhook-ca", 1);
  const serving = await issueCertificate(ca, {
    commonName: "rigger-e2e-webhook",
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
    validDays: 1,
  });
  const app = Fastify({ https: { cert: serving.certPem, key: serving.keyPem } });
  routes(app);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("webhook server has no TCP address");
  return {
    app,
    baseUrl: `https://127.0.0.1:${address.port}`,
    caBundle: Buffer.from(ca.certPem).toString("base64"),
    close: () => app.close(),
  };
}

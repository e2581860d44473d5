// A fastify HTTPS server on 127.0.0.1 with its own throwaway CA, for tests whose
// webhook configurations point the apiserver at `clientConfig.url`.
import Fastify, { type FastifyInstance } from "fastify";
import { loopbackServingCertificate } from "../../pki/certificates.ts";

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
  const serving = await loopbackServingCertificate("rigger-e2e-webhook");
  const app = Fastify({ https: { cert: serving.certPem, key: serving.keyPem } });
  routes(app);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("webhook server has no TCP address");
  return {
    app,
    baseUrl: `https://127.0.0.1:${address.port}`,
    caBundle: Buffer.from(serving.caPem).toString("base64"),
    close: () => app.close(),
  };
}

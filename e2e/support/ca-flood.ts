// A flood of garbage certificate requests, run as its own process so it does not share an
// event loop with the server or the test:
//   node ca-flood.ts <host:port> <root.pem> <rate/s> <seconds> <server name>
// It speaks gRPC over raw HTTP/2 (node:http2, one frame built once), as an attacker would,
// which costs far less per call than a gRPC client library, so one core can send thousands a
// second. Three in four tokens are random strings, one in four is shaped like a JWT (each
// different, so none can be answered from a cache). Every call carries a 2 s grpc-timeout.
// It prints one JSON line: what it sent, the rate achieved, and the gRPC status codes it got.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ClientHttp2Session, connect } from "node:http2";
import { status } from "@grpc/grpc-js";

const [address = "", rootFile = "", rateText = "5000", secondsText = "10", serverName = ""] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
const ca = readFileSync(rootFile, "utf8");

// CreateCertificate request, protobuf: field 1 (csr, string) = "garbage". Framed: flag 0, length, message.
const message = Buffer.concat([Buffer.from([0x0a, 7]), Buffer.from("garbage")]);
const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);

const sessions: ClientHttp2Session[] = Array.from({ length: 4 }, () =>
  connect(`https://${address}`, { ca, servername: serverName, checkServerIdentity: () => undefined }),
);
for (const s of sessions) s.on("error", () => {});
const codes: Record<string, number> = {};
let sent = 0;
let done = 0;
const count = (code: string) => {
  codes[code] = (codes[code] ?? 0) + 1;
  done++;
};

const garbage = (i: number) => {
  if (i % 4 !== 0) return randomBytes(24).toString("base64url");
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "RS256" })}.${part({ sub: randomBytes(8).toString("hex") })}.${randomBytes(32).toString("base64url")}`;
};

function send(n: number): void {
  const session = sessions[n % sessions.length] as ClientHttp2Session;
  let stream: ReturnType<ClientHttp2Session["request"]>;
  try {
    stream = session.request({
      ":method": "POST",
      ":path": "/istio.v1.auth.IstioCertificateService/CreateCertificate",
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "2S",
      authorization: `Bearer ${garbage(n)}`,
    });
  } catch {
    count("CLIENT_REFUSED");
    return;
  }
  let code: string | undefined;
  const timer = setTimeout(() => stream.close(), 2_000);
  const headers = (h: Record<string, unknown>) => {
    if (h["grpc-status"] !== undefined) code = status[Number(h["grpc-status"])] ?? String(h["grpc-status"]);
  };
  stream.on("response", headers);
  stream.on("trailers", headers);
  stream.on("data", () => {});
  stream.on("error", () => {});
  stream.on("close", () => {
    clearTimeout(timer);
    count(code ?? (stream.rstCode ? "RESET" : "DEADLINE_EXCEEDED"));
  });
  stream.end(frame);
}

const started = Date.now();
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const elapsed = Date.now() - started;
    if (elapsed >= seconds * 1000) {
      clearInterval(timer);
      resolve();
      return;
    }
    // Catch up to where the schedule says we should be.
    const due = Math.floor((elapsed / 1000) * rate) - sent;
    for (let i = 0; i < due; i++) send(sent++);
  }, 5);
});
const sendSeconds = (Date.now() - started) / 1000;
const deadline = Date.now() + 5_000;
while (done < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
for (const s of sessions) s.close();
console.log(JSON.stringify({ sent, answered: done, seconds: sendSeconds, rate: Math.round(sent / sendSeconds), codes }));
process.exit(0);

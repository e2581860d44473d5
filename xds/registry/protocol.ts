// A Service port's protocol as upstream infers it (pkg/config/kube ConvertProtocol): UDP from
// the port's protocol; else appProtocol (with Kubernetes' kubernetes.io/h2c, ws and wss), else
// the port name's prefix before "-" ("http-web" is HTTP, "grpc-web..." gRPC-Web); unknown
// names are sniffed ("UnsupportedProtocol"), except on a few well-known TCP ports.

export type Protocol =
  | "HTTP"
  | "HTTP2"
  | "HTTP_PROXY"
  | "HTTPS"
  | "GRPC"
  | "GRPC-Web"
  | "TCP"
  | "TLS"
  | "UDP"
  | "Mongo"
  | "Redis"
  | "MySQL"
  | "UnsupportedProtocol";

const BY_NAME: Record<string, Protocol> = {
  tcp: "TCP",
  udp: "UDP",
  grpc: "GRPC",
  "grpc-web": "GRPC-Web",
  http: "HTTP",
  http_proxy: "HTTP_PROXY",
  http2: "HTTP2",
  https: "HTTPS",
  tls: "TLS",
  mongo: "Mongo",
  redis: "Redis",
  mysql: "MySQL",
};

/** SMTP, DNS, MySQL, MongoDB: TCP when the name says nothing. */
const WELL_KNOWN_TCP_PORTS = new Set([25, 53, 3306, 27017]);

export function parseProtocol(name: string): Protocol {
  return BY_NAME[name.toLowerCase()] ?? "UnsupportedProtocol";
}

export function servicePortProtocol(port: { port: number; name?: string; protocol?: string; appProtocol?: string }): Protocol {
  if (port.protocol === "UDP") return "UDP";
  let name = port.name ?? "";
  if (port.appProtocol !== undefined) {
    name = port.appProtocol;
    if (name === "kubernetes.io/h2c") return "HTTP2";
    if (name === "kubernetes.io/ws") return "HTTP";
    if (name === "kubernetes.io/wss") return "HTTPS";
  }
  if (name.toLowerCase().startsWith("grpc-web")) return "GRPC-Web";
  const dash = name.indexOf("-");
  const parsed = parseProtocol(dash >= 0 ? name.slice(0, dash) : name);
  if (parsed === "UnsupportedProtocol" && WELL_KNOWN_TCP_PORTS.has(port.port)) return "TCP";
  return parsed;
}

export const isHttp = (p: Protocol) => p === "HTTP" || p === "HTTP2" || p === "HTTP_PROXY" || p === "GRPC" || p === "GRPC-Web";
export const isHttp2 = (p: Protocol) => p === "HTTP2" || p === "GRPC" || p === "GRPC-Web";
export const isTcp = (p: Protocol) =>
  p === "TCP" || p === "HTTPS" || p === "TLS" || p === "Mongo" || p === "Redis" || p === "MySQL";
export const isSniffed = (p: Protocol) => p === "UnsupportedProtocol";

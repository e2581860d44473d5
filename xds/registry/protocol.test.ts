import { describe, expect, test } from "vitest";
import { servicePortProtocol } from "./protocol.ts";

describe("servicePortProtocol, as upstream's ConvertProtocol", () => {
  test.each([
    [{ port: 80, name: "http" }, "HTTP"],
    [{ port: 80, name: "http-web" }, "HTTP"],
    [{ port: 80, name: "HTTP2-x" }, "HTTP2"],
    [{ port: 9000, name: "grpc" }, "GRPC"],
    [{ port: 9000, name: "grpc-web-ui" }, "GRPC-Web"],
    [{ port: 9000, name: "tcp-db" }, "TCP"],
    [{ port: 443, name: "https" }, "HTTPS"],
    [{ port: 8080, name: "web" }, "UnsupportedProtocol"],
    [{ port: 8080 }, "UnsupportedProtocol"],
    [{ port: 3306 }, "TCP"],
    [{ port: 3306, name: "mysql" }, "MySQL"],
    [{ port: 53, protocol: "UDP", name: "dns" }, "UDP"],
    [{ port: 8080, name: "tcp", appProtocol: "http" }, "HTTP"],
    [{ port: 8080, name: "http", appProtocol: "kubernetes.io/h2c" }, "HTTP2"],
    [{ port: 8080, appProtocol: "kubernetes.io/ws" }, "HTTP"],
    [{ port: 8443, appProtocol: "kubernetes.io/wss" }, "HTTPS"],
    [{ port: 8080, name: "http", appProtocol: "unknown" }, "UnsupportedProtocol"],
  ])("%j is %s", (port, protocol) => {
    expect(servicePortProtocol(port)).toBe(protocol);
  });
});

import { describe, expect, test } from "vitest";
import { composeMtls, type PeerAuthentication, portMode } from "./peer-authentication.ts";

const pa = (
  namespace: string,
  mode: string | undefined,
  extra: Partial<PeerAuthentication["spec"]> = {},
  created = "2026-01-01T00:00:00Z",
  name = "p",
) => ({
  metadata: { name, namespace, creationTimestamp: created },
  spec: { ...(mode ? { mtls: { mode } } : {}), ...extra },
});
const web = { namespace: "shop", labels: { app: "web" } };

describe("composeMtls, as upstream's ComposePeerAuthentication", () => {
  test("nothing set: PERMISSIVE", () => {
    expect(composeMtls([], "istio-system", web).mode).toBe("PERMISSIVE");
  });
  test("mesh, then namespace, then workload; UNSET inherits", () => {
    const mesh = pa("istio-system", "STRICT");
    expect(composeMtls([mesh], "istio-system", web).mode).toBe("STRICT");
    expect(composeMtls([mesh, pa("shop", "DISABLE")], "istio-system", web).mode).toBe("DISABLE");
    expect(composeMtls([mesh, pa("shop", "UNSET")], "istio-system", web).mode).toBe("STRICT");
    const workload = pa("shop", "PERMISSIVE", { selector: { matchLabels: { app: "web" } } });
    expect(composeMtls([mesh, pa("shop", "DISABLE"), workload], "istio-system", web).mode).toBe("PERMISSIVE");
    const other = pa("shop", "PERMISSIVE", { selector: { matchLabels: { app: "db" } } });
    expect(composeMtls([mesh, other], "istio-system", web).mode).toBe("STRICT");
  });
  test("the oldest of several at one level wins", () => {
    const older = pa("shop", "DISABLE", {}, "2026-01-01T00:00:00Z", "b");
    const newer = pa("shop", "STRICT", {}, "2026-02-01T00:00:00Z", "a");
    expect(composeMtls([newer, older], "istio-system", web).mode).toBe("DISABLE");
  });
  test("port level, on a workload policy only; UNSET takes the workload's mode", () => {
    const workload = pa("shop", "STRICT", {
      selector: { matchLabels: { app: "web" } },
      portLevelMtls: { "8080": { mode: "DISABLE" }, "9090": { mode: "UNSET" } },
    });
    const composed = composeMtls([workload], "istio-system", web);
    expect([portMode(composed, 8080), portMode(composed, 9090), portMode(composed, 7070)]).toEqual([
      "DISABLE",
      "STRICT",
      "STRICT",
    ]);
  });
});

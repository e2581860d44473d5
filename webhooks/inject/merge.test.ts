import { expect, test } from "vitest";
import { strategicMergePod } from "./merge.ts";

test("containers merge by name; new items come before items only the pod has, as Kubernetes orders them", () => {
  const pod = { spec: { containers: [{ name: "app", image: "a", env: [{ name: "X", value: "1" }] }] } };
  const overlay = {
    spec: {
      containers: [
        { name: "proxy", image: "p" },
        { name: "app", env: [{ name: "Y", value: "2" }] },
      ],
    },
  };
  expect(strategicMergePod(pod, overlay)).toEqual({
    spec: {
      containers: [
        { name: "proxy", image: "p" },
        {
          name: "app",
          image: "a",
          env: [
            { name: "Y", value: "2" },
            { name: "X", value: "1" },
          ],
        },
      ],
    },
  });
});

test("a pod-only item stays before a patched item it preceded", () => {
  const pod = {
    spec: {
      volumes: [
        { name: "mine", emptyDir: {} },
        { name: "shared", emptyDir: {} },
      ],
    },
  };
  const overlay = { spec: { volumes: [{ name: "new" }, { name: "shared", configMap: { name: "c" } }] } };
  const names = strategicMergePod(pod, overlay).spec.volumes.map((v: { name: string }) => v.name);
  expect(names).toEqual(["new", "mine", "shared"]);
});

test("a patched volume keeps only the fields the patch names (retainKeys)", () => {
  const pod = { spec: { volumes: [{ name: "v", hostPath: { path: "/x" } }] } };
  const out = strategicMergePod(pod, { spec: { volumes: [{ name: "v", emptyDir: { medium: "Memory" } }] } });
  expect(out.spec.volumes).toEqual([{ name: "v", emptyDir: { medium: "Memory" } }]);
});

test("lists without a merge key are replaced, maps merge, null deletes, inputs are not changed", () => {
  const pod = {
    metadata: { labels: { a: "1", b: "2" } },
    spec: { containers: [{ name: "c", args: ["x", "y"], ports: [{ containerPort: 80, name: "http" }] }] },
  };
  const before = structuredClone(pod);
  const out = strategicMergePod(pod, {
    metadata: { labels: { b: null, c: "3" } },
    spec: { containers: [{ name: "c", args: ["z"], ports: [{ containerPort: 80, protocol: "TCP" }, { containerPort: 81 }] }] },
  });
  expect(out).toEqual({
    metadata: { labels: { a: "1", c: "3" } },
    spec: {
      containers: [
        { name: "c", args: ["z"], ports: [{ containerPort: 80, name: "http", protocol: "TCP" }, { containerPort: 81 }] },
      ],
    },
  });
  expect(pod).toEqual(before);
});

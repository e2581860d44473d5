// `rigger tag list`: revision tags, the revision each points at, and the namespaces using it
// (istio.io/rev=<tag>; istio-injection=enabled counts for `default`). Everything else about
// tags goes through kubectl and IstioRevisionTag resources.
import { parseArgs } from "node:util";
import { namespacesUsing } from "../controllers/revisions/usage.ts";
import { rawClient } from "../kube/raw-client.ts";
import { kubeConfig, table } from "./table.ts";

export const usage = `usage: rigger tag list [--kubeconfig FILE]

Lists IstioRevisionTags: TAG, REVISION, NAMESPACES.
Create or move a tag with kubectl: an IstioRevisionTag whose spec.targetRef names an Istio
(follows its active revision) or an IstioRevision (pinned).
`;

interface Tag {
  metadata: { name: string };
  spec: { targetRef: { kind: string; name: string } };
  status?: { istioRevision?: string };
}

interface Namespace {
  metadata: { name: string; labels?: Record<string, string> };
}

/** The table's rows: one per tag, sorted by name. */
export function tagRows(tags: Tag[], namespaces: Namespace[]): [string, string, string][] {
  return [...tags]
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    .map((tag) => {
      const name = tag.metadata.name;
      const using = namespacesUsing(
        name,
        namespaces.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels ?? {} })),
      );
      const revision = tag.status?.istioRevision ?? `(${tag.spec.targetRef.kind} ${tag.spec.targetRef.name}: unresolved)`;
      return [name, revision, using.join(",")];
    });
}

export function formatTable(rows: string[][]): string {
  return table(["TAG", "REVISION", "NAMESPACES"], rows);
}

export async function runTag(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { kubeconfig: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help || positionals[0] !== "list") {
    (values.help ? process.stdout : process.stderr).write(usage);
    return values.help ? 0 : 2;
  }
  const client = rawClient(kubeConfig(values.kubeconfig));
  const tags = await client.get<{ items: Tag[] }>("/apis/operator.rigger.dev/v1alpha1/istiorevisiontags");
  const namespaces = await client.get<{ items: Namespace[] }>("/api/v1/namespaces");
  process.stdout.write(formatTable(tagRows(tags.items, namespaces.items)));
  return 0;
}

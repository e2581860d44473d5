// What the CLI's cluster commands share: plain-text tables as kubectl and istioctl print them,
// and the kubeconfig from --kubeconfig or the usual places.
import { KubeConfig } from "@kubernetes/client-node";

/** Columns padded to their widest cell and separated by `gap` spaces; no trailing blanks. */
export function table(header: string[], rows: string[][], gap = 3): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return `${all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join(" ".repeat(gap))
        .trimEnd(),
    )
    .join("\n")}\n`;
}

/** --kubeconfig FILE, else $KUBECONFIG or ~/.kube/config or the in-cluster account. */
export function kubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

#!/usr/bin/env node
// The `rigger` CLI: one entry point, one subcommand per program (see DESIGN.md).
// Subcommands live in cmd/commands.ts; later features add theirs there.
import { commands } from "./commands.ts";

const [name, ...args] = process.argv.slice(2);
const command = commands.find((c) => c.name === name);

if (!name || name === "help" || name === "--help" || name === "-h") {
  process.stdout.write(usage());
} else if (!command) {
  process.stderr.write(`rigger: unknown command "${name}"\n\n${usage()}`);
  process.exitCode = 2;
} else {
  try {
    process.exitCode = await command.run(args);
  } catch (err) {
    process.stderr.write(`rigger ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: rigger <command> [flags]\n\ncommands:\n${lines.join("\n")}\n`;
}

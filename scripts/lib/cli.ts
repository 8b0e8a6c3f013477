/** Command-line options for the scripts: --help prints the usage; a bad option prints it and exits 1. */
import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCli<const O extends Options>(options: O, usage: string) {
  let parsed;
  try {
    parsed = parseArgs({ options });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${usage}`);
    process.exit(1);
  }
  return parsed.values;
}

/** Handles -h / --help before the real parse (which would refuse it as unknown). */
export function exitOnHelp(usage: string): void {
  if (process.argv.slice(2).some((a) => a === "--help" || a === "-h")) {
    console.log(usage);
    process.exit(0);
  }
}

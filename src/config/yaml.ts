/**
 * The `yaml` library, loaded on first use. A static import evaluates the whole library at
 * startup, about 2 ms of every cold pmctl, most of which never parse YAML (they find the
 * socket through cli/quick-master.ts; issue 6, CLI latency). `require` inside a function is
 * bundled as a lazy initializer, so commands that do not parse pay nothing. Config code
 * imports the YAML helpers from here, never from "yaml" directly.
 */
import type * as Yaml from "yaml";
export type { Alias, Document, LineCounter, Node, Pair, Scalar, YAMLMap } from "yaml";

let lib: typeof Yaml | null = null;
const Y = (): typeof Yaml => (lib ??= require("yaml") as typeof Yaml);

export const isMap = ((n: unknown) => Y().isMap(n)) as typeof Yaml.isMap;
export const isSeq = ((n: unknown) => Y().isSeq(n)) as typeof Yaml.isSeq;
export const isScalar = ((n: unknown) => Y().isScalar(n)) as typeof Yaml.isScalar;
export const isPair = ((n: unknown) => Y().isPair(n)) as typeof Yaml.isPair;
export const isAlias = ((n: unknown) => Y().isAlias(n)) as typeof Yaml.isAlias;
export const parseDocument = ((...a: Parameters<typeof Yaml.parseDocument>) => Y().parseDocument(...a)) as typeof Yaml.parseDocument;
export const newLineCounter = (): Yaml.LineCounter => new (Y().LineCounter)();
export const newDocument = (value: unknown): Yaml.Document => new (Y().Document)(value);
export const stringifyYaml = ((...a: Parameters<typeof Yaml.stringify>) => Y().stringify(...a)) as typeof Yaml.stringify;

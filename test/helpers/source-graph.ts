import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

// The facts test/style.test.ts checks, read from the TypeScript sources with the compiler's own
// parser (no type checking): who imports whom, and how long each function is. A regex would
// miss a multi-line import or a function written as an arrow in an object literal.

/** SourceImport is one module reference in a file, static, type-only or dynamic. */
export interface SourceImport {
  /** specifier as written: '../wal/decoder.js', 'node:fs', 'typescript'. */
  readonly specifier: string;
  /** resolved is the root-relative .ts path of a relative specifier, else undefined. */
  readonly resolved: string | undefined;
  /** typeOnly: erased at compile time (`import type`, `export type`, `import('x').T`). */
  readonly typeOnly: boolean;
  /** dynamic: an `import(...)` call, evaluated at run time. */
  readonly dynamic: boolean;
  /** line is 1-based. */
  readonly line: number;
}

/** SourceFunction is one function-like body: its name as a reader would look it up. */
export interface SourceFunction {
  /** name: `f`, `Class.method`, `Class.constructor`, `ctx.ep.onMessage(…)` (a callback),
   * `outer/<anonymous at 12>`. */
  readonly name: string;
  /** line is the 1-based first line, lines the count from first to last line inclusive. */
  readonly line: number;
  readonly lines: number;
}

/** SourceExport is one exported top-level declaration and the start of its doc comment. */
export interface SourceExport {
  /** names: one for a function, class, interface, type or enum; each of `export const a, b`. */
  readonly names: readonly string[];
  readonly line: number;
  /** doc is the text of the last `/** … *\/` comment right before it, or undefined. */
  readonly doc: string | undefined;
}

/** SourceFile is one parsed .ts file, path relative to the repository root with '/'. */
export interface SourceFile {
  readonly path: string;
  readonly text: string;
  readonly imports: readonly SourceImport[];
  readonly functions: readonly SourceFunction[];
  readonly exports: readonly SourceExport[];
}

/** tsFilesUnder lists every .ts file below dir (absolute paths), sorted for stable output. */
export function tsFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFilesUnder(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** readSources parses every .ts file below each of dirs (relative to root). */
export function readSources(root: string, dirs: readonly string[]): SourceFile[] {
  const out: SourceFile[] = [];
  for (const d of dirs) {
    for (const abs of tsFilesUnder(join(root, d))) out.push(parseSource(root, abs));
  }
  return out;
}

/** toPosix turns a root-relative OS path into the '/' form used in messages and allow-lists. */
function toPosix(p: string): string {
  return p.split(sep).join('/');
}

/** parseSource reads one file and lists its imports and functions. */
export function parseSource(root: string, abs: string): SourceFile {
  return parseText(root, abs, readFileSync(abs, 'utf8'));
}

/** parseText lists the imports and functions of text, as if it were the file at abs. */
export function parseText(root: string, abs: string, text: string): SourceFile {
  const sf = ts.createSourceFile(abs, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const path = toPosix(relative(root, abs));
  const lineOf = (pos: number): number => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const resolveSpec = (spec: string): string | undefined => {
    if (!spec.startsWith('.')) return undefined;
    const target = resolve(dirname(abs), spec.replace(/\.js$/, '.ts'));
    return toPosix(relative(root, target));
  };
  const imports: SourceImport[] = [];
  const add = (spec: string, typeOnly: boolean, dynamic: boolean, node: ts.Node): void => {
    imports.push({
      specifier: spec, resolved: resolveSpec(spec), typeOnly, dynamic,
      line: lineOf(node.getStart(sf)),
    });
  };
  const functions: SourceFunction[] = [];
  const visit = (node: ts.Node): void => {
    collectImport(node, add);
    const fn = functionOf(node, sf, lineOf);
    if (fn !== undefined) functions.push(fn);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  const exports = sf.statements.flatMap((st) => exportOf(st, sf, text, lineOf));
  return { path, text, imports, functions, exports };
}

/** exportOf describes st if it is an exported declaration (a re-export list is not). */
function exportOf(st: ts.Statement, sf: ts.SourceFile, text: string,
  lineOf: (pos: number) => number): SourceExport[] {
  const modifiers = ts.canHaveModifiers(st) ? ts.getModifiers(st) : undefined;
  if (modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) !== true) return [];
  let names: string[];
  if (ts.isVariableStatement(st)) {
    names = st.declarationList.declarations.map((d) => d.name.getText(sf));
  } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) ||
    ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st)) &&
    st.name !== undefined) {
    names = [st.name.text];
  } else {
    return [];
  }
  const docs = (ts.getLeadingCommentRanges(text, st.getFullStart()) ?? [])
    .filter((r) => text.startsWith('/**', r.pos));
  const last = docs.at(-1);
  const doc = last === undefined ? undefined
    : text.slice(last.pos + 3, last.end - 2).replace(/^[\s*]+/, '');
  return [{ names, line: lineOf(st.getStart(sf)), doc }];
}

type AddImport = (spec: string, typeOnly: boolean, dynamic: boolean, node: ts.Node) => void;

/** collectImport records node if it references a module. */
function collectImport(node: ts.Node, add: AddImport): void {
  if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
    const clause = node.importClause;
    // `import { type A, type B } from` is erased too when every named binding is a type.
    const named = clause?.namedBindings;
    const allTypes = clause !== undefined && clause.name === undefined &&
      named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 &&
      named.elements.every((e) => e.isTypeOnly);
    add(node.moduleSpecifier.text, clause?.isTypeOnly === true || allTypes, false, node);
  } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined &&
    ts.isStringLiteral(node.moduleSpecifier)) {
    add(node.moduleSpecifier.text, node.isTypeOnly, false, node);
  } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) &&
    ts.isStringLiteral(node.argument.literal)) {
    add(node.argument.literal.text, true, false, node);
  } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
    const arg = node.arguments[0];
    add(arg !== undefined && ts.isStringLiteralLike(arg) ? arg.text : '<computed>', false, true,
      node);
  } else if (ts.isImportEqualsDeclaration(node) &&
    ts.isExternalModuleReference(node.moduleReference) &&
    ts.isStringLiteral(node.moduleReference.expression)) {
    add(node.moduleReference.expression.text, node.isTypeOnly, false, node);
  }
}

/** functionOf describes node if it is a function with a body, else undefined. */
function functionOf(node: ts.Node, sf: ts.SourceFile,
  lineOf: (pos: number) => number): SourceFunction | undefined {
  if (!ts.isFunctionLike(node) || !('body' in node) || node.body === undefined) return undefined;
  const line = lineOf(node.getStart(sf));
  const lines = lineOf(node.getEnd()) - line + 1;
  return { name: functionName(node, sf, lineOf), line, lines };
}

/** functionName names a function as its reader would search for it. */
function functionName(node: ts.Node, sf: ts.SourceFile,
  lineOf: (pos: number) => number): string {
  const own = ownName(node, sf);
  if (own !== undefined) {
    const cls = node.parent;
    if ((ts.isClassLike(cls)) && cls.name !== undefined) return `${cls.name.text}.${own}`;
    return own;
  }
  // An anonymous function: a callback is named after the call it is passed to
  // (`ctx.ep.onMessage(…)`), anything else after its line; either within the nearest
  // function around it.
  const call = node.parent;
  const here = call !== undefined && ts.isCallExpression(call) &&
    call.arguments.some((a) => a === node)
    ? `${call.expression.getText(sf).replace(/\s+/g, '')}(…)`
    : `<anonymous at ${lineOf(node.getStart(sf))}>`;
  let p: ts.Node | undefined = node.parent;
  while (p !== undefined && !ts.isFunctionLike(p)) p = p.parent;
  return p === undefined ? here : `${functionName(p, sf, lineOf)}/${here}`;
}

/** ownName is the name a declaration or its binding gives a function, if any. */
function ownName(node: ts.Node, sf: ts.SourceFile): string | undefined {
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name !== undefined && (ts.isFunctionDeclaration(node) ||
    ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node) ||
    ts.isFunctionExpression(node))) {
    return named.name.getText(sf);
  }
  const parent = node.parent;
  if ((ts.isArrowFunction(node) || ts.isFunctionExpression(node)) && parent !== undefined) {
    if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) ||
      ts.isPropertyDeclaration(parent)) {
      return parent.name.getText(sf);
    }
  }
  return undefined;
}

/** ImportEdge is one resolved import between two files of the graph. */
export interface ImportEdge {
  readonly from: string;
  readonly to: string;
  readonly typeOnly: boolean;
  readonly line: number;
}

/** importEdges lists the edges between files of sources (imports that leave the set drop). */
export function importEdges(sources: readonly SourceFile[],
  opts: { readonly types: boolean }): ImportEdge[] {
  const known = new Set(sources.map((s) => s.path));
  const edges: ImportEdge[] = [];
  for (const s of sources) {
    for (const i of s.imports) {
      if (i.resolved === undefined || !known.has(i.resolved)) continue;
      if (i.typeOnly && !opts.types) continue;
      edges.push({ from: s.path, to: i.resolved, typeOnly: i.typeOnly, line: i.line });
    }
  }
  return edges;
}

/**
 * importCycles finds every strongly connected component of more than one file (or a file that
 * imports itself) with Tarjan's algorithm, and returns one cycle through each, as the list of
 * files `a → b → … → a`. An empty result means the graph is acyclic.
 */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.from) ?? [];
    list.push(e.to);
    next.set(e.from, list);
    if (!next.has(e.to)) next.set(e.to, []);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const strongConnect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (;;) {
      const w = stack.pop();
      if (w === undefined) break;
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    const selfLoop = (next.get(v) ?? []).includes(v);
    if (component.length > 1 || selfLoop) components.push(component);
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) strongConnect(v);
  return components.map((c) => cycleWithin(new Set(c), next));
}

/** cycleWithin returns one cycle through the smallest-named file of a component. */
function cycleWithin(component: Set<string>, next: Map<string, string[]>): string[] {
  const start = [...component].sort()[0] ?? '';
  // Breadth-first from start, back to start, within the component: a shortest cycle.
  const from = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head] ?? '';
    for (const w of next.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [v];
        for (let u = from.get(v); u !== undefined; u = from.get(u)) path.unshift(u);
        if (path[0] !== start) path.unshift(start);
        return [...path, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/**
 * table: the ASCII tables of `etcdctl -w table`, as olekukonko/tablewriter draws them with
 * etcdctl's settings: headers upper-cased and centred, cells right-aligned, one space of
 * padding, and cells wider than 30 columns wrapped at spaces (minimum raggedness):
 *
 *   +------------------+---------+
 *   |        ID        | STATUS  |
 *   +------------------+---------+
 *   | 8e9e05c52164694d | started |
 *   +------------------+---------+
 */

/** tableCellWidthMax is tablewriter's MaxColWidth: wider cells are wrapped. */
export const tableCellWidthMax = 30;
/** wrapPenalty is tablewriter's penalty for a wrapped line longer than the limit. */
const wrapPenalty = 100_000;

/** renderTable draws a header and rows as tablewriter does. */
export function renderTable(header: string[], rows: string[][]): string {
  const head = header.map((h) => h.replace(/[_.]/g, ' ').trim().toUpperCase());
  const cells = rows.map((r) => r.map(wrapCell));
  const widths = head.map((h, c) =>
    Math.max(width(h), ...cells.map((r) => Math.max(0, ...(r[c] ?? ['']).map(width)))),
  );
  const border = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+\n';
  const line = (parts: string[]) => '| ' + parts.join(' | ') + ' |\n';
  let out = border + line(head.map((h, c) => center(h, widths[c]!))) + border;
  for (const r of cells) {
    const height = Math.max(1, ...r.map((x) => x.length));
    for (let i = 0; i < height; i++)
      out += line(widths.map((w, c) => ' '.repeat(w - width(r[c]?.[i] ?? '')) + (r[c]?.[i] ?? '')));
  }
  return out + border;
}

function width(s: string): number {
  return [...s].length;
}

function center(s: string, w: number): string {
  const gap = w - width(s);
  const left = Math.floor(gap / 2);
  return ' '.repeat(left) + s + ' '.repeat(gap - left);
}

/** wrapCell splits a cell wider than tableCellWidthMax into lines at spaces. */
function wrapCell(s: string): string[] {
  if (width(s) <= tableCellWidthMax) return [s];
  const words = s.replace(/\n/g, ' ').split(' ');
  const limit = Math.max(tableCellWidthMax, ...words.map(width));
  return wrapWords(words, limit).map((ws) => ws.join(' '));
}

/** wrapWords breaks words into lines of at most `limit` columns with the least raggedness
 * (the sum of squared slack), as tablewriter's WrapWords does. */
function wrapWords(words: string[], limit: number): string[][] {
  const n = words.length;
  const len = (i: number, j: number) =>
    words.slice(i, j + 1).reduce((a, w) => a + width(w), 0) + (j - i);
  const cost = new Array<number>(n).fill(Number.MAX_SAFE_INTEGER);
  const brk = new Array<number>(n).fill(n);
  for (let i = n - 1; i >= 0; i--) {
    if (len(i, n - 1) <= limit) {
      cost[i] = 0;
      brk[i] = n;
      continue;
    }
    for (let j = i + 1; j < n; j++) {
      const d = limit - len(i, j - 1);
      let c = d * d + cost[j]!;
      if (len(i, j - 1) > limit) c += wrapPenalty;
      if (c < cost[i]!) {
        cost[i] = c;
        brk[i] = j;
      }
    }
  }
  const lines: string[][] = [];
  for (let i = 0; i < n; i = brk[i]!) lines.push(words.slice(i, brk[i]));
  return lines;
}

/**
 * svg: hand-written SVG bar charts for docs/bench-*.svg (no dependency). Pure: data in,
 * markup out.
 *
 * A chart is horizontal grouped bars: one group per workload, one bar per series (MyEtcd,
 * etcd, …), on a linear or a log-10 axis (throughputs and latencies span decades).
 */

/** BarGroup is one labelled group of bars; values line up with BarChart.series, and a
 * missing or non-positive value (on a log axis) draws no bar and says "n/a". */
export interface BarGroup {
  label: string;
  values: (number | undefined)[];
}

/** BarChart describes a chart. */
export interface BarChart {
  title: string;
  /** axis label, e.g. "ops/s" or "ms" */
  unit: string;
  series: string[];
  groups: BarGroup[];
  log: boolean;
  /** subtitle: the machine and command, small */
  note?: string;
}

/** palette colours the series in order. */
export const palette = ['#2b6cb0', '#c05621', '#63b3ed', '#f6ad55', '#38a169', '#805ad5'];

/** escapeXml makes text safe inside SVG text and attributes. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) =>
    ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Axis maps values to [0, 1] along the bar direction, with the ticks to draw. */
export interface Axis {
  ticks: number[];
  /** fraction places a value along the axis (0 = axis start); values beyond are clamped */
  fraction(v: number): number;
}

/** axisFor builds a log-10 axis from the power of ten at or below the smallest positive
 * value to the one at or above the largest, or a linear axis from 0 to a 1-2-5 rounded
 * maximum. */
export function axisFor(values: number[], log: boolean): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (log ? v > 0 : v >= 0));
  if (log) {
    const lo = finite.length ? Math.floor(Math.log10(Math.min(...finite))) : 0;
    let hi = finite.length ? Math.ceil(Math.log10(Math.max(...finite))) : 1;
    if (hi <= lo) hi = lo + 1;
    const ticks: number[] = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
    return {
      ticks,
      fraction: (v) => Math.min(1, Math.max(0, (Math.log10(v) - lo) / (hi - lo))),
    };
  }
  const max = finite.length ? Math.max(...finite) : 1;
  const step = niceStep(max / 5);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const ticks: number[] = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(t);
  return { ticks, fraction: (v) => Math.min(1, Math.max(0, v / top)) };
}

/** niceStep rounds a raw step up to 1, 2 or 5 times a power of ten. */
export function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** shortNumber labels ticks and bars: 1.2k, 35M, 0.25. */
export function shortNumber(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  const trim = (x: number) => String(Number(x.toPrecision(3)));
  if (a >= 1e9) return trim(v / 1e9) + 'G';
  if (a >= 1e6) return trim(v / 1e6) + 'M';
  if (a >= 1e3) return trim(v / 1e3) + 'k';
  return trim(v);
}

/** barChartSvg renders a chart as a standalone SVG document. */
export function barChartSvg(c: BarChart): string {
  const width = 820;
  const left = 180;
  const right = 70;
  const top = c.note ? 78 : 62;
  const barH = 14;
  const groupGap = 12;
  const plotW = width - left - right;
  const groupH = c.series.length * barH + groupGap;
  const height = top + c.groups.length * groupH + 40;
  const all = c.groups.flatMap((g) => g.values.filter((v): v is number => v !== undefined));
  const axis = axisFor(all, c.log);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="22" font-size="16" font-weight="bold">` +
    `${escapeXml(c.title)}</text>`);
  if (c.note) {
    out.push(`<text x="${left}" y="40" font-size="11" fill="#555">${escapeXml(c.note)}</text>`);
  }
  // legend
  let lx = left;
  const ly = top - 22;
  c.series.forEach((s, i) => {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" ` +
      `fill="${palette[i % palette.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly}">${escapeXml(s)}</text>`);
    lx += 24 + s.length * 7;
  });
  // grid and ticks
  const plotBottom = top + c.groups.length * groupH;
  for (const t of axis.ticks) {
    const x = left + axis.fraction(t) * plotW;
    out.push(`<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" ` +
      `y2="${plotBottom}" stroke="#e2e8f0"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${plotBottom + 16}" text-anchor="middle" ` +
      `fill="#444">${escapeXml(shortNumber(t))}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${plotBottom + 34}" text-anchor="middle" ` +
    `fill="#444">${escapeXml(c.unit + (c.log ? ' (log scale)' : ''))}</text>`);
  // bars
  c.groups.forEach((g, gi) => {
    const gy = top + gi * groupH;
    out.push(`<text x="${left - 8}" y="${gy + (c.series.length * barH) / 2 + 4}" ` +
      `text-anchor="end">${escapeXml(g.label)}</text>`);
    c.series.forEach((_, si) => {
      const v = g.values[si];
      const y = gy + si * barH;
      const drawable = v !== undefined && Number.isFinite(v) && (c.log ? v > 0 : v >= 0);
      if (!drawable) {
        out.push(`<text x="${left + 4}" y="${y + barH - 3}" font-size="10" fill="#888">` +
          `n/a</text>`);
        return;
      }
      const w = Math.max(1, axis.fraction(v) * plotW);
      out.push(`<rect x="${left}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" ` +
        `fill="${palette[si % palette.length]}"><title>${escapeXml(
          `${g.label} — ${c.series[si]}: ${v} ${c.unit}`)}</title></rect>`);
      out.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10">` +
        `${escapeXml(shortNumber(v))}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** metricValue reads one series (name and labels, as printed) from a Prometheus text
 * exposition; undefined when the series is absent. */
export function metricValue(body: string, series: string): number | undefined {
  for (const line of body.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/**
 * values: checks of single setting values that code outside the loader needs too — Go-style
 * durations (a thread's logger reads the rotation interval, the auth gate a token TTL) and
 * URLs (a member added through the API). In a module of their own so that those threads do
 * not load the whole settings table and help text with them (src/config/load.ts re-exports
 * them; the style test checks that no actor thread loads the table).
 */
import { ConfigError } from './errors.js';

const durationUnitsMs: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** parseDurationMs parses a Go-style duration ('500ms', '30m', '1h30m', '2.5h', and '0' as
 * Go's time.ParseDuration accepts it) into whole milliseconds; undefined when the text is not
 * one. */
export function parseDurationMs(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * durationUnitsMs[m[2]!]!;
    end = re.lastIndex;
  }
  if (text === '' || end !== text.length) return undefined;
  return Math.round(total);
}

/** rotationIntervalMs reads logRotationInterval: undefined for 'none', else milliseconds. */
export function rotationIntervalMs(text: string): number | undefined {
  if (text === 'none') return undefined;
  if (text === 'hourly') return 3_600_000;
  if (text === 'daily') return 86_400_000;
  const ms = parseDurationMs(text);
  if (ms === undefined || ms < 1_000) {
    throw new ConfigError('log-rotation-interval',
      `--log-rotation-interval: invalid value ${JSON.stringify(text)}: ` +
      "expected none, hourly, daily or a duration of at least 1s ('30m', '6h')");
  }
  return ms;
}

/** urlProblem says what is wrong with a client or peer URL, or undefined if nothing. */
export function urlProblem(raw: string, needPort: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (url.hostname === '') return 'has no host';
  if (url.pathname !== '/' && url.pathname !== '') return 'must not have a path';
  if (url.search !== '' || url.hash !== '' || url.username !== '') {
    return 'must be scheme://host:port only';
  }
  // WHATWG URL drops a scheme's default port (":80"), so look for the port in the text.
  if (needPort && url.port === '' && !/^[a-z]+:\/\/[^/]*:\d+\/?$/i.test(raw)) return 'has no port';
  return undefined;
}

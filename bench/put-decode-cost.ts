/**
 * put-decode-cost: `node dist/bench/put-decode-cost.js [calls] [DIST]` — the CPU the gateway
 * thread spends per PUT in its own encoders, one thread, no server: the JSON body parsed and
 * decoded (parseJsonBody, decodePutRequest: two base64 fields), and the request packed for
 * the Raft node (encodeRequest). Bodies are the bench's (keys bench/key/N of 10,000, 100-byte
 * values). DIST is a build's dist folder to import instead of this one's (A/B of two commits
 * without the server's noise; run builds alternated). Prints ns per call (process.cpuUsage).
 */
import { fileURLToPath } from 'node:url';

const calls = Number(process.argv[2] ?? 200_000);
const dist = process.argv[3] ?? fileURLToPath(new URL('..', import.meta.url));

interface V3 {
  parseJsonBody(text: string): unknown;
  decodePutRequest(json: unknown): unknown;
}
const v3 = await import(`${dist}/src/api/v3.js`) as V3;
const { encodeRequest } = await import(`${dist}/src/cluster/proposal.js`) as {
  encodeRequest(req: unknown): Uint8Array;
};

const value = Buffer.alloc(100, 7).toString('base64');
const bodies = Array.from({ length: 1000 }, (_, i) =>
  JSON.stringify({ key: Buffer.from(`bench/key/${i * 10}`).toString('base64'), value }));
const parsed = bodies.map((b) => v3.parseJsonBody(b));
const reqs = parsed.map((p) => v3.decodePutRequest(p));

/** nsPerCall runs fn `calls` times after a warm-up and returns CPU ns per call. */
function nsPerCall(fn: (i: number) => unknown): number {
  for (let i = 0; i < calls / 5; i++) fn(i);
  const t0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) fn(i);
  const t = process.cpuUsage(t0);
  return (t.user + t.system) * 1000 / calls;
}

const out = {
  parseJsonBody: nsPerCall((i) => v3.parseJsonBody(bodies[i % 1000]!)),
  decodePutRequest: nsPerCall((i) => v3.decodePutRequest(parsed[i % 1000])),
  encodeRequest: nsPerCall((i) => encodeRequest(reqs[i % 1000])),
};
console.log(`${dist}: ${Object.entries(out).map(([k, v]) => `${k} ${v.toFixed(0)} ns`)
  .join(', ')}`);

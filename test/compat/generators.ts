/**
 * Generators for the recorded etcd cases whose request bodies are too large to keep in a
 * fixture file. The recorder (record-etcd.ts) and the tests both rebuild the body from the
 * fixture's `generated` description, so the fixture stays small and the bytes stay identical.
 */

/** Generated describes a request body built by code rather than stored verbatim. */
export type Generated =
  | { kind: 'putValueBytes'; key: string; valueBytes: number }
  | { kind: 'txnOps'; branch: 'success' | 'failure'; op: 'put' | 'range'; count: number };

/** generateBody rebuilds the exact request body text that a Generated describes. */
export function generateBody(g: Generated): string {
  switch (g.kind) {
    case 'putValueBytes':
      return JSON.stringify({
        key: Buffer.from(g.key, 'utf8').toString('base64'),
        value: Buffer.alloc(g.valueBytes).toString('base64'),
      });
    case 'txnOps': {
      const ops: unknown[] = [];
      for (let i = 0; i < g.count; i++) {
        const key = Buffer.from(g.op === 'put' ? `k${i}` : 'foo').toString('base64');
        ops.push(g.op === 'put' ? { request_put: { key } } : { request_range: { key } });
      }
      return JSON.stringify({ [g.branch]: ops });
    }
  }
}

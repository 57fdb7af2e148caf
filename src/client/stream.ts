/**
 * stream: reading grpc-gateway's streaming answers, which are JSON messages one per line
 * (`{"result": {...}}` or `{"error": {...}}`), as they arrive.
 */

/** jsonLines yields each JSON line of a streaming body as it arrives. */
export async function* jsonLines(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<Record<string, unknown>> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line !== '') yield JSON.parse(line) as Record<string, unknown>;
      }
    }
    const rest = (buf + decoder.decode()).trim();
    if (rest !== '') yield JSON.parse(rest) as Record<string, unknown>;
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

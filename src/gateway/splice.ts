import type net from 'node:net';

/**
 * splice: two sockets joined both ways, as a relay needs them (the TLS relay of
 * client-cert-auth, src/gateway/tls.ts; HTTP/1.x on a gRPC port, passHttp1 in
 * src/gateway/grpc-server.ts). Each side's bytes are piped to the other; either side closing or
 * failing destroys both, once. Both are kept in `live` until then, so that the owner can end
 * every joined connection at a stop (and bound how many there are); `onEnd` runs once after.
 */
export function splice(a: net.Socket, b: net.Socket, live: Set<net.Socket>,
  onEnd?: () => void): void {
  live.add(a);
  live.add(b);
  let done = false;
  const end = (): void => {
    if (done) return;
    done = true;
    live.delete(a);
    live.delete(b);
    a.destroy();
    b.destroy();
    onEnd?.();
  };
  // `on`, not `once`: an error after the first must still find a listener, or it would be
  // thrown as unhandled.
  for (const s of [a, b]) {
    s.on('close', end);
    s.on('error', end);
  }
  a.pipe(b);
  b.pipe(a);
}

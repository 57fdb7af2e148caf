import test from 'ava';
import * as net from 'node:net';
import { reserveUrls } from '../src/server/listen.js';

// A client that connects while a member starts (its ports reserved, its server not yet
// listening) must not wait forever: undici's fetch, which has no connect timeout of its own,
// hung on such a connection until the reservation closed its connections.
test('listen: a connection to a reserved port is closed at once; the port is free after release',
  async (t) => {
    const [r] = await reserveUrls('listen-client-urls', ['http://127.0.0.1:0']);
    const socket = net.connect(r!.port, '127.0.0.1');
    socket.on('error', () => {}); // a reset is as good as a close here
    socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    let received = 0;
    socket.on('data', (d: Buffer) => { received += d.length; });
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    t.is(received, 0, 'the reservation serves nothing');
    r!.release();
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen({ host: '127.0.0.1', port: r!.port, exclusive: true }, resolve);
    });
    await new Promise((resolve) => again.close(resolve));
    t.pass();
  });

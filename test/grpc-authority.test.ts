import test from 'ava';
import http2 from 'node:http2';
import net from 'node:net';
import {
  AuthorityRewriter, fixAuthorityText, fixHeaderBlock, huffmanDecode,
} from '../src/grpc/authority.js';

/**
 * The authority fix (src/grpc/authority.ts): etcdctl 3.4 sends `http://host:port` as the
 * HTTP/2 :authority, which Node's HTTP/2 refuses. The HPACK pieces are checked on bytes that
 * Node's own HTTP/2 client (nghttp2's encoder: Huffman-coded values, indexed names) produces,
 * and the rewritten stream is checked against a Node HTTP/2 server, which must accept it.
 */

/** captureHeaders connects Node's HTTP/2 client to a raw listener and returns every byte the
 * client sent up to and including its first HEADERS frame. */
async function captureClientBytes(headers: http2.OutgoingHttpHeaders): Promise<Buffer> {
  return new Promise((resolve) => {
    const srv = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        let i = 24;
        while (i + 9 <= buf.length) {
          const len = buf.readUIntBE(i, 3);
          if (i + 9 + len > buf.length) return;
          if (buf[i + 3] === 1) {
            sock.destroy();
            srv.close();
            resolve(buf.subarray(0, i + 9 + len));
            return;
          }
          i += 9 + len;
        }
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      const c = http2.connect(`http://127.0.0.1:${port}`);
      c.on('error', () => undefined);
      const r = c.request({ ':path': '/', ...headers });
      r.on('error', () => undefined);
      r.on('close', () => c.destroy());
    });
  });
}

test('authority: Huffman-coded printable ASCII decodes; other symbols and bad padding do not',
  (t) => {
    // "www.example.com", RFC 7541 C.4.1.
    const rfc = Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex');
    t.is(huffmanDecode(rfc), 'www.example.com');
    t.is(huffmanDecode(Buffer.from([0x00])), undefined); // '0' then a 0 bit: bad padding
    t.is(huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff])), undefined); // EOS-ish: no symbol
  });

test('authority: disallowed characters become "-", the length stays', (t) => {
  t.is(fixAuthorityText('http://127.0.0.1:2379'), 'http:--127.0.0.1:2379');
  t.is(fixAuthorityText('127.0.0.1:2379'), '127.0.0.1:2379');
  t.is(fixAuthorityText('[::1]:2379'), '[::1]:2379');
});

test('authority: a header block from Node\'s encoder is rewritten only when it must be',
  async (t) => {
    const bad = await captureClientBytes({ ':authority': 'http://127.0.0.1:2379' });
    const good = await captureClientBytes({ ':authority': '127.0.0.1:2379' });
    const rw = new AuthorityRewriter();
    const out = Buffer.concat(rw.push(bad));
    t.true(rw.fixed);
    t.true(out.includes(Buffer.from('http:--127.0.0.1:2379')));
    t.false(out.includes(Buffer.from('http://')));
    // Byte by byte: the rewriter keeps its place across any split.
    const rw2 = new AuthorityRewriter();
    const parts: Uint8Array[] = [];
    for (const b of bad) parts.push(...rw2.push(Buffer.from([b])));
    t.deepEqual(Buffer.concat(parts), out);
    const rw3 = new AuthorityRewriter();
    t.deepEqual(Buffer.concat(rw3.push(good)), good);
    t.false(rw3.fixed);
    t.true(rw3.sawHeaders);
    t.is(fixHeaderBlock(Buffer.from([0x82, 0x86])), undefined); // indexed fields only
  });

test('authority: Node\'s HTTP/2 server refuses etcdctl\'s authority, and accepts it rewritten',
  async (t) => {
    const server = http2.createServer();
    server.on('stream', (s, h) => {
      s.respond({ ':status': 200 });
      s.end(String(h[':authority']));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const front = net.createServer((sock) => {
      const back = net.connect(port, '127.0.0.1');
      const rw = new AuthorityRewriter();
      sock.on('data', (d: Buffer) => {
        for (const b of rw.push(d)) back.write(b);
      });
      back.pipe(sock);
      sock.on('close', () => back.destroy());
      back.on('close', () => sock.destroy());
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const frontPort = (front.address() as net.AddressInfo).port;
    const ask = (p: number) => new Promise<string>((resolve) => {
      const c = http2.connect(`http://127.0.0.1:${p}`);
      c.on('error', () => undefined);
      const r = c.request({ ':path': '/', ':authority': `http://127.0.0.1:${p}` });
      let body = '';
      r.on('data', (d: Buffer) => {
        body += d.toString();
      });
      r.on('error', (e: Error) => {
        body = `error: ${e.message}`;
      });
      r.on('close', () => {
        c.destroy();
        resolve(body);
      });
      r.end();
    });
    try {
      t.regex(await ask(port), /^error: .*PROTOCOL_ERROR/);
      t.is(await ask(frontPort), `http:--127.0.0.1:${frontPort}`);
    } finally {
      front.close();
      server.close();
    }
  });

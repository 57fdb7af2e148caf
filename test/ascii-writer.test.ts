import test from 'ava';
import { AsciiWriter } from '../src/api/ascii-writer.js';
import { encodeKeyValue } from '../src/api/v3-encode.js';
import type { KeyValue } from '../src/mvcc/types.js';
import type { LeaseId, Revision } from '../src/types.js';
import { randomInt, seeded } from './helpers/rng.js';

/** bytesOf is a random byte string (src/bytes.ts's Bytes), sometimes with characters above
 * 0xff, which the gateway's base64 reduces to their low byte as Buffer's latin1 does. */
function bytesOf(rng: () => number, n: number, wide: boolean): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(randomInt(rng, 0, wide ? 0x3ff : 0xff));
  return s;
}

test('ascii writer: base64 is Buffer\'s latin1 base64 for every length and byte, through ' +
  'growth past its first buffer', (t) => {
  const rng = seeded(11);
  const w = new AsciiWriter();
  for (let round = 0; round < 400; round++) {
    const parts = Array.from({ length: randomInt(rng, 1, 6) },
      () => bytesOf(rng, randomInt(rng, 0, round < 300 ? 40 : 9000), round % 7 === 0));
    w.start();
    let want = '';
    for (const p of parts) {
      w.ascii('"');
      w.base64(p);
      w.int(p.length);
      want += `"${Buffer.from(p, 'latin1').toString('base64')}${p.length}`;
    }
    t.is(w.text(), want, `round ${round}`);
  }
});

test('ascii writer: a KeyValue is written as etcd\'s gateway writes it, zero fields omitted',
  (t) => {
  const kv = (over: Partial<KeyValue>): KeyValue => ({
    key: 'a', value: '', createRevision: 0 as Revision, modRevision: 0 as Revision, version: 0,
    lease: 0 as LeaseId, ...over,
  });
  t.is(encodeKeyValue(kv({})), '{"key":"YQ=="}');
  t.is(encodeKeyValue(kv({ key: '', value: 'xy' })), '{"value":"eHk="}');
  t.is(encodeKeyValue(kv({
    key: 'foo', value: '\u00ff\u0000b', createRevision: 2 as Revision,
    modRevision: 9007199254740991 as Revision, version: 3, lease: 7587862418520367621 as LeaseId,
  })), '{"key":"Zm9v","create_revision":"2","mod_revision":"9007199254740991","version":"3",' +
    `"value":"/wBi","lease":"${7587862418520367621}"}`);
});

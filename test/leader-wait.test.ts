import test from 'ava';
import { LeaderWait } from '../src/cluster/leader-wait.js';

test('leader wait: holds up to its bound, expires by deadline, releases the rest in order',
  (t) => {
    const w = new LeaderWait<string>(3);
    t.true(w.hold('a', 100));
    t.true(w.hold('b', 300));
    t.true(w.hold('c', 200));
    t.false(w.hold('d', 400), 'full: the caller fails it at once');
    t.is(w.size, 3);
    t.deepEqual(w.expire(99), []);
    t.deepEqual(w.expire(200), ['a', 'c'], 'every one past its deadline, not only the first');
    t.deepEqual(w.release(), ['b']);
    t.is(w.size, 0);
    t.deepEqual(w.expire(1_000), []);
    t.true(w.hold('e', 500), 'room again once released');
  });

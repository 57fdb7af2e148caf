import test from 'ava';
import {
  medianRound, opsRows, reportMarkdown, type Round, roundsLine, type WorkloadResult,
} from '../bench/report.js';

const fig = (opsPerSec: number) => ({ values: { opsPerSec } });
const round = (ours: number, etcd?: number): Round =>
  ({ ours: fig(ours), ...(etcd === undefined ? {} : { etcd: fig(etcd) }) });

test('bench report: the round that stands for a workload has the median ours ÷ etcd, not the ' +
  'median of either server alone', (t) => {
  // Ratios 2.0, 3.0, 1.5: the median ratio is round 0's, though round 2 has the median rate.
  const rounds = [round(20_000, 10_000), round(9_000, 3_000), round(15_000, 10_000)];
  t.is(medianRound(rounds, 'opsPerSec'), 0);
  // Even count: the lower of the two middle ratios (1.5, 2, 3, 4 → 2).
  t.is(medianRound([...rounds, round(40_000, 10_000)], 'opsPerSec'), 0);
  // Without etcd, ours alone decides.
  t.is(medianRound([round(3), round(1), round(2)], 'opsPerSec'), 2);
  // A failed round (no figure, or etcd at 0) is passed over; none usable gives undefined.
  t.is(medianRound([{ ours: { values: {} } }, round(5, 0), round(10, 4)], 'opsPerSec'), 2);
  t.is(medianRound([{ ours: { values: {}, note: 'failed' } }], 'opsPerSec'), undefined);
});

test('bench report: the report lists every round under the table and marks the one shown',
  (t) => {
  const rounds = [round(20_000, 10_000), round(9_000, 3_000), round(15_000, 10_000)];
  const w: WorkloadResult = { name: 'put-50c', description: 'd', rows: opsRows,
    ours: rounds[0]!.ours, etcd: rounds[0]!.etcd, rounds };
  const line = roundsLine(w, opsRows[0]!)!;
  t.regex(line, /3 rounds/);
  t.true(line.includes('**20,000 / 10,000 = 2.00×**; 9,000 / 3,000 = 3.00×; ' +
    '15,000 / 10,000 = 1.50×'), line);
  const md = reportMarkdown({
    machine: { cpu: 'c', cores: 2, ramGiB: 1, kernel: 'k', node: 'n', etcd: 'e', commit: 'x' },
    command: 'npm run bench', smoke: false, settings: {}, results: [w], startedAt: 's',
    notes: [],
  });
  t.true(md.includes(line));
  // A workload run once has no such line.
  t.is(roundsLine({ ...w, rounds: undefined }, opsRows[0]!), undefined);
});

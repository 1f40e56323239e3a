import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Components, reconfigureChanged, tunable } from '../src/daemon/component.js';

interface Settings {
  readonly a: { readonly n: number };
  readonly b: { readonly list: readonly string[] };
  readonly c: number;
}

/** A part that records what is done to it in a shared journal. */
class Part {
  readonly slices: unknown[] = [];
  constructor(
    readonly name: string,
    private readonly journal: string[],
    private readonly behaviour: { failStart?: boolean; failStop?: boolean } = {},
  ) {}
  async start(): Promise<void> {
    this.journal.push(`start ${this.name}`);
    if (this.behaviour.failStart === true) throw new Error(`${this.name} cannot start`);
  }
  async stop(deadlineMs: number): Promise<void> {
    this.journal.push(`stop ${this.name} within ${deadlineMs > 0 ? 'budget' : 'none'}`);
    if (this.behaviour.failStop === true) throw new Error(`${this.name} cannot stop`);
  }
  stats(): { readonly name: string } {
    return { name: this.name };
  }
  reconfigure(slice: unknown): void {
    this.slices.push(slice);
    this.journal.push(`reconfigure ${this.name}`);
  }
}

describe('the daemon components', () => {
  it('start in order and stop in reverse, going on past a part whose stop fails', async () => {
    const journal: string[] = [];
    const parts = new Components({
      a: new Part('a', journal),
      b: new Part('b', journal, { failStop: true }),
      c: new Part('c', journal),
    });
    await parts.start();
    const failures: string[] = [];
    await parts.stop(10_000, (name, error) => failures.push(`${name}: ${(error as Error).message}`));
    assert.deepEqual(journal, [
      'start a',
      'start b',
      'start c',
      'stop c within budget',
      'stop b within budget',
      'stop a within budget',
    ]);
    assert.deepEqual(failures, ['b: b cannot stop']);
  });

  it('after a failed start, stop takes down exactly the parts whose start was attempted', async () => {
    const journal: string[] = [];
    const parts = new Components({
      a: new Part('a', journal),
      b: new Part('b', journal, { failStart: true }),
      c: new Part('c', journal),
    });
    await assert.rejects(parts.start(), /b cannot start/);
    await parts.stop(0, () => undefined);
    assert.deepEqual(journal, ['start a', 'start b', 'stop b within none', 'stop a within none']);
  });

  it('report each part’s figures under its name', () => {
    const parts = new Components({ a: new Part('a', []), b: new Part('b', []) });
    assert.deepEqual(parts.stats(), { a: { name: 'a' }, b: { name: 'b' } });
  });

  it('refuse a part registered under another name than its own', () => {
    assert.throws(() => new Components({ a: new Part('b', []) }), /registered as 'a'/);
  });
});

describe('a reload', () => {
  const before: Settings = { a: { n: 1 }, b: { list: ['x'] }, c: 1 };

  it('reconfigures exactly the parts whose slice changed, in list order, with the new slice', async () => {
    const journal: string[] = [];
    const a = new Part('a', journal);
    const b = new Part('b', journal);
    const c = new Part('c', journal);
    const parts = new Components({ a, b, c });
    const tunables = parts.tunables<Settings>({ a: (s) => s.a, b: (s) => s.b, c: (s) => s.c });
    // Equal content in new objects is no change; a changed array element is.
    const after: Settings = { a: { n: 1 }, b: { list: ['y'] }, c: 2 };
    const changed = await reconfigureChanged(tunables, before, after);
    assert.deepEqual(changed, ['b', 'c']);
    assert.deepEqual(journal, ['reconfigure b', 'reconfigure c']);
    assert.deepEqual(b.slices, [{ list: ['y'] }]);
    assert.deepEqual(a.slices, []);
  });

  it('waits for a part that reconfigures asynchronously before the next one', async () => {
    const journal: string[] = [];
    const tunables = [
      tunable(
        'slow',
        (s: Settings) => s.a,
        async () => {
          await new Promise((resolve) => setImmediate(resolve));
          journal.push('slow done');
        },
      ),
      tunable(
        'next',
        (s: Settings) => s.c,
        () => journal.push('next'),
      ),
    ];
    await reconfigureChanged(tunables, before, { ...before, a: { n: 2 }, c: 3 });
    assert.deepEqual(journal, ['slow done', 'next']);
  });

  it('retunes nothing more once the daemon began stopping', async () => {
    const journal: string[] = [];
    let stopping = false;
    const tunables = [
      tunable(
        'first',
        (s: Settings) => s.a,
        () => {
          journal.push('first');
          stopping = true;
        },
      ),
      tunable(
        'second',
        (s: Settings) => s.c,
        () => journal.push('second'),
      ),
    ];
    await assert.rejects(
      reconfigureChanged(tunables, before, { ...before, a: { n: 2 }, c: 3 }, () => stopping),
      /the daemon is stopping/,
    );
    assert.deepEqual(journal, ['first']);
  });
});

/** What every page shares: the health banner, error notices and range buttons. */
import { every, health } from './api.js';

/** Shows /health's problems in the banner while it is degraded or failed. */
export function watchHealth(banner: HTMLElement): void {
  every(
    10_000,
    async () => {
      const report = await health();
      // A 503 without a report (the supervisor not running, a proxy's error page) is an error, not a report.
      if (typeof report.checks !== 'object' || report.checks === null)
        throw new Error((report as { error?: string }).error ?? 'no health report');
      if (report.status === 'ok') {
        banner.hidden = true;
        return;
      }
      const problems = Object.entries(report.checks)
        .filter(([, c]) => c.status !== 'ok')
        .map(([name, c]) => `${name}: ${c.reason}`);
      banner.className = `banner ${report.status}`;
      banner.replaceChildren();
      const title = document.createElement('strong');
      title.textContent = report.status === 'failed' ? 'Monitoring has failed' : 'Monitoring is degraded';
      const list = document.createElement('ul');
      for (const problem of problems) {
        const item = document.createElement('li');
        item.textContent = problem;
        list.append(item);
      }
      banner.append(title, list);
      banner.hidden = false;
    },
    (error) => notice(`health: ${String(error)}`),
  );
}

/** A transient notice at the page's foot (a request failed; the next refresh will try again). */
export function notice(text: string): void {
  const el = document.getElementById('notice');
  if (el === null) return;
  el.textContent = text;
  el.hidden = false;
  clearTimeout(Number(el.dataset['timer'] ?? 0));
  el.dataset['timer'] = String(setTimeout(() => (el.hidden = true), 8000));
}

/** Range buttons (aria-pressed): calls `onPick` with the picked one's data-range now and on each click. */
export function rangeButtons(group: HTMLElement, onPick: (range: string) => void): void {
  const buttons = [...group.querySelectorAll<HTMLButtonElement>('button[data-range]')];
  const pick = (button: HTMLButtonElement) => {
    for (const b of buttons) b.setAttribute('aria-pressed', String(b === button));
    onPick(button.dataset['range'] ?? '1h');
  };
  for (const b of buttons) b.addEventListener('click', () => pick(b));
  const first = buttons.find((b) => b.getAttribute('aria-pressed') === 'true') ?? buttons[0];
  if (first) pick(first);
}

/** Label of a device state. */
export function stateLabel(state: string): string {
  if (state === 'online') return 'online';
  if (state === 'offline') return 'offline';
  if (/auth/i.test(state)) return 'authentication failed';
  return state;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { text?: string; className?: string } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.text !== undefined) el.textContent = props.text;
  if (props.className !== undefined) el.className = props.className;
  el.append(...children);
  return el;
}

/**
 * Database incidents that stay visible until a person has seen them: a corrupt database moved aside
 * (its readings are no longer in the database the daemon uses) and a database file removed while
 * open (what was written after the removal is gone). The daemon carries on after either, so no
 * check would stay bad by itself; this one does: `database` is degraded, names the files, and keeps
 * its alert open until the operator acknowledges (`kasa-monitor ack`, or POST /api/ack) or the
 * daemon restarts (the history of alerts keeps the notice either way).
 */
import { type CheckResult, degraded, type HealthCheck, ok } from './types.js';

export type DatabaseIncidentKind = 'quarantined' | 'removed';

export interface DatabaseIncident {
  readonly kind: DatabaseIncidentKind;
  /** The file concerned: where the corrupt database was moved, or the path that was removed. */
  readonly file: string;
  /** ISO 8601. */
  readonly at: string;
  readonly reason: string;
}

/** How an incident reads in the check's reason. */
function describe(incident: DatabaseIncident): string {
  return incident.kind === 'quarantined'
    ? `the corrupt database was moved to ${incident.file} (${incident.reason})`
    : `the database file ${incident.file} was removed while open; readings since then continue in a new database`;
}

export const ACK_HINT = 'acknowledge with `kasa-monitor ack` or POST /api/ack';

export class DatabaseIncidents {
  #open: DatabaseIncident[] = [];
  #acknowledged = 0;

  add(incident: DatabaseIncident): void {
    this.#open.push(incident);
  }

  /** Clears every open incident; returns those cleared. */
  acknowledge(): readonly DatabaseIncident[] {
    const cleared = this.#open;
    this.#open = [];
    this.#acknowledged += cleared.length;
    return cleared;
  }

  get open(): readonly DatabaseIncident[] {
    return this.#open;
  }

  check(): HealthCheck {
    return {
      name: 'database',
      run: (): CheckResult => {
        const open = this.#open;
        const details = { open: open.map((i) => ({ ...i })), acknowledged: this.#acknowledged };
        if (open.length === 0) return ok('no unacknowledged database incidents', details);
        return degraded(`${open.map(describe).join('; ')}; ${ACK_HINT}`, details);
      },
    };
  }
}

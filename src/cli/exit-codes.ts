/** Exit codes from sysexits(3), as DESIGN.md promises: scripts and systemd rely on them. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 64;
export const EXIT_CONFIG = 78;

/** A mistake in how the command was typed: the message is shown with a hint, exit 64. */
export { UsageError } from '../shared/usage-error.js';

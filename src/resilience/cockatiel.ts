/**
 * cockatiel, loaded with require rather than import (see shared/commonjs.ts): this folder's one
 * door to it. Types come from `import type { … } from 'cockatiel'` where they are used.
 */
import type * as Cockatiel from 'cockatiel';
import { requireCommonJs } from '../shared/commonjs.js';

export const cockatiel = requireCommonJs('cockatiel') as typeof Cockatiel;

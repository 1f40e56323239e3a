/**
 * The dashboard's files: the pages and stylesheet (web/static), the compiled frontend modules
 * (dist/web) and uPlot from its npm package. Only names in this table or compiled modules are
 * served, so a request path never reaches the file system as it is; files are read once and kept.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Asset {
  readonly file: string;
  readonly type: string;
}

const HTML = 'text/html; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const SVG = 'image/svg+xml';

/** dist/src/http -> the repository (or installed package) root. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const STATIC_DIR = join(ROOT, 'web', 'static');
const COMPILED_DIR = join(ROOT, 'dist', 'web');

function uplotDir(): string {
  return dirname(createRequire(import.meta.url).resolve('uplot'));
}

function table(): Map<string, Asset> {
  const uplot = uplotDir();
  return new Map<string, Asset>([
    ['/', { file: join(STATIC_DIR, 'index.html'), type: HTML }],
    ['/device', { file: join(STATIC_DIR, 'device.html'), type: HTML }],
    ['/assets/style.css', { file: join(STATIC_DIR, 'style.css'), type: CSS }],
    ['/favicon.svg', { file: join(STATIC_DIR, 'favicon.svg'), type: SVG }],
    // Browsers ask for it on their own when a page declares no icon (ours declare favicon.svg).
    ['/favicon.ico', { file: join(STATIC_DIR, 'favicon.svg'), type: SVG }],
    ['/assets/uPlot.min.js', { file: join(uplot, 'uPlot.iife.min.js'), type: JS }],
    ['/assets/uPlot.min.css', { file: join(uplot, 'uPlot.min.css'), type: CSS }],
  ]);
}

/** A compiled frontend module: /assets/overview.js -> dist/web/overview.js. */
const MODULE = /^\/assets\/([a-z][a-z0-9-]*)\.js$/;

export class StaticAssets {
  #table: Map<string, Asset> | null = null;
  readonly #cache = new Map<string, Promise<Buffer>>();

  /** The asset for a path, or null when there is none. */
  find(pathname: string): Asset | null {
    this.#table ??= table();
    const known = this.#table.get(pathname);
    if (known !== undefined) return known;
    const module = MODULE.exec(pathname);
    return module === null ? null : { file: join(COMPILED_DIR, `${module[1]}.js`), type: JS };
  }

  /** The file's bytes; null when it does not exist (a module name that is not ours). */
  async read(asset: Asset): Promise<Buffer | null> {
    let bytes = this.#cache.get(asset.file);
    if (bytes === undefined) {
      bytes = readFile(asset.file);
      this.#cache.set(asset.file, bytes);
    }
    try {
      return await bytes;
    } catch (error) {
      this.#cache.delete(asset.file);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
}

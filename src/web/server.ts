/**
 * The read-only web view: pages, their JSON twins under /api/, the stylesheet, and (for `tierwatch
 * serve`) /healthz, over either backend: each request reads the history through a HistorySource
 * lent by a HistoryOpener (query/source-opener.ts) for that request only, and returns it when
 * answered. On SQLite that is the server's one read-only connection, one request at a time (a JSON
 * answer streams rows from a statement no other request may reuse meanwhile); on Postgres a session
 * of its own, a few at once. Nothing writes: the history is opened read-only and only GET and HEAD
 * are answered.
 *
 * Every response carries a Content-Security-Policy that allows no script at all (the pages have
 * none: the charts are SVG drawn on the server) and styles and images from this origin only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TierwatchError, coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sqliteOpener, type HistoryOpener } from '../query/source-opener.ts';
import type { HistorySource } from '../query/source.ts';
import { sqliteErrorToTierwatch } from '../store/sqlite-errors.ts';
import { apiAnswer, apiError, writeAnswer } from './api.ts';
import { presentedToken, readToken, tokenMatches, type TokenSource } from './auth.ts';
import { html, symbolPath } from './html.ts';
import { page } from './layout.ts';
import { changesPage } from './pages/changes.ts';
import { diffPage } from './pages/diff.ts';
import { overviewPage } from './pages/overview.ts';
import { runsPage } from './pages/runs.ts';
import { symbolPage } from './pages/symbol.ts';
import { STYLE } from './style.ts';
import { statusFor, type PageResult, type View } from './view.ts';

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

const ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M1 14h4V9h4V5h4V2h2v14H1z" fill="#0969da"/></svg>';

/** What the CLI would have reported: a SQLite error keeps its code, anything else unexpected is INTERNAL. */
function failureOf(error: unknown): TierwatchError {
  return sqliteErrorToTierwatch(error, 'reading the database') ?? coerceError(error);
}

export interface WebViewOptions {
  /** The SQLite history to open read-only, when no `history` is given. */
  dbPath?: string;
  /** Where each request's HistorySource comes from (either backend); it is closed with the view. */
  history?: HistoryOpener;
  /** Where the token comes from; null leaves the view open. */
  token: TokenSource | null;
  healthMaxAgeMs: number;
  /** The accounts the health verdict judges; null = every account in the ledger. */
  accounts: readonly string[] | null;
  logger: Logger;
  /** Answer /healthz here (`tierwatch serve`); the daemon answers it itself. */
  healthz?: boolean;
  now?: () => Date;
}

export interface WebView {
  /** Answers one request (never throws; errors become 4xx/5xx answers). */
  handle(request: IncomingMessage, response: ServerResponse): void;
  close(): void;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A limit on how many tasks run at once: the rest wait their turn, in order. */
function limiter(concurrency: number): (task: () => Promise<void>) => void {
  let running = 0;
  const waiting: Array<() => void> = [];
  return (task) => {
    const start = () => {
      running += 1;
      void task().finally(() => {
        running -= 1;
        waiting.shift()?.();
      });
    };
    if (running < concurrency) start();
    else waiting.push(start);
  };
}

/**
 * Returns the view over `options.history`, or over the SQLite file `options.dbPath` opened
 * read-only now (throws its TierwatchError when it cannot).
 */
export function createWebView(options: WebViewOptions): WebView {
  const opener = options.history ?? sqliteOpener(options.dbPath ?? '');
  const now = options.now ?? (() => new Date());
  const schedule = limiter(opener.concurrency);

  async function sendPage(response: ServerResponse, view: View, result: PageResult): Promise<void> {
    const lastSweep = (await view.history.bounds())?.last_observed_at ?? null;
    const body = page(
      { title: result.title, section: result.section, source: opener.name, lastSweep, generatedAt: view.now },
      result.body,
    );
    response
      .writeHead(result.status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' })
      .end(body.text);
  }

  function notFound(response: ServerResponse, view: View, what: string): Promise<void> {
    return sendPage(response, view, {
      status: 404,
      title: 'Not found',
      section: 'none',
      body: html`<p>Nothing at ${what}. Try <a href="/">the overview</a>.</p>`,
    });
  }

  /** Answers the static assets; false for every other path. */
  function asset(response: ServerResponse, path: string): boolean {
    if (path === '/assets/style.css') {
      response
        .writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': 'text/css; charset=utf-8',
          'cache-control': 'max-age=300',
        })
        .end(STYLE);
      return true;
    }
    if (path === '/assets/icon.svg') {
      response
        .writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'image/svg+xml', 'cache-control': 'max-age=300' })
        .end(ICON);
      return true;
    }
    return false;
  }

  /** Answers a page or an API path from `history`, which the caller lent for this request. */
  async function route(response: ServerResponse, url: URL, history: HistorySource): Promise<void> {
    const path = url.pathname;
    const view: View = {
      history,
      now: now(),
      source: opener.name,
      healthMaxAgeMs: options.healthMaxAgeMs,
      accounts: options.accounts,
      standalone: false,
    };
    if (path.startsWith('/api/')) {
      const [name = '', ...restParts] = path.slice('/api/'.length).split('/');
      const rest = restParts.length === 0 ? null : decodeURIComponent(restParts.join('/'));
      try {
        const found = await apiAnswer(history, name, rest, url.searchParams, view.now);
        if (found === null) {
          response.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' });
          response.end(
            `${JSON.stringify({ error: { code: 'USAGE', message: `No API at ${path}: try /api/changes, /api/snapshot, /api/diff, /api/history/{SYMBOL}, /api/runs.` } })}\n`,
          );
          return;
        }
        await writeAnswer(response, SECURITY_HEADERS, found.format, found.answer);
      } catch (error) {
        if (response.headersSent) throw error;
        const failure = failureOf(error);
        if (statusFor(failure) === 500) options.logger.error({ err: failure, path }, 'the web API could not answer');
        response
          .writeHead(statusFor(failure), { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' })
          .end(apiError(failure));
      }
      return;
    }
    if (path === '/') return sendPage(response, view, await overviewPage(view));
    if (path === '/symbol') {
      const symbol = url.searchParams.get('symbol')?.trim() ?? '';
      if (symbol === '') return notFound(response, view, '/symbol without a symbol');
      response.writeHead(303, { ...SECURITY_HEADERS, location: symbolPath(symbol) }).end();
      return;
    }
    if (path.startsWith('/symbol/')) {
      const symbol = decodeURIComponent(path.slice('/symbol/'.length));
      return sendPage(response, view, await symbolPage(view, symbol, url.searchParams));
    }
    if (path === '/changes') return sendPage(response, view, await changesPage(view, url.searchParams));
    if (path === '/diff') return sendPage(response, view, await diffPage(view, url.searchParams));
    if (path === '/runs') return sendPage(response, view, await runsPage(view, url.searchParams));
    return notFound(response, view, path);
  }

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response
        .writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('read-only: only GET and HEAD\n');
      return;
    }
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://localhost');
      decodeURIComponent(url.pathname);
    } catch {
      response
        .writeHead(400, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' })
        .end('bad request: the path is not valid percent-encoding\n');
      return;
    }
    if (options.healthz && url.pathname === '/healthz') {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end('ok\n');
      return;
    }
    if (options.token !== null) {
      const token = readToken(options.token);
      if (!tokenMatches(presentedToken(request.headers.authorization), token)) {
        const api = url.pathname.startsWith('/api/');
        response.writeHead(401, {
          ...SECURITY_HEADERS,
          'content-type': 'text/plain; charset=utf-8',
          // A browser asks for Basic credentials by itself (the token is the password); programs send a Bearer.
          'www-authenticate': api ? 'Bearer realm="tierwatch"' : 'Basic realm="tierwatch", charset="UTF-8"',
        });
        response.end('unauthorized: send the token (TIERWATCH_HTTP_TOKEN) as "Authorization: Bearer <token>"\n');
        return;
      }
    }
    if (asset(response, url.pathname)) return;
    // The history only now, past the token: an unauthenticated request never opens a session.
    const history = await opener.open();
    try {
      await route(response, url, history);
    } finally {
      await history.close();
    }
  }

  return {
    handle(request, response) {
      const run = async () => {
        try {
          await answer(request, response);
        } catch (error) {
          const failure = failureOf(error);
          // Never the Authorization header, never the token: only the code, message and path.
          options.logger.error({ err: failure, path: request.url }, 'the web view could not answer');
          if (!response.headersSent) {
            response.writeHead(500, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
            response.end(
              failure.code === 'INTERNAL'
                ? 'internal error (this is a bug: see the log)\n'
                : `${failure.code}: ${failure.message}\n`,
            );
          } else response.destroy();
        }
      };
      schedule(run);
    },
    close() {
      opener.close();
    },
  };
}

export interface WebServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Starts `tierwatch serve`'s server. Throws HTTP_LISTEN when the address cannot be bound. */
export async function startWebServer(options: WebViewOptions & { host: string; port: number }): Promise<WebServer> {
  const view = createWebView({ ...options, healthz: true });
  const server: Server = createServer((request, response) => view.handle(request, response));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => resolve());
    });
  } catch (error) {
    view.close();
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    throw new TierwatchError(
      'HTTP_LISTEN',
      `Cannot listen on ${options.host} port ${options.port} (${code}): choose another \`--port\` or \`--host\`.`,
      { cause: error },
    );
  }
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  return {
    port,
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          view.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

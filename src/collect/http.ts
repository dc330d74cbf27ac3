/**
 * The daemon's optional HTTP endpoint (TIERWATCH_HTTP_PORT): `/healthz` answers 200 or 503 with the
 * same verdict as `tierwatch health`, `/metrics` the Prometheus exposition, and every other path
 * goes to the read-only web view when one is given (the same view as `tierwatch serve`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { HealthVerdict } from './health.ts';
import type { SweepMetrics } from './metrics.ts';

export interface HttpEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

export interface HttpEndpointOptions {
  host: string;
  port: number;
  metrics: SweepMetrics;
  health: () => HealthVerdict;
  logger: Logger;
  /** The web view, answering every path but /healthz and /metrics (and guarding them with its token). */
  view?: { handle(request: IncomingMessage, response: ServerResponse): void };
}

export async function startHttpEndpoint(options: HttpEndpointOptions): Promise<HttpEndpoint> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (options.view !== undefined && path !== '/healthz' && path !== '/metrics') {
      options.view.handle(request, response);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const verdict = options.health();
      response.writeHead(verdict.healthy ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(verdict.healthy ? `healthy: ${verdict.summary}\n` : `unhealthy: ${verdict.reason}\n`);
      return;
    }
    if (path === '/metrics') {
      options.metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(text),
        (error: unknown) => {
          options.logger.error({ err: error }, 'metrics could not be rendered');
          response.writeHead(500).end();
        },
      );
      return;
    }
    response
      .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      .end('not found: try /healthz or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info(
    { host: options.host, port, web_view: options.view !== undefined },
    'serving /healthz and /metrics',
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

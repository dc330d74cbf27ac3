/**
 * The identity of an exchange endpoint, which a database is bound to: the URL in WHATWG form
 * without query string, fragment or credentials, so `wss://trade.qfex.com`, `wss://trade.qfex.com/`
 * and `wss://trade.qfex.com/?api_key=…` are one endpoint.
 */
export function normalizeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint.trim());
    url.search = '';
    url.hash = '';
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return endpoint.trim();
  }
}

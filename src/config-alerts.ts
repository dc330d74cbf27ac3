/**
 * The webhook alerts' settings (TIERWATCH_WEBHOOK_*, TIERWATCH_ALERT_*), read and validated like
 * the rest of the configuration (src/config.ts). Webhook URLs often carry their credential in the
 * path, so nothing here shows more of one than `redactUrl` does.
 */
import { TierwatchError } from './errors.ts';
import { invalid, type Reader } from './config-reader.ts';
import type { SecretSource } from './config.ts';

export const WEBHOOK_FORMATS = ['json', 'slack'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** Webhook alerts (issue 7). No webhook URL = alerts off. */
export interface AlertsConfig {
  /** http(s) URLs, in the order given; may carry a token in the path (Slack), so never log them whole. */
  webhookUrls: string[];
  format: WebhookFormat;
  /** Symbol patterns (`*` wildcard, as `--symbol`); empty = every symbol. */
  symbols: string[];
  /** 'tightening' = only changes that tighten something (tightening and mixed). */
  only: 'tightening' | null;
  /** The HMAC key signing each body; read at each delivery pass so a *_FILE rotates. */
  secret: SecretSource | null;
  timeoutMs: number;
  /** Retries of one notification within one delivery pass, after the first attempt. */
  retries: number;
  /** Attempts in all (over every pass) after which a notification is given up: status `dead`. */
  maxAttempts: number;
  /** Age (since it was queued) past which a notification not yet delivered is given up: `dead`. */
  maxAgeMs: number;
}

function readWebhookUrls(reader: Reader): string[] {
  const raw = reader.raw('TIERWATCH_WEBHOOK_URL');
  if (raw === null) return [];
  const urls = raw.value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  const parsed = urls.map((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalid(raw.name, 'a comma-separated list of http:// or https:// URLs', redactUrl(text));
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw invalid(raw.name, 'a comma-separated list of http:// or https:// URLs', redactUrl(text));
    }
    if (url.username || url.password) {
      throw new TierwatchError(
        'CONFIG_INVALID',
        `\`${raw.name}\` must not carry credentials (user:password@); sign bodies with TIERWATCH_WEBHOOK_SECRET instead.`,
      );
    }
    return url.href;
  });
  // One outbox row per notification per URL: a URL listed twice would be one queue fed twice.
  const duplicate = parsed.find((url, index) => parsed.indexOf(url) !== index);
  if (duplicate !== undefined) {
    throw new TierwatchError('CONFIG_INVALID', `\`${raw.name}\` lists ${redactUrl(duplicate)} twice.`);
  }
  return parsed;
}

/**
 * A webhook URL as it may be shown: scheme, host and port only. The path and query of a webhook
 * often are its credential (Slack's /services/T…/B…/token), so they are never logged or printed.
 */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    const hidden = url.pathname !== '/' || url.search !== '' ? '/…' : '/';
    return `${url.protocol}//${url.host}${hidden}`;
  } catch {
    return '(not a URL)';
  }
}

/** The webhook settings; the secret's source is read by the caller, as every secret's is. */
export function readAlerts(reader: Reader, secret: SecretSource | null): AlertsConfig {
  const format = reader.raw('TIERWATCH_WEBHOOK_FORMAT');
  if (format !== null && !(WEBHOOK_FORMATS as readonly string[]).includes(format.value.toLowerCase())) {
    throw invalid(format.name, `one of ${WEBHOOK_FORMATS.join(', ')}`, format.value);
  }
  const only = reader.raw('TIERWATCH_ALERT_ONLY');
  if (only !== null && only.value.toLowerCase() !== 'tightening') {
    throw invalid(only.name, '`tightening` (or unset)', only.value);
  }
  const symbols = reader.raw('TIERWATCH_ALERT_SYMBOLS');
  return {
    webhookUrls: readWebhookUrls(reader),
    format: (format?.value.toLowerCase() ?? 'json') as WebhookFormat,
    symbols:
      symbols === null
        ? []
        : symbols.value
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== ''),
    only: only === null ? null : 'tightening',
    secret,
    timeoutMs: reader.duration('TIERWATCH_WEBHOOK_TIMEOUT', 10_000),
    retries: reader.integer('TIERWATCH_WEBHOOK_RETRIES', 3, 0, 100),
    // 50 attempts are about an hour of passes at the default schedule and retries: a receiver's
    // short outage kills nothing, while a notification that fails for a reason of its own holds
    // the ones after it back for an hour, not for the whole maximum age.
    maxAttempts: reader.integer('TIERWATCH_WEBHOOK_MAX_ATTEMPTS', 50, 1, 1_000_000),
    maxAgeMs: reader.duration('TIERWATCH_WEBHOOK_MAX_AGE', 24 * 3_600_000),
  };
}

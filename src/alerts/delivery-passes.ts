/**
 * Delivery passes, one at a time, for both outboxes (alerting.ts on SQLite, pg-alerting.ts on
 * Postgres). A request while a pass runs asks for exactly one more after it, so a burst of sweeps
 * costs two passes, not one per sweep; none starts once `stopped()` says so. The pass itself
 * catches and logs its failures: a failed pass must not stop the next one.
 */
export class DeliveryPasses {
  readonly #pass: () => Promise<void>;
  readonly #stopped: () => boolean;
  #running: Promise<void> | null = null;
  #again = false;

  constructor(pass: () => Promise<void>, stopped: () => boolean) {
    this.#pass = pass;
    this.#stopped = stopped;
  }

  get running(): boolean {
    return this.#running !== null;
  }

  /** Starts a pass, or asks for one more after the running one. Returns at once. */
  request(): void {
    if (this.#stopped()) return;
    if (this.#running !== null) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = null;
    });
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      await this.#pass();
    } while (this.#again && !this.#stopped());
  }
}

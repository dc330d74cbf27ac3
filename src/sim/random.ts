/**
 * A small seeded PRNG (mulberry32) so that synthetic universes and change scripts are reproducible
 * from a printed seed. Not for anything secret.
 */
export type Random = () => number;

/** Returns a function yielding floats in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random() * n);
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A UUID-shaped string (version 4 layout) drawn from the PRNG; cheap enough for 100,000-tier universes. */
export function randomUuid(random: Random): string {
  let hex = '';
  for (let i = 0; i < 4; i++) {
    const word = Math.floor(random() * 4294967296);
    hex +=
      HEX_BYTE[word >>> 24]! + HEX_BYTE[(word >>> 16) & 255]! + HEX_BYTE[(word >>> 8) & 255]! + HEX_BYTE[word & 255]!;
  }
  const variant = '89ab'[Math.floor(random() * 4)]!;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

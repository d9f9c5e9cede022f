// When to try a lost relay again (PROTOCOL.md §3.3), the same schedule as the native client's
// (client/src/call.rs): 0.5 s, doubling up to 15 s, 20 attempts (about four minutes in all).
// Pure: runs under node --test.

export const RECONNECT_ATTEMPTS = 20;
const MAX_DELAY_MS = 15000;

/** The wait before reconnection attempt `attempt` (1, 2, ...), in milliseconds. */
export function reconnectDelay(attempt) {
  return Math.min(500 * 2 ** Math.min(Math.max(attempt - 1, 0), 6), MAX_DELAY_MS);
}

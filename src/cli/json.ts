/** JSON output conventions: every key pmctl prints is snake_case. */

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * A copy of `value` with camelCase object keys turned into snake_case, at every depth. Only for
 * reports whose keys are field names: a map keyed by user data (environment names) is not passed here.
 */
export function snakeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), snakeKeys(v)]));
}

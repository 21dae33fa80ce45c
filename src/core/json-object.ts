// What JSON read from a file, a request or a reply counts as an object with named fields: one rule for every
// reader of untrusted JSON (null and arrays are "object" to typeof, and are not).
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

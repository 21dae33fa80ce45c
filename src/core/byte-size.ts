// Byte counts as people read them (1.50 MiB, 478.8 MiB): one spelling for the CLI's lines and the notes the API
// hands it, so a note and a summary of the same bytes agree.
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

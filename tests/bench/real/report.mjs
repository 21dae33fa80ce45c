// The real-data benchmark's markdown table: one row per scenario, each cell "ckvc / borg / restic", and
// ckvc divided by the best peer (highest stored ratio; faster ingest and restore).
const MiB = 1024 * 1024;
const TOOLS = ['ckvc', 'borg', 'restic'];

const fmt = (x, digits) => (x == null || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));

function metrics(r) {
  if (!r || r.skipped) return null;
  return {
    ratio: r.logicalBytes / r.storedBytes,
    ingest: r.logicalBytes / MiB / r.ingestSecs,
    restore: r.restoreBytes / MiB / r.restoreSecs,
    rss: r.peakRssMiB,
  };
}

/** ckvc's figure over the best peer's, or null when ckvc or every peer is missing. */
function vsBest(m, key) {
  const peers = ['borg', 'restic'].map((t) => m[t]?.[key]).filter((x) => x != null && Number.isFinite(x));
  if (!m.ckvc || !peers.length) return null;
  return m.ckvc[key] / Math.max(...peers);
}

export function markdown(results) {
  const lines = [];
  const cell = (m, key, digits) => TOOLS.map((t) => fmt(m[t]?.[key], digits)).join(' / ');
  lines.push(
    '| scenario | checkpoints × MB | stored ratio | ingest MB/s | restore MB/s (cold) | peak RSS MiB | ckvc ÷ best peer: ratio, ingest, restore | delta limit (ckvc ÷ it) |',
  );
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const s of results.scenarios) {
    const m = Object.fromEntries(TOOLS.map((t) => [t, metrics(s.tools[t])]));
    const perCkpt = s.logicalBytes / s.checkpoints / MiB;
    const best = ['ratio', 'ingest', 'restore'].map((k) => fmt(vsBest(m, k), 2)).join(', ');
    const limit =
      s.deltaLimit == null ? '–' : `${fmt(s.deltaLimit, 2)} (${fmt(m.ckvc ? m.ckvc.ratio / s.deltaLimit : null, 2)})`;
    lines.push(
      `| ${s.name} | ${s.checkpoints} × ${fmt(perCkpt, 1)} | ${cell(m, 'ratio', 2)} | ${cell(m, 'ingest', 1)} | ${cell(m, 'restore', 1)} | ${cell(m, 'rss', 0)} | ${best} | ${limit} |`,
    );
  }
  lines.push('');
  lines.push(
    'Cells are ckvc / borg / restic (– : not run). Stored ratio = logical bytes of all checkpoints ÷ bytes of the',
  );
  lines.push(
    'store or repository folder; ingest = logical bytes ÷ the summed wall time of one process per checkpoint;',
  );
  lines.push(
    `restore = the last checkpoint's bytes ÷ the restore command's wall time, ${results.coldCache ? 'page cache dropped first' : 'page cache NOT dropped (not root, or /proc read-only): warm-cache figures'};`,
  );
  lines.push("peak RSS = the largest resident set of any of the tool's processes (GNU time). MB = 2^20 bytes.");
  lines.push('Delta limit = the stored ratio of the ideal XOR delta coding issue 12 prescribes, on these checkpoints');
  lines.push('(tests/bench/real/delta-limit.mjs; safetensors-only scenarios).');
  const skipped = TOOLS.filter((t) => results.tools[t]?.skipped).map((t) => `${t}: ${results.tools[t].skipped}`);
  if (skipped.length) lines.push(`Skipped: ${skipped.join('; ')}.`);
  const versions = TOOLS.filter((t) => results.tools[t]?.version).map((t) => results.tools[t].version);
  const { cpus, loadAvgStart, loadAvgEnd } = results.machine;
  lines.push(
    `Machine: ${cpus} CPUs, 1-minute load average ${loadAvgStart.toFixed(1)} at the start, ${loadAvgEnd.toFixed(1)} at the end.`,
  );
  lines.push(
    `Versions: ${versions.join(', ')}; torch ${results.generation.torch}. Checkpoints: ${results.generation.summary}.`,
  );
  return lines.join('\n');
}

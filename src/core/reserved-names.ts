// Entry names that a file system may treat as `.git` or `.ckvc` (spec/FORMAT.md §5.4). A tree holding one could,
// once checked out, plant a git config whose core.fsmonitor runs a command on the next `git status`, or a ckvc
// store's own files (a prune record that releases data). Git refuses the same spellings (verify_path,
// is_ntfs_dotgit, is_hfs_dotgit); this rule is a superset of git's, applied to every tree on encode and decode.

/** The names guarded, as ckvc reports them. */
export type ReservedName = '.git' | '.ckvc';

// HFS+ drops these code points when comparing names, so `.g\u200cit` opens `.git` there (git's next_hfs_char).
const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/gu;

// Compared after folding either way: NTFS upper-cases through its own table (where dotless ı is I), HFS+ and
// APFS fold and decompose (the Kelvin sign is K). NFKC also folds full-width letters, which is merely stricter.
const FOLDED: [string, ReservedName][] = [
  ['.git', '.git'],
  ['.ckvc', '.ckvc'],
  // NTFS 8.3 short names: Windows gives `.git` the alias GIT~1; the next ones for colliding names are ~2..~4.
  ...[1, 2, 3, 4].flatMap((n): [string, ReservedName][] => [
    [`git~${n}`, '.git'],
    [`ckvc~${n}`, '.ckvc'],
  ]),
];

/** The spelling left once HFS+ ignorables, an NTFS stream suffix (`:...`) and trailing dots and spaces are gone. */
export function fileSystemSpelling(name: string): string {
  const bare = name.replace(HFS_IGNORABLE, '');
  const colon = bare.indexOf(':');
  // Win32 drops trailing dots and spaces from a name: `.git. ` opens `.git`.
  return (colon >= 0 ? bare.slice(0, colon) : bare).replace(/[. ]+$/u, '');
}

/** Which guarded name `name` stands for on some file system, or undefined if none. */
export function reservedEntryName(name: string): ReservedName | undefined {
  const s = fileSystemSpelling(name).normalize('NFKC');
  const lower = s.toLowerCase();
  const upper = s.toUpperCase();
  for (const [folded, reserved] of FOLDED) {
    if (lower === folded || upper === folded.toUpperCase()) return reserved;
  }
  return undefined;
}

// The defaults of gc's grace period and reflog expiry (spec/FORMAT.md §6.3, §15), apart from the code that applies
// them: the CLI shows them in help text without loading the store.

/** How old unreachable data must be before gc deletes it. */
export const DEFAULT_GC_GRACE = '1h';

/** How old a reflog line naming a commit no ref reaches must be before it stops keeping that commit's data. */
export const DEFAULT_REFLOG_EXPIRY = '90d';

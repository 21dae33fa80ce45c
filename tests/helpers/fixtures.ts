// The real PyTorch/NumPy files the tests read (tests/fixtures/README.md says how they were made). They live in
// the repository so that a fresh clone runs its tests without the team's shared folder beside it.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

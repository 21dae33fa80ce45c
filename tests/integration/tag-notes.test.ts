// Tags shown where a commit is shown (issue 16): `show` and the long `log` print a "Tag:" line per tag pointing at
// the commit, an annotated tag with the first line of its message; `--json` carries `tags` with the whole message.
// Tag messages may come from someone else's bundle, so control characters are escaped.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTemp } from '../helpers/temp-dirs.js';
import { commitId, newStore } from '../helpers/test-store.js';
import { randomBytes } from '../helpers/data.js';

afterAll(cleanupTemp);

describe('tags in show and log', () => {
  it('shows each tag of a commit, annotated ones with their message', () => {
    const s = newStore();
    const file = path.join(s.dir, 'model.bin');
    fs.writeFileSync(file, randomBytes(1, 2048));
    const c1 = commitId(s, [file, '-b', 'main', '-m', 'first']);
    fs.writeFileSync(file, randomBytes(2, 2048));
    const c2 = commitId(s, [file, '-b', 'main', '-m', 'second']);
    s.ok(['tag', 'v0', c1]);
    s.ok(['tag', 'v1', c1, '-m', 'best eval so far\nchosen by hand']);
    s.ok(['tag', 'odd', c1, '-m', 'red \x1b[31malert']);

    const shown = s.ok(['show', c1]).stdout;
    expect(shown).toContain('Tag:     v0\n');
    expect(shown).toContain('Tag:     v1: best eval so far\n');
    expect(shown).not.toContain('chosen by hand');
    expect(shown).not.toContain('\x1b');
    expect(shown).toMatch(/Tag: {5}odd: red \\x1b\[31malert\n/);
    expect(s.ok(['show', c2]).stdout).not.toContain('Tag:');

    const json = s.json<any>(['show', c1]);
    const byName = Object.fromEntries(json.tags.map((t: any) => [t.name, t]));
    expect(byName.v0).toEqual({ name: 'v0' });
    expect(byName.v1).toMatchObject({ name: 'v1', message: 'best eval so far\nchosen by hand', tagger: 'test' });
    expect(typeof byName.v1.time).toBe('number');
    expect(s.json<any>(['show', c2]).tags).toBeUndefined();

    const log = s.ok(['log', 'main']).stdout;
    expect(log).toContain('Tag:     v1: best eval so far\n');
    const logJson = s.json<any[]>(['log', 'main']);
    expect(
      logJson
        .find((c) => c.id === c1)
        .tags.map((t: any) => t.name)
        .sort(),
    ).toEqual(['odd', 'v0', 'v1']);
  });
});

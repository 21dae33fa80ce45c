// SSH remote addresses and the ssh command line (spec/PROTOCOL.md §1, §5): both URL forms to one canonical form,
// names ssh would read as options refused, $CKVC_SSH split without a shell, the far path quoted for its shell.
import { describe, expect, it } from 'vitest';
import { CkvcError } from '../../src/core/errors.js';
import { SESSION_OPTIONS, shellQuotePath, splitWords, sshCommand } from '../../src/remote/ssh-command.js';
import { formatSshUrl, looksLikeScp, parseSshUrl } from '../../src/remote/ssh-url.js';

const canonical = (u: string) => formatSshUrl(parseSshUrl(u));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof CkvcError ? e.code : `not a CkvcError: ${String(e)}`;
  }
  return undefined;
}

describe('SSH addresses', () => {
  it('ssh:// and scp-like forms parse to one canonical ssh:// form', () => {
    expect(parseSshUrl('ssh://alice@gpu-box.lan:2222/data/run.ckvc')).toEqual({
      user: 'alice',
      host: 'gpu-box.lan',
      port: 2222,
      path: '/data/run.ckvc',
    });
    expect(canonical('ssh://host/srv/store')).toBe('ssh://host/srv/store');
    expect(canonical('alice@cluster:/scratch/a/.ckvc')).toBe('ssh://alice@cluster/scratch/a/.ckvc');
    expect(canonical('cluster:runs/x')).toBe('ssh://cluster/~/runs/x');
    expect(parseSshUrl('ssh://cluster/~/runs/x').path).toBe('~/runs/x');
    expect(parseSshUrl('ssh://[::1]:22/s')).toEqual({ host: '[::1]', port: 22, path: '/s' });
    // A folder named like a port is still reachable, spelled out.
    expect(canonical('box:~/8765')).toBe('ssh://box/~/8765');
    expect(canonical('box:8765x')).toBe('ssh://box/~/8765x');
  });

  it("scp-like only when a colon comes before any slash (git's rule)", () => {
    expect(looksLikeScp('user@host:/path/.ckvc')).toBe(true);
    expect(looksLikeScp('host:path')).toBe(true);
    expect(looksLikeScp('./user@host:path')).toBe(false);
    expect(looksLikeScp('/abs/a:b')).toBe(false);
    expect(looksLikeScp('http://x/')).toBe(false);
    expect(looksLikeScp('plain-folder')).toBe(false);
  });

  it('names ssh would take for options, bad ports, missing paths and control characters are refused (15)', () => {
    for (const bad of [
      '-oProxyCommand=x:/p',
      'ssh://-oProxyCommand=x/p',
      'ssh://-l@host/p',
      'ssh://host:0/p',
      'ssh://host:99999/p',
      'ssh://host:x/p',
      'ssh://host',
      'ssh://host/',
      'host:',
      'ssh://ho st/p',
      'ssh://host/a\nb',
      'a b@host:/p',
      '127.0.0.1:8765',
      'box:8765/',
    ]) {
      expect(
        codeOf(() => parseSshUrl(bad)),
        bad,
      ).toBe('CKVC_BAD_ARGUMENT');
    }
  });
});

describe('the ssh command line', () => {
  it('$CKVC_SSH is split like a shell without expansions', () => {
    expect(splitWords(`ssh -F '/tmp/my config' -o "User=a b" -i \\~/k\\ 2 $HOME`, 'x')).toEqual([
      'ssh',
      '-F',
      '/tmp/my config',
      '-o',
      'User=a b',
      '-i',
      '~/k 2',
      '$HOME',
    ]);
    expect(splitWords(`  a  ""  'b'"c"  `, 'x')).toEqual(['a', '', 'bc']);
    expect(splitWords(`"a\\"b\\x"`, 'x')).toEqual(['a"b\\x']);
    expect(codeOf(() => splitWords(`ssh 'open`, 'x'))).toBe('CKVC_BAD_ARGUMENT');
    expect(codeOf(() => splitWords('ssh \\', 'x'))).toBe('CKVC_BAD_ARGUMENT');
  });

  it('the far path is one shell word; a leading ~/ stays expandable', () => {
    expect(shellQuotePath("/data/it's here")).toBe("'/data/it'\\''s here'");
    expect(shellQuotePath('~/runs/$x')).toBe("~/'runs/$x'");
    expect(shellQuotePath('~')).toBe('~');
  });

  it('argv: CKVC_SSH words, the session options, -p PORT, destination, then the remote command', () => {
    const a = parseSshUrl('ssh://bob@h:2200/s p');
    const remoteCommand = "ckvc serve --stdio '/s p'";
    expect(sshCommand(a, 'ckvc', {})).toEqual({
      file: 'ssh',
      args: [...SESSION_OPTIONS, '-p', '2200', 'bob@h', remoteCommand],
      remoteCommand,
    });
    const c = sshCommand(parseSshUrl('h:x'), '/opt/ckvc/bin/ckvc', { CKVC_SSH: 'ssh -F cfg' });
    expect([c.file, ...c.args]).toEqual([
      'ssh',
      '-F',
      'cfg',
      ...SESSION_OPTIONS,
      'h',
      "/opt/ckvc/bin/ckvc serve --stdio ~/'x'",
    ]);
    expect(SESSION_OPTIONS).toContain('Compression=no');
    expect(sshCommand(parseSshUrl('ssh://[::1]/s'), 'ckvc', {}).args.at(-2)).toBe('::1');
  });
});

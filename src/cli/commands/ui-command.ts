// `ckvc ui`: the web page of the store (src/ui), served until Ctrl-C. The server code loads only here.
import { parsePort } from '../../core/port-number.js';
import { addCommand, withStore, type CliParser } from '../context.js';
import { untilFirstSignal } from '../interruption.js';
import { info, json, out } from '../render.js';
import { escaped } from '../terminal-text.js';

/** Opens `url` in the desktop's browser when there is one; on a headless cluster node says so and goes on. */
async function openBrowser(url: string): Promise<void> {
  // Loaded here: node:child_process brings node:net and node:dgram, a cost every other command would pay at start.
  const { spawn } = await import('node:child_process');
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
  child.once('error', () => info(`ckvc: no browser to open here (${opener} not found); open ${escaped(url)} yourself`));
  child.unref();
}

export function uiCommand(y: CliParser): void {
  addCommand(
    y,
    'ui',
    'Serve a read-only web page of the store: history graph, metric curves across branches, commits, comparisons',
    (a) =>
      a
        .option('port', { type: 'string', default: '8766', describe: 'port (0: any free port)' })
        .option('host', {
          type: 'string',
          default: '127.0.0.1',
          describe: 'address to bind; other than loopback needs a token',
        })
        .option('open', { type: 'boolean', describe: 'open the page in a browser' })
        .option('token-file', {
          type: 'string',
          describe: 'with a non-loopback --host: file holding the token the page requires (default: $CKVC_TOKEN)',
        }),
    async (args) => {
      const root = await withStore(args, async (s) => s.root);
      const { readToken } = await import('../../api/remote.js');
      const { isLoopback } = await import('../../ui/ui-access.js');
      // On loopback the Host check is the guard; off it the token is required (spec/UI.md §2).
      const token = isLoopback(args.host) ? undefined : await readToken(args.tokenFile);
      const { startUi } = await import('../../ui/ui-server.js');
      const { server, url } = await startUi({
        store: root,
        host: args.host,
        port: parsePort(args.port),
        token,
        log: (l) => info(escaped(l)),
      });
      if (args.json) json({ url, store: root });
      else out(escaped(url));
      info(`showing ${escaped(root)} at ${escaped(url)} (read-only); Ctrl-C stops`);
      if (args.open) await openBrowser(url);
      await untilFirstSignal();
      server.close();
      server.closeAllConnections();
    },
  );
}

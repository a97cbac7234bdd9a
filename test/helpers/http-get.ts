/**
 * HTTP GET as the tests need it: from a test host's namespace or its "outside" namespace (a raw
 * request through busybox nc: the host's static busybox wget crashes outside a container), or
 * from a container (wget, bounded by `timeout`: busybox wget -T crashes in this build).
 * Resolves with the body, or undefined when nothing (or no HTTP) answered.
 */
import { run } from './run';
import type { TestHost } from './test-host';

export type HttpFrom = 'host' | 'outside' | { container: string };

export async function httpGet(host: TestHost, from: HttpFrom, url: string): Promise<string | undefined> {
  if (typeof from === 'object') {
    const r = await host.inContainer(from.container, ['timeout', '5', 'wget', '-q', '-O', '-', url], 10_000);
    return r.code === 0 ? r.stdout : undefined;
  }
  const { hostname, port } = new URL(url);
  const nc = ['busybox', 'nc', '-w', '3', hostname, port];
  const input = 'GET / HTTP/1.0\r\n\r\n';
  const r = from === 'host' ? await host.exec(nc, { timeoutMs: 10_000, input }) : await run('nsenter', [`--net=/run/netns/${host.outNetns}`, ...nc], { timeoutMs: 10_000, input });
  const body = r.stdout.split('\r\n\r\n')[1];
  return r.code === 0 && r.stdout.startsWith('HTTP/1.') && body !== undefined ? body : undefined;
}

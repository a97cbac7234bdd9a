/** Requests to paths loom does not serve, and served paths with another HTTP method: 404. */
import fc from 'fast-check';
import { MAX_BODY_BYTES } from '../../../driver/http/server';
import { mkCase } from './cases';
import { graphemes } from './arbitraries';
import { anyRoute, malformedJson, sized, sizeAround } from './garbage';
import { ALL_ROUTES, UNKNOWN } from './routes';
import { recorded } from './seed';

const SERVED_PATHS = new Set(ALL_ROUTES.map((m) => `/${m}`));
/** Docker's paths are exact: loom routes case-sensitively and without a trailing slash (driver/http/server.ts). */
const servesPath = (p: string): boolean => SERVED_PATHS.has(p.split('?')[0] as string);
const unknownPath = fc
  .oneof(
    fc.constantFrom(
      '/', '/Plugin', '/NetworkDriver', '/NetworkDriver.', '/NetworkDriver.GwAllocChecker', '/NetworkDriver.Frobnicate', '/IpamDriver.RequestPool2',
      '/IpamDriver.RequestPool.', '/Plugin.Activate.x', '/Plugin.Deactivate', '/v1/networks', '/v1/ipam', '/v1/status', '/metrics', '/../../etc/passwd',
      '//Plugin.Activate', '/NetworkDriver.CreateNetwork/x', '/NetworkDriver.CreateNetwork%00', '/NetworkDriver.CreateNetwork;reboot',
      '/%2e%2e/%2e%2e/etc/passwd', '/NetworkDriver.CreateNetwork%2F', '/Plugin%2EActivate', '/$(reboot)', '/%60id%60', '/a%7Cb', '/NetworkDriver.Create%20Network',
      '/NetworkDriver..CreateNetwork', '/IpamDriver.RequestPool/../NetworkDriver.CreateNetwork', '*',
    ),
    fc.tuple(fc.constantFrom('NetworkDriver.', 'IpamDriver.', 'Plugin.', ''), graphemes).map(([p, s]) => '/' + encodeURIComponent(p + s)),
    fc.constantFrom(...ALL_ROUTES).map((m) => `/${m}x`),
  )
  .filter((p) => !servesPath(p));
export const unknownPathCase = fc.oneof(
  fc.tuple(unknownPath, fc.oneof(fc.constant(''), malformedJson, fc.constantFrom(...Object.values(recorded).flat()).map((b) => JSON.stringify(b)))).map(([p, body]) =>
    mkCase(UNKNOWN, body, 'notfound', 'unknown path', 'POST', p),
  ),
  fc.tuple(unknownPath, sizeAround).map(([p, size]) => {
    const text = sized('x', size, 'string');
    return mkCase(UNKNOWN, text, Buffer.byteLength(text) > MAX_BODY_BYTES ? 'error' : 'notfound', 'unknown path, sized body', 'POST', p);
  }),
  // served paths with another HTTP method
  fc.tuple(fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), anyRoute, fc.constantFrom(...Object.values(recorded).flat())).map(([verb, m, b]) =>
    mkCase(UNKNOWN, JSON.stringify(b), 'notfound', `${verb} on a served path`, verb, `/${m}`),
  ),
);

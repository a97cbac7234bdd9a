/**
 * Garbage from scratch, for any route: malformed JSON, JSON that is not an object, invalid
 * UTF-8, empty bodies, wrong types and missing required fields in valid bodies, deep nesting,
 * huge strings, bodies just under, at and over the size limit, junk objects and the recorded
 * bodies of other calls.
 */
import fc from 'fast-check';
import { MAX_BODY_BYTES } from '../../../driver/http/server';
import { FuzzCase, jsonCase, mkCase } from './cases';
import { notArray, notBool, notInt, notObject, notString, smallDict } from './arbitraries';
import { ALL_ROUTES, garbageExpect, IDEMPOTENT, objectExpect, READONLY, REQUIRED, SCHEMA_ROUTES } from './routes';
import { Body, clone, EP, firstRecorded, GENERIC, isObj, NET, recorded, SEED_BODIES, SEED_POOL } from './seed';

/** Every typed field of each schema route, with values of a wrong type for it. */
const TYPED_FIELDS: Record<string, Record<string, fc.Arbitrary<unknown>>> = {
  'NetworkDriver.CreateNetwork': { NetworkID: notString(false), Options: notObject(true), IPv4Data: notArray(true), IPv6Data: notArray(true) },
  'NetworkDriver.AllocateNetwork': { NetworkID: notString(false), Options: notObject(true), IPv4Data: notArray(true), IPv6Data: notArray(true) },
  'NetworkDriver.DeleteNetwork': { NetworkID: notString(false) },
  'NetworkDriver.FreeNetwork': { NetworkID: notString(false) },
  'NetworkDriver.CreateEndpoint': { NetworkID: notString(false), EndpointID: notString(false), Interface: notObject(true), Options: notObject(true) },
  'NetworkDriver.DeleteEndpoint': { NetworkID: notString(false), EndpointID: notString(false) },
  'NetworkDriver.EndpointOperInfo': { NetworkID: notString(false), EndpointID: notString(false) },
  'NetworkDriver.Leave': { NetworkID: notString(false), EndpointID: notString(false) },
  'NetworkDriver.RevokeExternalConnectivity': { NetworkID: notString(false), EndpointID: notString(false) },
  'NetworkDriver.Join': { NetworkID: notString(false), EndpointID: notString(false), SandboxKey: notString(false), Options: notObject(true) },
  'NetworkDriver.ProgramExternalConnectivity': { NetworkID: notString(false), EndpointID: notString(false), Options: notObject(true) },
  'NetworkDriver.DiscoverNew': { DiscoveryType: notInt },
  'NetworkDriver.DiscoverDelete': { DiscoveryType: notInt },
  'IpamDriver.RequestPool': { AddressSpace: notString(false), Pool: notString(false), SubPool: notString(false), Options: notObject(true), V6: notBool },
  'IpamDriver.ReleasePool': { PoolID: notString(false) },
  'IpamDriver.RequestAddress': { PoolID: notString(false), Address: notString(false), Options: notObject(true) },
  'IpamDriver.ReleaseAddress': { PoolID: notString(false), Address: notString(false) },
  'NetworkDriver.GwAllocCheck': { Options: notObject(true) },
};
/** A valid (or recorded) body of each schema route; ids point at the seeded objects. */
const VALID_BODY: Record<string, Body> = {
  'NetworkDriver.CreateNetwork': SEED_BODIES.network,
  'NetworkDriver.AllocateNetwork': firstRecorded('NetworkDriver.AllocateNetwork'),
  'NetworkDriver.DeleteNetwork': { NetworkID: NET },
  'NetworkDriver.FreeNetwork': { NetworkID: NET },
  'NetworkDriver.CreateEndpoint': SEED_BODIES.endpoint,
  'NetworkDriver.DeleteEndpoint': { NetworkID: NET, EndpointID: EP },
  'NetworkDriver.EndpointOperInfo': { NetworkID: NET, EndpointID: EP },
  'NetworkDriver.Leave': { NetworkID: NET, EndpointID: EP },
  'NetworkDriver.RevokeExternalConnectivity': { NetworkID: NET, EndpointID: EP },
  'NetworkDriver.Join': SEED_BODIES.join,
  'NetworkDriver.ProgramExternalConnectivity': { NetworkID: NET, EndpointID: EP, Options: {} },
  'NetworkDriver.DiscoverNew': firstRecorded('NetworkDriver.DiscoverNew'),
  'NetworkDriver.DiscoverDelete': firstRecorded('NetworkDriver.DiscoverNew'),
  'IpamDriver.RequestPool': SEED_BODIES.pool,
  'IpamDriver.ReleasePool': { PoolID: SEED_POOL },
  'IpamDriver.RequestAddress': SEED_BODIES.address,
  'IpamDriver.ReleaseAddress': { PoolID: SEED_POOL, Address: '198.18.50.2' },
  'NetworkDriver.GwAllocCheck': { Options: { [GENERIC]: {} } },
};

const schemaRoute = fc.constantFrom(...SCHEMA_ROUTES);
/** Routes with a required field (all schema routes but GwAllocCheck). */
const requiringRoute = fc.constantFrom(...SCHEMA_ROUTES.filter((m) => (REQUIRED[m] ?? []).length > 0));
export const anyRoute = fc.constantFrom(...ALL_ROUTES);
const notJsonObject = fc.oneof(
  fc.constantFrom('null', '[]', '[{}]', '0', '-1', '1e400', '"NetworkID"', 'true', 'false', '""', '[null]', `[${JSON.stringify(SEED_BODIES.network)}]`),
  fc.jsonValue({ maxDepth: 3 }).filter((v) => !isObj(v)).map((v) => JSON.stringify(v)),
);
export const malformedJson = fc.oneof(
  fc.constantFrom(
    '{', '}', '{"NetworkID": ', '{"NetworkID":"x",}', "{'NetworkID':'x'}", '{NetworkID:1}', '{"a":1}{"b":2}', '{"a":1} x', 'nul', 'NaN', 'undefined',
    '{"a":NaN}', '{"a":Infinity}', '{"a":01}', '{"a":"\\x41"}', '{"a":"\u0001"}', '{"a":1 /* c */}', '\u0000', '{"a":"\\ud800"', '<xml/>', 'NetworkID=x',
  ),
  fc.tuple(anyRoute, fc.nat()).map(([m, n]) => {
    const text = JSON.stringify(VALID_BODY[m] ?? SEED_BODIES.network);
    return text.slice(0, 1 + (n % (text.length - 1)));
  }),
  fc.string({ unit: 'binary', maxLength: 64 }).filter((s) => {
    try {
      return !isObj(JSON.parse(s.trim() || 'null'));
    } catch {
      return true;
    }
  }).filter((s) => s.trim() !== ''),
);

/** Raw JSON of a deep nest of objects or arrays. */
const deepJson = (depth: number, arr: boolean): string => (arr ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '0' + '}'.repeat(depth));
const depth = fc.oneof(fc.constantFrom(100, 1_000, 10_000, 40_000), fc.integer({ min: 2, max: 5_000 }));

/** A body of exactly `size` bytes for `method` that no schema accepts (or, for argument-less calls, an object). */
export function sized(method: string, size: number, pad: 'string' | 'spaces'): string {
  const field = REQUIRED[method]?.[0] ?? 'Junk';
  if (pad === 'spaces') {
    const text = JSON.stringify({ [field]: 'x'.repeat(300) });
    return text + ' '.repeat(Math.max(0, size - text.length));
  }
  const shell = JSON.stringify({ [field]: '' });
  return JSON.stringify({ [field]: 'x'.repeat(Math.max(0, size - shell.length)) });
}
export const sizeAround = fc.constantFrom(MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 100, MAX_BODY_BYTES - 4096, 2 * MAX_BODY_BYTES);

export const scratch: Array<{ weight: number; arbitrary: fc.Arbitrary<FuzzCase> }> = [
  // malformed JSON and JSON that is not an object, with and without a BOM
  {
    weight: 3,
    arbitrary: fc.tuple(anyRoute, fc.oneof(malformedJson, notJsonObject), fc.boolean()).map(([m, text, bom]) =>
      mkCase(m, bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]) : text, 'error', 'not a JSON object'),
    ),
  },
  // invalid UTF-8
  {
    weight: 1,
    arbitrary: fc.tuple(anyRoute, fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([m, bytes]) =>
      mkCase(m, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(bytes)]), 'error', 'invalid UTF-8'),
    ),
  },
  {
    weight: 1,
    arbitrary: schemaRoute.map((m) => {
      const field = REQUIRED[m]?.[0] ?? 'x';
      return mkCase(m, Buffer.concat([Buffer.from(`{"${field}":"`), Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xff]), Buffer.from('"}')]), garbageExpect(m), 'invalid UTF-8 in a field');
    }),
  },
  // empty bodies and bodies of only whitespace
  {
    weight: 1,
    arbitrary: fc.tuple(anyRoute, fc.constantFrom('', '\n', '  \r\n\t ')).map(([m, text]) => mkCase(m, text, objectExpect(m), 'empty body')),
  },
  // a wrong type for any typed field of a valid body
  {
    weight: 6,
    arbitrary: schemaRoute.chain((m) => {
      const fields = TYPED_FIELDS[m] ?? {};
      return fc
        .constantFrom(...Object.keys(fields))
        .chain((f) => (fields[f] as fc.Arbitrary<unknown>).map((v) => jsonCase(m, { ...clone(VALID_BODY[m]), [f]: v }, 'error', `wrong type for ${f}`)));
    }),
  },
  // a required field missing from a valid body
  {
    weight: 3,
    arbitrary: requiringRoute.chain((m) =>
      fc.constantFrom(...(REQUIRED[m] ?? [])).map((f) => {
        const b = clone(VALID_BODY[m] as Body);
        delete b[f];
        return jsonCase(m, b, 'error', `missing ${f}`);
      }),
    ),
  },
  // null / undefined-ish required fields
  {
    weight: 1,
    arbitrary: requiringRoute.map((m) => {
      const b = clone(VALID_BODY[m] as Body);
      for (const f of REQUIRED[m] ?? []) b[f] = null;
      return jsonCase(m, b, 'error', 'null required fields');
    }),
  },
  // deeply nested values in a required field, and deeply nested whole bodies
  {
    weight: 2,
    arbitrary: fc.tuple(requiringRoute, depth, fc.boolean()).map(([m, d, arr]) => {
      const field = REQUIRED[m]?.[0] ?? 'x';
      const text = JSON.stringify({ ...clone(VALID_BODY[m]), [field]: '@@DEEP@@' }).replace('"@@DEEP@@"', deepJson(d, arr));
      return mkCase(m, text, 'error', 'deep nesting in a field');
    }),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(anyRoute, depth, fc.boolean()).map(([m, d, arr]) =>
      mkCase(m, deepJson(d, arr), arr ? 'error' : objectExpect(m), 'deep nesting as the body'),
    ),
  },
  // huge strings in a required field
  {
    weight: 2,
    arbitrary: fc.tuple(requiringRoute, fc.constantFrom(4097, 10_000, 100_000, 250_000)).map(([m, n]) => {
      const field = REQUIRED[m]?.[0] ?? 'x';
      return jsonCase(m, { ...clone(VALID_BODY[m]), [field]: 'x'.repeat(n) }, 'error', 'huge string');
    }),
  },
  // bodies just under, at and over the size limit
  {
    weight: 2,
    arbitrary: fc.tuple(anyRoute, sizeAround, fc.constantFrom<'string' | 'spaces'>('string', 'spaces')).map(([m, size, pad]) => {
      const text = sized(m, size, pad);
      const over = Buffer.byteLength(text) > MAX_BODY_BYTES;
      return mkCase(m, text, over ? 'error' : objectExpect(m), `${Buffer.byteLength(text)} bytes`);
    }),
  },
  // objects of junk (argument-less calls ignore them; the others miss their fields)
  {
    weight: 2,
    arbitrary: fc.tuple(anyRoute, fc.oneof(smallDict, fc.object({ maxDepth: 2, maxKeys: 4 }).map((o) => JSON.parse(JSON.stringify(o)) as Body))).map(([m, o]) => {
      const b = { ...o };
      for (const f of REQUIRED[m] ?? []) delete b[f];
      return jsonCase(m, b, objectExpect(m), 'junk object');
    }),
  },
  // recorded bodies of other calls: argument-less calls ignore them, idempotent calls find nothing
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...READONLY, ...IDEMPOTENT.filter((m) => !m.startsWith('NetworkDriver.Discover'))), fc.constantFrom(...Object.values(recorded).flat()))
      .map(([m, b]) => jsonCase(m, b, READONLY.includes(m) ? 'readonly' : 'noop', 'recorded body of another call')),
  },
];

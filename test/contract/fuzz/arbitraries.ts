/**
 * Building blocks of the generators: values of a wrong type, hostile and unknown ids, bad
 * subnets and gateways, huge strings, and the mutations (Mut) that make a valid body invalid
 * whatever else it holds. broken() and noop() turn bodies and mutations into FuzzCases.
 */
import fc from 'fast-check';
import { ID_PATTERN } from '../../../driver/model/naming';
import { FuzzCase, jsonCase } from './cases';
import { BAD_CIDR_V4, BAD_CIDR_V6, BAD_GATEWAYS, BAD_IDS, HOSTILE, UNKNOWN_EP_IDS, UNKNOWN_NET_IDS, UNKNOWN_POOL_IDS } from './hostile-values';
import type { Expect } from './routes';
import { Body, clone, EP, GENERIC, isObj, NET, SEED_POOL } from './seed';

/** A change to a request body. */
export type Mut = (b: Body) => Body;

export const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/).filter((s) => s !== NET && s !== EP);
const swarmId = fc.stringMatching(/^[0-9a-z]{25}$/);
const numberLike = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const smallArr = fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), { maxLength: 3 });
export const smallDict = fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxKeys: 3 });
export const nul = fc.constant(null);
/** Wrong types; `null` only where the schema does not take null as "empty". */
export const notString = (nullOk: boolean): fc.Arbitrary<unknown> => fc.oneof(numberLike, fc.boolean(), smallArr, smallDict, ...(nullOk ? [] : [nul]));
export const notObject = (nullOk: boolean): fc.Arbitrary<unknown> =>
  fc.oneof(numberLike, fc.boolean(), fc.string({ maxLength: 16 }), smallArr, ...(nullOk ? [] : [nul]));
export const notArray = (nullOk: boolean): fc.Arbitrary<unknown> =>
  fc.oneof(numberLike, fc.boolean(), fc.string({ maxLength: 16 }), smallDict, ...(nullOk ? [] : [nul]));
export const notBool: fc.Arbitrary<unknown> = fc.oneof(numberLike, fc.constantFrom('true', 'false', 'yes', ''), smallArr, smallDict, nul);
export const notInt: fc.Arbitrary<unknown> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
  fc.constantFrom('1', '0', 'one', ''),
  fc.boolean(),
  smallArr,
  smallDict,
  nul,
);
export const graphemes = fc.string({ unit: 'grapheme', maxLength: 24 });
/** Option keys (zod drops `__proto__` keys, so such an entry would just vanish). */
export const optKey = graphemes.filter((k) => k !== '__proto__');
const binaryStr = fc.string({ unit: 'binary', maxLength: 24 });
export const hostile = fc.constantFrom(...HOSTILE);
const badId: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...BAD_IDS) },
  { weight: 2, arbitrary: fc.oneof(graphemes, binaryStr).filter((s) => !ID_PATTERN.test(s)) },
  { weight: 2, arbitrary: notString(false) },
);
export const unknownNetId = fc.oneof(hex64, swarmId, fc.constantFrom(...UNKNOWN_NET_IDS));
export const unknownEpId = fc.oneof(hex64, fc.constantFrom(...UNKNOWN_EP_IDS));
export const unknownPoolId = fc.oneof(
  fc.constantFrom(...UNKNOWN_POOL_IDS),
  fc.oneof(graphemes, binaryStr).filter((s) => s.length > 0 && s !== SEED_POOL),
  fc.tuple(fc.constantFrom('LoomLocal', 'LoomGlobal', 'tracerlocal'), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 8, max: 32 })).map(
    ([space, x, len]) => `${space}/198.19.${x}.0/${len}`,
  ),
);
const hugeLen = fc.constantFrom(65, 129, 257, 4097, 10_000, 100_000, 200_000);
export const hugeString = hugeLen.map((n) => 'x'.repeat(n));
/** Longer than any id may be (128 for network and endpoint ids, 256 for pool ids). */
const hugeId = fc.constantFrom(129, 257, 4097, 100_000, 200_000).map((n) => 'x'.repeat(n));
export const badCidr = fc.constantFrom(...BAD_CIDR_V4, ...BAD_CIDR_V6);
export const badOrHostileCidr: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: badCidr },
  { weight: 1, arbitrary: hostile.filter((s) => s !== '') },
  { weight: 1, arbitrary: notString(false) },
  { weight: 1, arbitrary: hugeString },
);

export const badGateway: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...BAD_GATEWAYS) },
  { weight: 1, arbitrary: hostile.filter((s) => s !== '') },
  { weight: 1, arbitrary: notString(true) },
  { weight: 1, arbitrary: hugeString },
);

export const set = (field: string, value: fc.Arbitrary<unknown>): fc.Arbitrary<Mut> => value.map((v) => (b: Body) => ({ ...b, [field]: v }));
export const drop = (field: string): fc.Arbitrary<Mut> =>
  fc.constant((b: Body) => {
    const c = { ...b };
    delete c[field];
    return c;
  });
export const setMany = (fields: fc.Arbitrary<Body>): fc.Arbitrary<Mut> => fields.map((f) => (b: Body) => ({ ...b, ...f }));
export const objOf = (v: unknown): Body => (isObj(v) ? { ...v } : {});
/** Sets Options[GENERIC][key] = value (creating the maps if a previous mutation broke them). */
export const setGeneric = (kv: fc.Arbitrary<[string, unknown]>): fc.Arbitrary<Mut> =>
  kv.map(([k, v]) => (b: Body) => {
    const options = objOf(b.Options);
    return { ...b, Options: { ...options, [GENERIC]: { ...objOf(options[GENERIC]), [k]: v } } };
  });
/** Harmless noise: unknown top-level keys (ignored by the schemas), a body stays as broken as it was. */
const noise: fc.Arbitrary<Mut> = fc
  .tuple(fc.oneof(fc.constantFrom('Extra', 'networkid', 'NetworkId', '__proto__', 'constructor', 'prototype', '$where', ''), graphemes), fc.jsonValue({ maxDepth: 2 }))
  .filter(([k]) => !['NetworkID', 'EndpointID', 'PoolID', 'Options', 'Interface', 'IPv4Data', 'IPv6Data', 'SandboxKey', 'AddressSpace', 'Pool', 'SubPool', 'V6', 'Address', 'DiscoveryType', 'DiscoveryData'].includes(k))
  .map(([k, v]) => (b: Body) => ({ ...b, [k]: v }));

/** A recorded (or seed-derived) body with noise and 1-3 mutations that each make it invalid. */
export function broken(method: string, bases: Body[], breakers: Array<fc.Arbitrary<Mut>>, expect: Expect = 'error'): fc.Arbitrary<FuzzCase> {
  return fc
    .record({
      base: fc.constantFrom(...bases),
      noise: fc.array(noise, { maxLength: 2 }),
      breaks: fc.array(fc.oneof(...breakers), { minLength: 1, maxLength: 3 }),
      newline: fc.boolean(),
    })
    .map(({ base, noise: ns, breaks, newline }) => {
      let b = clone(base);
      for (const n of ns) b = n(b);
      for (const m of breaks) b = m(b);
      return jsonCase(method, b, expect, 'mutated recording', newline);
    });
}

/** A body whose (well-formed) ids name nothing, or whose other fields the call ignores: a 200 must be a no-op. */
export function noop(method: string, bodies: fc.Arbitrary<Body>): fc.Arbitrary<FuzzCase> {
  return fc.tuple(bodies, fc.array(noise, { maxLength: 2 })).map(([b, ns]) => {
    let body = b;
    for (const n of ns) body = n(body);
    return jsonCase(method, body, 'noop', 'unknown ids');
  });
}

export const idBreakers = (...fields: string[]): Array<fc.Arbitrary<Mut>> => fields.flatMap((f) => [set(f, badId), drop(f), set(f, hugeId)]);
export const optionsGarbage: fc.Arbitrary<Body> = fc.oneof(
  smallDict,
  fc.dictionary(fc.constantFrom('loom.frobnicate', 'com.docker.network.portmap', 'x'), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 3 }),
);

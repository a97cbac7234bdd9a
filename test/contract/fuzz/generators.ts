/**
 * Every generated hostile request: mutations of recorded bodies per route (creation calls get
 * more of the budget), garbage from scratch for any route, and paths loom does not serve.
 */
import fc from 'fast-check';
import type { FuzzCase } from './cases';
import { createEndpoint, endpointCall, join, programPorts, publishNothing } from './endpoint-generators';
import { allocateNetwork, createNetwork, deleteNetwork, discovery, freeNetwork, gwAllocCheck } from './network-generators';
import { releaseAddress, releasePool, requestAddress, requestPool } from './ipam-generators';
import { scratch } from './garbage';
import { unknownPathCase } from './unknown-paths';
import { notObject, set } from './arbitraries';

/** Mutations of recorded bodies, per route (creation calls get more of the budget). */
const perRoute: Array<{ weight: number; arbitrary: fc.Arbitrary<FuzzCase> }> = [
  { weight: 8, arbitrary: createNetwork },
  { weight: 7, arbitrary: createEndpoint },
  { weight: 4, arbitrary: join },
  { weight: 6, arbitrary: requestPool },
  { weight: 5, arbitrary: requestAddress },
  { weight: 2, arbitrary: deleteNetwork },
  { weight: 2, arbitrary: endpointCall('NetworkDriver.DeleteEndpoint', false) },
  { weight: 2, arbitrary: endpointCall('NetworkDriver.Leave', false) },
  { weight: 1, arbitrary: endpointCall('NetworkDriver.EndpointOperInfo', true) },
  { weight: 1, arbitrary: endpointCall('NetworkDriver.RevokeExternalConnectivity', true) },
  { weight: 1, arbitrary: endpointCall('NetworkDriver.ProgramExternalConnectivity', false, [set('Options', notObject(true))]) },
  { weight: 1, arbitrary: publishNothing },
  { weight: 3, arbitrary: programPorts },
  { weight: 2, arbitrary: gwAllocCheck },
  { weight: 1, arbitrary: freeNetwork },
  { weight: 1, arbitrary: allocateNetwork },
  { weight: 1, arbitrary: discovery('NetworkDriver.DiscoverNew') },
  { weight: 1, arbitrary: discovery('NetworkDriver.DiscoverDelete') },
  { weight: 2, arbitrary: releasePool },
  { weight: 2, arbitrary: releaseAddress },
];

/** One hostile request of any kind. */
export const anyCase: fc.Arbitrary<FuzzCase> = fc.oneof(
  { weight: 60, arbitrary: fc.oneof(...perRoute) },
  { weight: 30, arbitrary: fc.oneof(...scratch) },
  { weight: 6, arbitrary: unknownPathCase },
);

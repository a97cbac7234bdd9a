/**
 * The answers to Docker's handshake calls, which depend only on configuration: the
 * same objects serve the real handlers and the early socket that answers while the
 * rest of loomd is still loading.
 */
export const LOCAL_SPACE = 'LoomLocal';
export const GLOBAL_SPACE = 'LoomGlobal';

export const staticAnswers = (scope: 'local' | 'global'): Record<string, object> => ({
  'Plugin.Activate': { Implements: ['NetworkDriver', 'IpamDriver'] },
  // GwAllocChecker (Docker 28+): Docker then asks GwAllocCheck before each CreateNetwork.
  'NetworkDriver.GetCapabilities': { Scope: scope, ConnectivityScope: scope, GwAllocChecker: true },
  // Allocations are persisted by loom itself; docs/state.md explains why replay is off.
  'IpamDriver.GetCapabilities': { RequiresMACAddress: false, RequiresRequestReplay: false },
  'IpamDriver.GetDefaultAddressSpaces': { LocalDefaultAddressSpace: LOCAL_SPACE, GlobalDefaultAddressSpace: GLOBAL_SPACE },
});

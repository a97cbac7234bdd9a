/**
 * The answers to Docker's handshake calls, which depend only on configuration: the
 * same objects serve the real handlers and the early socket that answers while the
 * rest of loomd is still loading. The IPAM's own come from ipam-driver.
 */
import { IPAM_HANDSHAKE } from '../../ipam-driver/index';
import type { ActivateReply, NetworkCapabilitiesReply } from './wire';

export type HandshakeAnswers = typeof IPAM_HANDSHAKE & { 'Plugin.Activate': ActivateReply; 'NetworkDriver.GetCapabilities': NetworkCapabilitiesReply };

export const staticAnswers = (scope: 'local' | 'global'): HandshakeAnswers => ({
  'Plugin.Activate': { Implements: ['NetworkDriver', 'IpamDriver'] },
  // GwAllocChecker (Docker 28+): Docker then asks GwAllocCheck before each CreateNetwork.
  'NetworkDriver.GetCapabilities': { Scope: scope, ConnectivityScope: scope, GwAllocChecker: true },
  ...IPAM_HANDSHAKE,
});

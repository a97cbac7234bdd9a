/**
 * Types of loom's replies to the NetworkDriver calls (PascalCase, exactly as Docker
 * reads them; moby's drivers/remote/api/api.go). The request schemas are in wire.ts.
 */

/** /Plugin.Activate */
export interface ActivateReply {
  Implements: string[];
}

/** /NetworkDriver.GetCapabilities */
export interface NetworkCapabilitiesReply {
  Scope: 'local' | 'global';
  ConnectivityScope: 'local' | 'global';
  /** Docker 28+: ask GwAllocCheck before CreateNetwork. */
  GwAllocChecker: boolean;
}

/**
 * The request queue in front of loom's rtnetlink socket (the `netlink` npm package):
 * one request at a time, each with a deadline.
 *
 * Hazards handled here:
 * - the library mixes up the replies of two concurrent dumps ("Multipart message not
 *   terminated properly"): requests are serialized by one mutex;
 * - a reply the kernel never sends would block every later kernel call behind that mutex:
 *   each request has a deadline (ETIMEDOUT), after which the socket is replaced, so a late
 *   reply cannot be taken for the answer to a later request.
 */
import { Mutex } from 'async-mutex';
import { createRtNetlink, RtNetlinkSocket } from './netlink-lib';
import { LoomError } from '../../lib/errors';
import { errnoOf, kernelError } from './netlink-codec';
import { NetlinkWorker, WorkerUnavailable } from './netlink-worker';

/** How long one netlink request may take before it fails (and the socket is replaced). */
export const NETLINK_TIMEOUT_MS = 5_000;

/** Tests: the request deadline and the socket factory. */
export interface ChannelOptions {
  timeoutMs?: number;
  /** A socket factory (tests): every request, deletions too, then goes to its sockets. */
  open?: () => RtNetlinkSocket;
}

export class NetlinkChannel {
  private socket: RtNetlinkSocket;
  private readonly mutex = new Mutex();
  /** Deletions (slow in the kernel) on a thread of their own; none with a test's socket factory. */
  private readonly worker: NetlinkWorker | undefined;

  /** Called with the errno of every request the kernel refuses (metrics). */
  onError: ((errno: string) => void) | undefined;

  constructor(private readonly opts: ChannelOptions = {}) {
    this.socket = (opts.open ?? createRtNetlink)();
    this.worker = opts.open ? undefined : new NetlinkWorker(opts.timeoutMs ?? NETLINK_TIMEOUT_MS);
  }

  /**
   * RTM_DELLINK, on the worker thread (netlink-worker.ts: the kernel answers a deletion only
   * after 10-20 ms, which would block the event loop), else through the queue. Not ordered
   * with the queue's requests: callers that need the link gone first await this.
   */
  async delLink(data: { index?: number }, attrs?: { ifname?: string; targetNetnsid?: number }): Promise<void> {
    if (this.worker) {
      try {
        return await this.worker.delLink(data, attrs);
      } catch (err) {
        if (!(err instanceof WorkerUnavailable)) {
          this.onError?.(errnoOf(err) ?? (err instanceof LoomError && err.errno ? err.errno : 'other'));
          throw err;
        }
      }
    }
    await this.serial((s) => s.delLink(data, attrs));
  }

  /**
   * Runs `fn` with the socket, alone and within the deadline. The socket is only ever
   * handed out here, so no request can bypass the queue.
   */
  serial<T>(fn: (sock: RtNetlinkSocket) => Promise<T>): Promise<T> {
    return this.mutex.runExclusive(async () => {
      const ms = this.opts.timeoutMs ?? NETLINK_TIMEOUT_MS;
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new LoomError('unavailable', `netlink request got no answer within ${ms} ms`, 'ETIMEDOUT')), ms);
      });
      try {
        return await Promise.race([fn(this.socket), expired]);
      } catch (err) {
        if (err instanceof LoomError && err.errno === 'ETIMEDOUT') this.replaceSocket();
        this.onError?.(errnoOf(err) ?? (err instanceof LoomError && err.errno ? err.errno : 'other'));
        throw err;
      } finally {
        clearTimeout(timer);
      }
    });
  }

  /** `serial`, with a refusal turned into a LoomError naming `op` (errno mapped to a kind). */
  async call<T>(op: string, fn: (sock: RtNetlinkSocket) => Promise<T>): Promise<T> {
    try {
      return await this.serial(fn);
    } catch (err) {
      throw kernelError(op, err);
    }
  }

  private replaceSocket(): void {
    const old = this.socket;
    this.socket = (this.opts.open ?? createRtNetlink)();
    try {
      old.socket.socket.close();
    } catch {
      // already closed
    }
  }

  /** Closes the socket; resolves once the deletion worker, if any, has ended. */
  close(): Promise<void> {
    this.socket.socket.socket.close();
    return this.worker?.stop() ?? Promise.resolve();
  }
}

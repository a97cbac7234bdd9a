/**
 * Link deletions made on a worker thread, with a netlink socket of its own.
 *
 * Why: the kernel handles an rtnetlink request inside the sendmsg() that carries it, and the
 * `netlink` package sends synchronously, so a request blocks loomd's event loop for as long as
 * the kernel takes. Deleting a link takes it 10-20 ms (it waits for RCU grace periods): while
 * a DeleteEndpoint's veth pair was removed after the answer, the next plugin call (dockerd's
 * ReleaseAddress, right behind it) waited that long before loomd could even read it. On a
 * worker the wait blocks only the worker.
 *
 * The worker starts with the first deletion and stops after IDLE_MS without one (it costs
 * some 10 MiB while it lives; starting one takes it ~100 ms, off the event loop). When it says
 * nothing for the deadline while deletions are pending, they fail with ETIMEDOUT and the
 * worker is replaced, as the main socket is (netlink-channel.ts). If no worker can run (none
 * can be made, or it fails before it has opened its socket), deletions fail with
 * WorkerUnavailable and the caller makes them on its own socket.
 */
import { Worker } from 'node:worker_threads';
import { LoomError } from '../../lib/errors';

/** A worker that has made no deletion for this long stops. */
export const IDLE_MS = 10_000;

/** How long a new worker may take to start (load the addon, open nothing yet) before its first answer is due. */
const START_MS = 10_000;

/**
 * The worker's program: one request at a time, the library's error message passed back as is.
 * Each request has a socket of its own, closed after it: the addon's socket must never be open
 * when the thread ends (its finalizer then crashes the whole process), and an idle worker
 * holds none, so it can stop (or the process exit) at any moment it is not in the kernel.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createRtNetlink } = require(workerData.rt);
parentPort.postMessage({ ready: true });
let chain = Promise.resolve();
parentPort.on('message', (m) => {
  chain = chain.then(async () => {
    if (m.exit) return parentPort.close();
    let sock;
    let error;
    try {
      sock = createRtNetlink();
      await sock.delLink(m.data, m.attrs);
    } catch (err) {
      error = String((err && err.message) || err);
    }
    // Closed and answered from an immediate, outside the addon's callbacks: delLink settles
    // inside the addon's read callback (promise jobs run before it returns), and an answer
    // posted from there lets the main thread exit, ending this thread while it is still inside
    // the addon, whose next call into JS then fails and aborts the process (node-addon-api's
    // fatal Error::Error). Answered once the socket is closed: the process may exit at once.
    await new Promise((r) => setImmediate(r));
    if (sock) sock.socket.socket.close();
    parentPort.postMessage(error === undefined ? { id: m.id } : { id: m.id, error });
  });
});
`;

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** No worker can run here: make the request on the main socket. */
export class WorkerUnavailable extends Error {}

export class NetlinkWorker {
  private worker: Worker | undefined;
  /** The current worker has opened its socket. */
  private ready = false;
  /** No worker could run: every deletion fails with WorkerUnavailable from now on. */
  private broken = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private idleTimer: NodeJS.Timeout | undefined;
  /**
   * Armed while requests are pending and re-armed by every message from the worker: it fires
   * when the worker has said nothing for the deadline, i.e. the request it is making is stuck
   * (the worker makes them one at a time, so a request waiting behind others, e.g. the veth
   * pairs of 50 containers removed at once, is not timed while it waits).
   */
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  /**
   * Deletes a link (RTM_DELLINK with `data` and `attrs`, as the library's delLink takes them)
   * on the worker; resolves when the kernel answered.
   */
  delLink(data: { index?: number }, attrs?: { ifname?: string; targetNetnsid?: number }): Promise<void> {
    const w = this.ensure();
    if (!w) return Promise.reject(new WorkerUnavailable('no netlink worker'));
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (!this.watchdog) this.arm(this.ready ? this.timeoutMs : START_MS + this.timeoutMs);
      w.postMessage({ id, data, attrs });
    });
  }

  /** (Re)starts the deadline of the request the worker is making. */
  private arm(ms = this.timeoutMs): void {
    this.disarm();
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      // The worker is stuck in the kernel (or never started): later deletions go to a new one.
      void this.stop(new LoomError('unavailable', `netlink request got no answer within ${this.timeoutMs} ms`, 'ETIMEDOUT'));
    }, ms);
  }

  private disarm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  /**
   * Stops the worker once it is out of the kernel (it is never terminated: see WORKER_SOURCE);
   * requests in flight fail with `reason`. Resolves when it has ended (at most after 2 s).
   */
  stop(reason: Error = new LoomError('unavailable', 'netlink worker stopped')): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.disarm();
    for (const [id, p] of this.pending) {
      p.reject(reason);
      this.pending.delete(id);
    }
    if (!w) return Promise.resolve();
    // Held (ref'd) until it has ended: a caller awaiting this (loomd's stop) must not see the
    // process end under it because nothing else kept the event loop alive.
    w.ref();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      w.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      w.postMessage({ exit: true });
    });
  }

  private ensure(): Worker | undefined {
    if (this.worker || this.broken) return this.worker;
    let w: Worker;
    try {
      w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { rt: require.resolve('netlink/dist/rt/rt') },
        // A few requests at a time: a small heap is plenty, and keeps the thread's memory small.
        resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      });
    } catch {
      this.broken = true;
      return undefined;
    }
    w.unref();
    w.on('message', (m: { id: number; error?: string; ready?: true }) => {
      if (this.worker !== w) return;
      if (m.ready) {
        this.ready = true;
        // Starting the worker is not part of the first request's deadline.
        if (this.pending.size) this.arm();
      } else this.answered(m);
    });
    // Before its socket is open, a failure means no worker can run here (the addon cannot load
    // in a worker, no thread can be made): the deletions go to the main socket from then on.
    const failed = (err: Error): void => {
      if (this.worker !== w) return;
      if (!this.ready) this.broken = true;
      void this.stop(this.ready ? err : new WorkerUnavailable(err.message));
    };
    w.on('error', (err) => failed(err instanceof Error ? err : new Error(String(err))));
    w.on('exit', (code) => failed(new LoomError('unavailable', `netlink worker exited (${code})`)));
    this.worker = w;
    this.ready = false;
    return w;
  }

  private answered(m: { id: number; error?: string }): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.error === undefined) p.resolve();
    else p.reject(new Error(m.error));
    if (this.pending.size) this.arm();
    else {
      this.disarm();
      if (this.worker) {
        this.idleTimer = setTimeout(() => void this.stop(), IDLE_MS);
        this.idleTimer.unref();
      }
    }
  }
}

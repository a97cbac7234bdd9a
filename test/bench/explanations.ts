/**
 * For docs/benchmarks.md: why a target can be missed and what would close it, keyed by target id.
 * Printed only for the targets a run actually missed (or could not measure); every figure quoted
 * comes from the same run (BenchContext.facts), never from an earlier one.
 */
type Facts = Record<string, string>;

const f = (facts: Facts, k: string): string => facts[k] ?? '?';
/** a - b of two facts, rounded to ms ('?' when either is missing). */
const diff = (facts: Facts, a: string, b: string): string => {
  const d = Number(facts[a]) - Number(facts[b]);
  return Number.isFinite(d) ? d.toFixed(0) : '?';
};

/** "12.3 ms longer" / "4.5 ms less" from a signed difference (as formatted); the figure as is when it is not a number. */
const signedMs = (v: string, more: string, less: string): string => {
  const n = Number(v);
  if (!Number.isFinite(n)) return `${v} ms ${more}`;
  return n < 0 ? `${v.replace(/^-/, '')} ms ${less}` : `${v} ms ${more}`;
};

export const EXPLANATIONS: Record<string, (facts: Facts) => string> = {
  start: (x) =>
    `With Docker ${f(x, 'engine')} the loom start took ${signedMs(f(x, 'startDiff'), 'longer', 'less')} at the median (${f(x, 'startLoom')} vs ${f(x, 'startBridge')} ms); the ratio of the p95s was ${f(x, 'startP95Ratio')} and that of the 20-parallel batches ${f(x, 'parRatio')}. ` +
    `The single starts ranged over ${f(x, 'startLoomRange')} (loom) and ${f(x, 'startBridgeRange')} (built-in), far wider than the gap, so a difference of this size is at the level of this machine's run-to-run noise. ` +
    `loom's own calls take ${f(x, 'loomMsPerStart')} ms of a start (${f(x, 'callsPerStart')} plugin calls, ${f(x, 'shareMedian')} of the wall time, section 2; DeleteEndpoint ${f(x, 'deleteEndpointDocker')} ms at the median, the veth pair being deleted after its answer, on a worker thread, so that the kernel's ~20 ms for it hold neither that answer nor the next call); ` +
    'each call is also one HTTP round trip from dockerd, which the built-in driver, running inside dockerd, does not pay. ' +
    'What would close it: repeat the comparison on an idle machine with more runs (BENCH_START_RUNS=100) to narrow the interval; if a gap remains, make the calls on the start path cheaper (see the plugin time per start).',
  'plugin-per-start': (x) =>
    `loom's own calls took ${f(x, 'loomMsPerStart')} ms of a start at the median (${f(x, 'callsPerStart')} plugin calls; per call in section 2). ` +
    'Each call is one HTTP request from dockerd over the plugin socket; the calls that change state wait for a synced LevelDB write (RequestAddress, CreateEndpoint, DeleteEndpoint, ReleaseAddress: fdatasync on this shared disk is 0.4 ms at the median and several ms in its tail while other jobs run). ' +
    'CreateEndpoint answers once the endpoint is checked (kernel lookups of its names: three, four with an egress rate) and recorded; its veth pair is made after the answer, while dockerd works before it calls Join, and Join waits for it (Docker 28.5 calls Join sooner, and its Join waits for part of the pair). ' +
    'What would close it: measure on an idle machine first (the tails here are CPU waits); then fewer synced writes per start (an endpoint record and its address in one write); for Docker 28.5, a pair made before CreateEndpoint arrives (a spare pair per network, named at CreateEndpoint).',
  cej: (x) =>
    `Over ${f(x, 'scaleN')} endpoints the sum CreateEndpoint + Join has a p50 of ${f(x, 'cejP50')} ms but a p99 of ${f(x, 'cejP99')} ms. ` +
    `The kernel part is small: creating a veth pair on a bridge costs ${f(x, 'kernelFirst')} ms (${f(x, 'kernelLast')} ms with ${f(x, 'kernelPorts')} ports on the bridge) with iproute2 in the same run. ` +
    `Calls that do no kernel work at all have long tails too (Join p99 ${f(x, 'joinP99')} ms against a p50 of ${f(x, 'joinP50')} ms, RequestAddress p99 ${f(x, 'raP99')} ms), ` +
    `so much of the tail is loomd's process waiting for a CPU or for garbage collection rather than doing loom's work (the 1-minute load average on this 2-core machine was ${f(x, 'loadMedian')} at the median and ${f(x, 'loadMax')} at most during the run). ` +
    (x.ceGrows === 'yes'
      ? `Separately, CreateEndpoint grows from ${f(x, 'ceFirstP50')} ms (first 100) to ${f(x, 'ceLastP50')} ms (last 100) at the median, more than iproute2's cost for the same kernel objects grows: part of loom's per-endpoint work grows with the number of endpoints on the network (not profiled yet; the kernel's handling of the single create request with master and up, which makes the bridge re-evaluate its ports, is a candidate). `
      : `CreateEndpoint does not grow much with the number of endpoints (${f(x, 'ceFirstP50')} ms at the median for the first 100, ${f(x, 'ceLastP50')} ms for the last 100). `) +
    'What would close it: profile CreateEndpoint at 1,000 endpoints (kernel and loomd) and remove what grows; cut the netlink round trips of an endpoint further (the answer to CreateEndpoint waits for lookups of the names of the pair; the pair itself, made after that answer and waited for by Join, which here follows at once, costs six requests: an existence check of the host end, the bridge index, the create, a lookup of the new pair and one request naming and marking each end); allocate less per call to shorten GC pauses; and measure the tail on an idle machine to separate loom from its neighbours.',
  samehost: (x) =>
    `Both networks are the same kernel objects: one Linux bridge, one veth pair per container, no qdisc. ` +
    'Bridged frames traverse the firewall on these hosts (br_netfilter): with Docker 20.10, Docker\'s own traffic is accepted by the third rule of iptables\' FORWARD chain (its ESTABLISHED rule for its bridge), loom\'s a few rules later through the jump to its shim chain (LOOM-FWD-<instance>) that follows Docker\'s rules, and loom\'s traffic also passes loom\'s own nftables forward chain (one verdict-map lookup, one rule): a handful of rule evaluations per GSO packet of tens of kilobytes. ' +
    (x.sameOverlap === 'yes'
      ? `The runs of the two paths overlap (loom ${f(x, 'sameLoomRuns')}, built-in ${f(x, 'sameBridgeRuns')}, bare veth ${f(x, 'sameVethRuns')}; ${f(x, 'sameReps')} runs each): this run cannot tell a gap of ${f(x, 'sameGap')} from noise. `
      : `The runs of the two paths do not overlap (loom ${f(x, 'sameLoomRuns')}, built-in ${f(x, 'sameBridgeRuns')}, bare veth ${f(x, 'sameVethRuns')}; ${f(x, 'sameReps')} runs each), so the gap of ${f(x, 'sameGap')} is probably real; the extra rule evaluations above are the only per-packet difference in the configuration, and whether they explain it is not established. `) +
    `The latency is ${f(x, 'sameRttRatio')} of the built-in bridge's. ` +
    'What would close it: more repetitions on an idle machine (BENCH_IPERF_REPS=15) to measure the gap precisely; then a run with loom\'s accept rule placed before Docker\'s rules (and without the nftables chain) to see whether the rule evaluations are the cost; if they are, the shim can be inserted at the top of FORWARD.',
  'overlay-vxlan': (x) =>
    `loom's overlay and the hand-made VXLAN have the same topology (container namespace - veth - bridge - VXLAN device - underlay) and the same inner MTU. ` +
    `loom's VXLAN device differs in answering ARP from its neighbour entries (proxy), an explicit TTL of 64 and having no lower device (the hand-made one is bound to underlay0); loom's path has one more hop: its bridge lives in a namespace of its own and reaches the VXLAN device in the host's namespace through a veth tied to it by tc mirred redirects (docs/overlay.md). ` +
    (x.ovOverlapVxlan === 'yes'
      ? `The runs overlap (loom ${f(x, 'ovLoomRuns')}, hand-made ${f(x, 'ovVxlanRuns')}; ${f(x, 'ovReps')} runs each): this run cannot tell the gap from noise. `
      : `The runs do not overlap (loom ${f(x, 'ovLoomRuns')}, hand-made ${f(x, 'ovVxlanRuns')}; ${f(x, 'ovReps')} runs each): the gap is probably real. `) +
    'What would close it: more repetitions on an idle machine to measure the gap precisely; then the VXLAN device moved into the overlay\'s namespace (swarm\'s way, no veth hop; FDB and neighbour entries then programmed inside that namespace).',
  'overlay-swarm': (x) =>
    `Docker's swarm overlay uses the same kernel VXLAN, with its bridge in a separate namespace per network, and the same inner MTU. ` +
    (x.ovOverlapSwarm === 'yes'
      ? `The runs overlap (loom ${f(x, 'ovLoomRuns')}, swarm ${f(x, 'ovSwarmRuns')}; ${f(x, 'ovReps')} runs each): this run cannot tell the gap from noise. `
      : `The runs do not overlap (loom ${f(x, 'ovLoomRuns')}, swarm ${f(x, 'ovSwarmRuns')}; ${f(x, 'ovReps')} runs each): the gap is probably real. `) +
    'Both keep the inner frames out of the host\'s netfilter: swarm\'s bridge and VXLAN device live in a namespace per network, loom\'s bridge lives in a namespace per network (br_netfilter off there) and its VXLAN device in the host\'s namespace, tied to the bridge by a veth and tc mirred redirects (one more hop than swarm). ' +
    'What would close it: more repetitions on an idle machine; then the VXLAN device moved into the overlay\'s namespace, as swarm does (no veth hop).',
  'dns-remote': (x) =>
    `A remote name is answered by loomd itself (the container's query is steered to loom's socket in the container's namespace and answered from the watched copy of etcd), so its latency is one UDP round trip into loomd's event loop: p50 ${f(x, 'dnsRemoteP50')} ms, p95 ${f(x, 'dnsRemoteP95')} ms over ${f(x, 'dnsN')} queries. ` +
    `In the same run, interleaved, a local name (relayed by loom to Docker's resolver) had a p95 of ${f(x, 'dnsLocalP95')} ms and Docker's resolver without loom ${f(x, 'dnsDockerP95')} ms (remote / local ${f(x, 'dnsRemoteVsLocal')}, remote / Docker ${f(x, 'dnsRemoteVsDocker')}): ` +
    'when all of them have tails of this size, the tail is the loaded machine (processes waiting for a CPU), not loom\'s answer path. ' +
    'What would close it: repeat on an idle machine; if the remote tail stays above the others, profile loomd\'s DNS path (garbage collection pauses, other work on its event loop such as reconciler passes or etcd watch events).',
  reach: () =>
    'The delay is the time between a container running on B and A having the static FDB and neighbour entries loom installs from its etcd watch. ' +
    'What would close it: look at the per-start log lines of both loomds (endpoint published, entries installed) for where the time goes.',
  fill: (x) =>
    `A /${f(x, 'fillLen')} holds ${f(x, 'fillCapacity')} addresses: a 1 s fill leaves about 15 µs per address. Through the HTTP API each RequestAddress costs ${f(x, 'fillHttpUs')} µs here (p50 round trip ${f(x, 'fillHttpP50')} ms): ` +
    'Docker\'s plugin protocol is one HTTP request per address (on a connection dockerd keeps: loom never closes an idle one), and each request goes through Node\'s http (the known calls skip express\'s router and body parser), the zod schema, a pino log line and a synced LevelDB write before the reply. ' +
    `With 8 requests in flight the fill took ${f(x, 'fillConcS')} s with 8 clients each keeping its connection, as dockerd keeps its plugin connections (Node's http client, ${f(x, 'fillConcKeptClientUs')} µs of client CPU per address, loomd ${f(x, 'fillConcKeptLoomdUs')} µs), and ${f(x, 'fillConcFreshS')} s with a new connection per call (${f(x, 'fillConcFreshClientUs')} µs of client CPU, loomd ${f(x, 'fillConcFreshLoomdUs')} µs per address: the client shares this machine's cores with loomd): the pool's lock covers only taking the address and queueing its write, so the writes of requests in flight share syncs (group commit), and the HTTP work overlaps. ` +
    `In-process, without HTTP, IpamService fills the /${f(x, 'fillLen')} in ${f(x, 'fillLevelS')} s with its LevelDB store as loomd runs it (${f(x, 'fillLevelUs')} µs per address: every allocation is synced to disk before it is answered, so that a power cut cannot lose an address Docker was given), ${f(x, 'fillUnsyncedS')} s with the same store unsynced (${f(x, 'fillUnsyncedUs')} µs; the sync costs ${f(x, 'fillSyncRatio')}x) and in ${f(x, 'fillMemS')} s with an in-memory store (${f(x, 'fillMemUs')} µs per address): ` +
    `and on the durable store with 8 requests in flight in ${f(x, 'fillLevelConcS')} s and with ${f(x, 'fillDeep')} in flight in ${f(x, 'fillLevelDeepS')} s (${f(x, 'fillLevelDeepUs')} µs per address; the judged in-process figure): calls on one pool share syncs (group commit: the answer still waits for the synced write holding it, the lock does not), one write per group carries each key once (the pool record a group\'s allocations all rewrite), so with many requests in flight the cost per address approaches the allocation plus its share of LevelDB\'s encoding. ` +
    `The fill with 8 in flight is bounded by loomd's CPU (${f(x, 'fillConcKeptLoomdUs')} µs of CPU per address over all its threads, most of it on its main thread; the client shares the machine's cores): a profile of loomd's main thread puts most of it in Node's http server (parsing and answering each call; with a new connection per call, accepting and closing it too), then garbage collection, the store and the log line; syncs are shared and no longer the bound. dockerd keeps up to two idle connections per plugin (Go's default), so a single dockerd with many calls in flight opens some connections anew. What would close the rest: a faster machine, or fewer requests than Docker\'s one-request-per-address protocol allows. Docker never asks for more than one address per container start, so the per-call latency (section 2) matters more in practice than the fill time.`,
  rss: (x) =>
    `Measured with a Docker API connected (a fake one answering loomd's calls, so dockerode is loaded, the reconciler reads Docker's view of every network and loomd looks up the labels of every joined endpoint: ${f(x, 'labelsLearned')} lookups logged; calls answered: ${f(x, 'fakeDockerCalls')}). ` +
    `Most of loomd's memory is the runtime and its dependencies, not its state: a bare node process idles at ${f(x, 'rssBare')} MiB, and node with the modules loomd loads before its first real call at ${f(x, 'rssModules')} MiB ` +
    `(the heaviest dependencies loaded alone: ${f(x, 'depsHeaviest')}). A fresh loomd is at ${f(x, 'rssFresh')} MiB; with ${f(x, 'scaleN')} endpoints the live JavaScript heap after a full GC is ${f(x, 'heapUsed')} MiB. ` +
    `RSS right after the burst of calls was ${f(x, 'rssBuilt')} MiB (uncollected garbage; the idle process came down to ${f(x, 'rssIdleMin')} MiB by itself) and ${f(x, 'rssGc')} MiB after a forced GC; ` +
    `the restarted process stays at ${f(x, 'rssRestartGc')} MiB after a full GC because V8 keeps ${f(x, 'heapTotalRestart')} MiB of heap committed for ${f(x, 'heapUsedRestart')} MiB of live objects (the process that made the endpoints: ${f(x, 'heapTotalBuilt')} MiB committed), plus ${f(x, 'externalRestart')} MiB of external memory (buffers). ` +
    `etcd3 (with gRPC: ${f(x, 'etcdRss')} MiB alone) and prom-client load only when used (cluster mode, --metrics), so they are not in these figures; dockerode is, since the reconciler's first pass asks Docker, but not all of it: the dependency table's ${f(x, 'dockerodeRss')} MiB includes ssh2 (its WebAssembly crypto) and gRPC for BuildKit sessions, which loomd replaces with stand-ins (driver/startup/listeners.ts) as it only talks to a Unix socket. loomd already runs with 2 MiB semi-spaces (driver/node-flags.ts), which keeps V8's young generation small. What would close it: allocate less on the start-up path (the restore and the first reconcile pass read the whole state and the kernel's tables at once), so that the committed heap stays near the live one; a lighter Docker client than dockerode for the three read-only calls loomd makes.`,
  restart: (x) =>
    `loomd's own start-up with ${f(x, 'scaleN')} endpoints (from the store's opening: LevelDB opens and reads the state in its own threads while loomd loads its modules, then the state is loaded and the socket serves real calls) takes ${f(x, 'loomdStartMs')} ms; ` +
    `the first real call was answered ${f(x, 'realMs')} ms after the spawn (the handshake, which the early socket answers from constants, after ${f(x, 'sockMs')} ms) because node itself needs ${f(x, 'bareMs')} ms to start and loading the modules loomd loads before its first real call brings that to ${f(x, 'modulesMs')} ms ` +
    `(slowest dependencies loaded alone, beyond a bare node: ${f(x, 'depsSlowest')}). Not on that path any more: etcd3 (${f(x, 'etcdMs')} ms alone) and cluster mode's modules (only with --etcd), dockerode (${f(x, 'dockerodeMs')} ms alone; on the first Docker call), express (${f(x, 'expressMs')} ms alone; only for a request the direct path does not take), the admin API (after the socket serves), prom-client and yaml. The first reconcile pass was done ${f(x, 'recMs')} ms after the spawn. ` +
    `Between node's start and the first real call: the modules (about ${diff(x, 'modulesMs', 'bareMs')} ms: loomd's own code and its pure-JS dependencies such as pino and zod are one bundled file, read and compiled at once, each module's body run when first required; then what stays outside it: node:http for the early socket, LevelDB's native binding, netlink) and the remainder, about ${diff(x, 'realMs', 'modulesMs')} ms, loomd's own start-up (the store's reads overlap the module loading; the state is read twice, by the integrity scan and by each service's load; the services are built and the socket handed over). ` +
    'What would close it: a V8 code cache for the bundled file (Node 20 has no module.enableCompileCache: vm.Script\'s cachedData through a small loader, a modest gain on module loading alone), or a startup snapshot (not with native addons loaded); one read of the state instead of two; ' +
    'or let systemd own the socket (socket activation), so that dockerd\'s calls wait in the listen queue instead of failing while loomd starts. Absolute times here move with the machine: compare the bare node row with other runs before comparing these.',
  'policy-apply': (x) =>
    `With ${f(x, 'policyN')} labelled endpoints and ${f(x, 'policyP')} policies, one more policy reached the kernel ${f(x, 'policyApiVisible')} ms after the admin API call at the median and ${f(x, 'policyCtlVisible')} ms after \`loomctl policy apply\` started (node's own start-up and module loading are the difference). ` +
    `loomd compiles every policy against every endpoint and replaces the whole policy table (${f(x, 'policyRulesetKiB')} KiB of \`nft list ruleset\` text) in one transaction when rules change; a set-only update took ${f(x, 'policySetMs')} ms in nft. ` +
    'What would close it: compile incrementally (only the changed policy\'s sets and rules) and add rules to the live table instead of replacing it; make loomctl lighter to start (it loads more modules than the apply needs).',
  'policy-start': (x) =>
    `CreateEndpoint + Join took ${f(x, 'policyCejWith')} ms at the median with policies on the network and ${f(x, 'policyCejWithout')} ms without (per-round difference ${f(x, 'policyCejAdded')} ms). ` +
    'The Join only notes the endpoint for the policy service (covers() over the policies, a queued label inspect, a background sync): the set update runs after the call answers. A gap of this size next to calls that take milliseconds is more likely the background nft work of the previous round competing for the 2 CPUs. ' +
    'What would close it: measure with more rounds on an idle machine; if the gap stays, profile the Join path with many policies (covers() compiles the covered networks of every policy per call).',
  'policy-tput': (x) =>
    `Policy vs none: ${f(x, 'policyTput')}. With policies, every new connection walks the policy chains (a few set lookups per rule); established packets are accepted by connection tracking, which a covered network enables. ` +
    'What would close it: accept established traffic before any set lookup (it is the first rule), and check whether enabling connection tracking on the network, not the rules, is the cost; repeat on an idle machine with more rounds (BENCH_POLICY_IPERF_ROUNDS).',
  'cp-propagation-p95': (x) => cpExplanation(x),
  'cp-propagation-p99': (x) => cpExplanation(x),
  'cp-etcd-load': (x) =>
    `etcd served ${f(x, 'cpRps')} requests/s during churn at ${f(x, 'cpHosts')} simulated hosts, its 3 members using ${f(x, 'cpEtcdCpu')} % of one core of this shared machine. ` +
    'What would close it: fewer requests per host (keep-alives on one stream, a longer lease TTL) and fewer re-publications per container; see docs/overlay.md, "Scaling to 1,000 hosts".',
};

function cpExplanation(x: Facts): string {
  return (
    `At ${f(x, 'cpHosts')} simulated hosts, publication to all other hosts took p95 ${f(x, 'cpP95')} ms and p99 ${f(x, 'cpP99')} ms (the put's own round trip p95 ${f(x, 'cpPutP95')} ms). ` +
    `All simulated hosts share this machine's 2 cores with etcd and other jobs: the worker threads' event loops waited up to ${f(x, 'cpLoopMax')} ms during the churn, which delays every event queued behind. ` +
    'What would close it: rerun on an idle machine (or with fewer hosts per machine) to separate loom\'s own cost from CPU contention; per-overlay watches would cut the events each host receives (docs/overlay.md, "Scaling to 1,000 hosts").'
  );
}

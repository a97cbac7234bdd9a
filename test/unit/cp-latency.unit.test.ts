import { convergence, epNumber, epOfMac, hostOfEp, macOfEp, parseProm, promBy, promSum, propagation } from '../bench/cp-latency';

test('endpoint numbers travel in MACs and back', () => {
  for (const [h, s] of [[0, 0], [1, 7], [99, 123], [250, 999_999]] as const) {
    const ep = epNumber(h, s);
    const mac = macOfEp(ep);
    expect(mac).toMatch(/^02:00(:[0-9a-f]{2}){4}$/);
    expect(epOfMac(mac)).toBe(ep);
    expect(epOfMac(mac.toUpperCase())).toBe(ep);
    expect(hostOfEp(ep)).toBe(h);
  }
  expect(epOfMac('aa:bb:cc:dd:ee:ff')).toBeUndefined();
  expect(() => macOfEp(2 ** 32)).toThrow(/out of range/);
});

test('propagation: per receiver and all-done latencies, publisher excluded, first sighting counts', () => {
  const pubs = [
    { ep: 1, host: 0, t: 1000 },
    { ep: 2, host: 1, t: 2000 },
  ];
  const seen = [
    { ep: 1, receiver: 1, t: 1010 },
    { ep: 1, receiver: 2, t: 1030 },
    { ep: 1, receiver: 2, t: 1005 }, // earlier sighting of the same pair wins
    { ep: 1, receiver: 0, t: 1001 }, // the publisher itself: ignored
    { ep: 2, receiver: 0, t: 2100 },
    // ep 2 never reaches receiver 2
  ];
  const p = propagation(pubs, seen, [0, 1, 2]);
  expect(p.perReceiver.sort((a, b) => a - b)).toEqual([5, 10, 100]);
  expect(p.allDone).toEqual([10]);
  expect(p.incomplete).toBe(1);
  expect(p.missingPairs).toBe(1);
});

test('convergence: time until every receiver removed every endpoint of a host', () => {
  const removals = [
    { ep: 10, receiver: 1, t: 5_100 },
    { ep: 11, receiver: 1, t: 5_300 },
    { ep: 10, receiver: 2, t: 5_200 },
    { ep: 11, receiver: 2, t: 5_250 },
    { ep: 99, receiver: 2, t: 9_000 }, // not one of them
  ];
  const c = convergence([10, 11], removals, [1, 2], 5_000);
  expect(c.perReceiver).toEqual([300, 250]);
  expect(c.allDone).toBe(300);
  expect(c.pending).toEqual([]);
  const partial = convergence([10, 11], removals.slice(1), [1, 2], 5_000);
  expect(partial.pending).toEqual([1]);
  expect(partial.allDone).toBeUndefined();
});

test('Prometheus text: sums and per-label sums', () => {
  const text = [
    '# HELP grpc_server_handled_total x',
    '# TYPE grpc_server_handled_total counter',
    'grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 12',
    'grpc_server_handled_total{grpc_code="Unavailable",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1',
    'grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3',
    'etcd_debugging_mvcc_watcher_total 700',
    'etcd_mvcc_db_total_size_in_bytes 2.09e+06',
  ].join('\n');
  const s = parseProm(text);
  expect(promSum(s, 'grpc_server_handled_total')).toBe(16);
  expect(promSum(s, 'grpc_server_handled_total', { grpc_code: 'OK' })).toBe(15);
  expect(promBy(s, 'grpc_server_handled_total', 'grpc_method')).toEqual(new Map([['Put', 13], ['Range', 3]]));
  expect(promSum(s, 'etcd_debugging_mvcc_watcher_total')).toBe(700);
  expect(promSum(s, 'etcd_mvcc_db_total_size_in_bytes')).toBe(2_090_000);
});

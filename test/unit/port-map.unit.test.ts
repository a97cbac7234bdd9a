import { choosePorts, EPHEMERAL, parsePortMap, Proto } from '../../driver/model/port-map';

/** A reserver that refuses a given set of "proto/ip/port" keys and remembers what it granted. */
function reserver(taken: string[] = []): { granted: string[]; fn: (p: Proto, ip: string, port: number) => Promise<boolean> } {
  const granted: string[] = [];
  return {
    granted,
    fn: async (p, ip, port) => {
      const k = `${p}/${ip}/${port}`;
      if (taken.includes(k) || granted.includes(k)) return false;
      granted.push(k);
      return true;
    },
  };
}

describe('parsePortMap', () => {
  test('absent or null means no bindings', () => {
    expect(parsePortMap(undefined)).toEqual([]);
    expect(parsePortMap(null)).toEqual([]);
  });
  test('accepts Docker\'s shape', () => {
    const b = [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }];
    expect(parsePortMap(b)).toEqual(b);
  });
  test.each([
    ['not an array', { Proto: 6 }, /must be an array/],
    ['protocol as a string', [{ Proto: '6', Port: 80 }], /unknown protocol/],
    ['unknown protocol', [{ Proto: 1, Port: 80 }], /unknown protocol/],
    ['container port 0', [{ Proto: 6, Port: 0 }], /invalid container port/],
    ['host port too big', [{ Proto: 6, Port: 80, HostPort: 70000 }], /invalid host port/],
    ['reversed range', [{ Proto: 6, Port: 80, HostPort: 9000, HostPortEnd: 8000 }], /invalid host port range/],
    ['bad host IP', [{ Proto: 6, Port: 80, HostIP: 'example.com' }], /invalid host IP/],
  ])('refuses %s', (_what, value, pattern) => {
    expect(() => parsePortMap(value)).toThrow(pattern);
  });
});

describe('choosePorts', () => {
  const c = { v4: '198.18.10.2', v6: 'fd00:10::2' };

  test('an empty HostIP publishes on every IPv4 address, and on every IPv6 address when the container has one', async () => {
    const r = reserver();
    const out = await choosePorts([{ Proto: 6, Port: 80, HostPort: 8080 }], c, '0.0.0.0', r.fn);
    expect(out).toEqual([
      { proto: 'tcp', family: 4, hostIp: '0.0.0.0', hostPort: 8080, containerIp: '198.18.10.2', containerPort: 80 },
      { proto: 'tcp', family: 6, hostIp: '::', hostPort: 8080, containerIp: 'fd00:10::2', containerPort: 80 },
    ]);
    expect(await choosePorts([{ Proto: 6, Port: 80, HostPort: 8081 }], { v4: c.v4 }, '0.0.0.0', reserver().fn)).toHaveLength(1);
  });

  test('the network default binding address applies when HostIP is empty', async () => {
    const out = await choosePorts([{ Proto: 17, Port: 53, HostPort: 5353 }], { v4: c.v4 }, '198.18.0.9', reserver().fn);
    expect(out).toEqual([{ proto: 'udp', family: 4, hostIp: '198.18.0.9', hostPort: 5353, containerIp: c.v4, containerPort: 53 }]);
  });

  test('a range takes the first free port; 0 takes an ephemeral one', async () => {
    const r = reserver(['tcp/0.0.0.0/8000', 'tcp/0.0.0.0/8001']);
    const out = await choosePorts([{ Proto: 6, Port: 80, HostPort: 8000, HostPortEnd: 8010 }, { Proto: 6, Port: 81 }], { v4: c.v4 }, '0.0.0.0', r.fn);
    expect(out.map((p) => p.hostPort)).toEqual([8002, EPHEMERAL.start]);
  });

  test('an allocated port is a clear error', async () => {
    await expect(choosePorts([{ Proto: 6, Port: 80, HostPort: 8080 }], { v4: c.v4 }, '0.0.0.0', reserver(['tcp/0.0.0.0/8080']).fn)).rejects.toThrow(
      'Bind for 0.0.0.0:8080/tcp failed: port is already allocated',
    );
  });

  test('a host address of a family the container lacks, and ::1, are refused', async () => {
    await expect(choosePorts([{ Proto: 6, Port: 80, HostIP: '::', HostPort: 1 }], { v4: c.v4 }, '0.0.0.0', reserver().fn)).rejects.toThrow(/no IPv6 address/);
    await expect(choosePorts([{ Proto: 6, Port: 80, HostIP: '::1', HostPort: 1 }], c, '0.0.0.0', reserver().fn)).rejects.toThrow(/::1 is not supported/);
  });
});

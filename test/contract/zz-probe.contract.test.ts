import { startTestDaemon, TestDaemon } from '../helpers/daemon';
import { unixRequest } from '../helpers/unix-http';
jest.setTimeout(60_000);
let d: TestDaemon;
beforeAll(async () => { d = await startTestDaemon(); });
afterAll(async () => { await d.stop(); });
test('probe', async () => {
  const out: string[] = [];
  const r = async (label: string, verb: string, p: string, body?: string | Buffer) => {
    try {
      const t = Date.now();
      const res = await unixRequest(d.socket, verb, p, body);
      out.push(`${label}: ${res.status} ${res.body.slice(0, 160)} (${Date.now() - t}ms)`);
    } catch (e) { out.push(`${label}: THROW ${(e as Error).message}`); }
  };
  await r('OPTIONS', 'OPTIONS', '/Plugin.Activate');
  await r('GET', 'GET', '/Plugin.Activate');
  await r('lower', 'POST', '/plugin.activate');
  await r('slash', 'POST', '/Plugin.Activate/');
  await r('dbl', 'POST', '//Plugin.Activate');
  await r('query', 'POST', '/Plugin.Activate?x=1');
  await r('enc', 'POST', '/Plugin%2EActivate');
  await r('dotdot', 'POST', '/x/../Plugin.Activate');
  await r('star', 'POST', '*');
  await r('deep-arr', 'POST', '/NetworkDriver.CreateNetwork', '{"NetworkID":' + '['.repeat(120000) + ']'.repeat(120000) + '}');
  await r('deep-obj', 'POST', '/NetworkDriver.CreateNetwork', '{"NetworkID":"abc","Options":' + '{"a":'.repeat(40000) + '1' + '}'.repeat(40000) + '}');
  await r('deep-opts-generic', 'POST', '/NetworkDriver.ProgramExternalConnectivity', '{"NetworkID":"abc","EndpointID":"abc","Options":' + '{"a":'.repeat(40000) + '1' + '}'.repeat(40000) + '}');
  await r('badutf8', 'POST', '/NetworkDriver.CreateNetwork', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]));
  await r('bom', 'POST', '/Plugin.Activate', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[1]')]));
  await r('limit', 'POST', '/NetworkDriver.CreateNetwork', '{"NetworkID":"' + 'a'.repeat(262144 - 16) + '"}');
  await r('limit+1', 'POST', '/NetworkDriver.CreateNetwork', '{"NetworkID":"' + 'a'.repeat(262144 - 15) + '"}');
  await r('2MB', 'POST', '/NetworkDriver.CreateNetwork', '{"NetworkID":"' + 'a'.repeat(2_000_000) + '"}');
  await r('2MB-unknown', 'POST', '/Nope', '{"NetworkID":"' + 'a'.repeat(2_000_000) + '"}');
  await r('inf', 'POST', '/NetworkDriver.DiscoverNew', '{"DiscoveryType":1e400}');
  await r('disc-float', 'POST', '/NetworkDriver.DiscoverNew', '{"DiscoveryType":1.5}');
  await r('opts-arr', 'POST', '/NetworkDriver.ProgramExternalConnectivity', '{"NetworkID":"abc","EndpointID":"abc","Options":[]}');
  await r('proto', 'POST', '/NetworkDriver.CreateNetwork', '{"NetworkID":"abc","__proto__":{"x":1},"Options":{"__proto__":{"com.docker.network.generic":5}}}');
  await r('proto2', 'POST', '/NetworkDriver.CreateEndpoint', '{"NetworkID":"abc","EndpointID":"abc","Options":{"__proto__":"x"}}');
  await r('caps', 'POST', '/NetworkDriver.GetCapabilities');
  for (const l of out) console.log(l);
  const st = await d.state(); console.log(JSON.stringify(st));
});

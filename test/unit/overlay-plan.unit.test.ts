import { planOverlayEntries, preferLive } from '../../driver/cluster/overlay-plan';
import type { RemoteEndpoint } from '../../driver/cluster/records';

const ep = (host: string, vtep: string, over: Partial<RemoteEndpoint> = {}): RemoteEndpoint => ({
  overlay: 'ov',
  host,
  endpointId: `${host}-e`,
  mac: '02:42:c6:12:dc:34',
  ip: '198.18.220.52',
  vtep,
  ...over,
});

describe('a container that moved with its --ip (same MAC on another host)', () => {
  const onB = ep('B', '198.18.0.2');
  const onC = ep('C', '198.18.0.3');

  test('a retiring endpoint never beats the live one with its MAC or address', () => {
    expect(preferLive([onB, onC], (e) => e.host === 'B')).toEqual([onC]);
    expect(preferLive([onC, onB], (e) => e.host === 'B')).toEqual([onC]);
    // Alone, a retiring endpoint keeps its entries (peer grace).
    expect(preferLive([onB], () => true)).toEqual([onB]);
    // Another MAC and address: both stay.
    const other = ep('B', '198.18.0.2', { endpointId: 'x', mac: '02:42:c6:12:dc:35', ip: '198.18.220.53' });
    expect(preferLive([other, onC], (e) => e.host === 'B')).toEqual([other, onC]);
  });

  test('one FDB destination per MAC: the entry pointing at the new host is never replaced by the old one', () => {
    const plan = planOverlayEntries(preferLive([onB, onC], (e) => e.host === 'B'), [{ mac: onC.mac, dst: onC.vtep }], [{ ip: onC.ip as string, mac: onC.mac }]);
    expect(plan).toEqual({ addFdb: [], delFdb: [], addNeigh: [], delNeigh: [] });
    // Both published (the old one's deletion not seen yet): the later one wins, no flip-flop.
    const both = planOverlayEntries([onB, onC], [{ mac: onB.mac, dst: onB.vtep }], []);
    expect(both.addFdb).toEqual([{ mac: onC.mac, dst: onC.vtep }]);
    expect(both.delFdb).toEqual([{ mac: onB.mac, dst: onB.vtep }]);
  });
});

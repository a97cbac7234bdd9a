/**
 * etcd TLS settings are checked once at start-up: every bad combination or file is an
 * error naming the flag and the file (loomd then refuses to start), never a client that
 * fails and retries at run time.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadEtcdTls } from '../../driver/cluster/etcd-tls';

const F = path.join(__dirname, '..', 'fixtures', 'etcd-tls');
const https = ['https://198.18.0.1:2379', 'https://198.18.0.2:2379'];
const ca = path.join(F, 'ca.pem');
const cert = path.join(F, 'client.pem');
const key = path.join(F, 'client-key.pem');

test('plaintext needs nothing; TLS options on http:// endpoints are refused', () => {
  expect(loadEtcdTls({ endpoints: ['http://198.18.0.1:2379'] })).toBeUndefined();
  expect(() => loadEtcdTls({ endpoints: ['http://198.18.0.1:2379'], ca })).toThrow(/need https:\/\/ etcd endpoints/);
  expect(() => loadEtcdTls({ endpoints: ['https://198.18.0.1:2379', 'http://198.18.0.2:2379'] })).toThrow(/all https:\/\/ or all http:\/\//);
});

test('a client certificate without --etcd-ca is a start-up error, and so is half a key pair', () => {
  expect(() => loadEtcdTls({ endpoints: https, cert, key })).toThrow(/--etcd-cert without --etcd-ca/);
  expect(() => loadEtcdTls({ endpoints: https, ca, cert })).toThrow(/--etcd-cert needs --etcd-key/);
  expect(() => loadEtcdTls({ endpoints: https, ca, key })).toThrow(/--etcd-key needs --etcd-cert/);
});

test('unreadable, non-PEM and unparsable files are named', () => {
  expect(() => loadEtcdTls({ endpoints: https, ca: path.join(F, 'missing.pem') })).toThrow(/--etcd-ca .*missing\.pem: cannot read it \(ENOENT\)/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-tls-'));
  try {
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'not a certificate\n');
    expect(() => loadEtcdTls({ endpoints: https, ca: junk })).toThrow(/--etcd-ca .*junk\.pem: not a PEM file/);
    const broken = path.join(dir, 'broken.pem');
    fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(() => loadEtcdTls({ endpoints: https, ca: broken })).toThrow(/--etcd-ca .*broken\.pem: cannot parse it/);
    expect(() => loadEtcdTls({ endpoints: https, ca: dir })).toThrow(/cannot read it \(EISDIR\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a key that is not the certificate's is refused", () => {
  expect(() => loadEtcdTls({ endpoints: https, ca, cert, key: path.join(F, 'other-key.pem') })).toThrow(/is not the private key of --etcd-cert/);
});

test('a good set is read once; https alone uses the system CA store', () => {
  const creds = loadEtcdTls({ endpoints: https, ca, cert, key });
  expect(creds?.rootCertificate?.toString()).toContain('BEGIN CERTIFICATE');
  expect(creds?.certChain?.toString()).toContain('BEGIN CERTIFICATE');
  expect(creds?.privateKey?.toString()).toContain('PRIVATE KEY');
  expect(loadEtcdTls({ endpoints: https })).toEqual({});
});

/**
 * TLS material for etcd, read and checked once at start-up: a wrong combination or an
 * unreadable or unparsable file is a start-up error naming the flag and the file, never
 * a client that fails every call (and retries) at run time.
 *
 * Rules: TLS options need https:// endpoints (and https:// endpoints are all or none);
 * a client certificate needs its key and the reverse; a client certificate needs --etcd-ca
 * (the CA that signed etcd's server certificate: etcd clusters use a private CA); https
 * without any option checks etcd's certificate against the system's CA store.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import { invalid } from '../../lib/errors';

export interface EtcdTlsFiles {
  endpoints: string[];
  ca?: string;
  cert?: string;
  key?: string;
}

/** What the etcd client takes; undefined: plaintext (http://). */
export interface EtcdCredentials {
  rootCertificate?: Buffer;
  privateKey?: Buffer;
  certChain?: Buffer;
}

function readPem(flag: string, file: string): Buffer {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw invalid(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!buf.includes('-----BEGIN ')) throw invalid(`${flag} ${file}: not a PEM file`);
  return buf;
}

function parsed<T>(flag: string, file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw invalid(`${flag} ${file}: cannot parse it (${(err as Error).message})`);
  }
}

export function loadEtcdTls(cfg: EtcdTlsFiles): EtcdCredentials | undefined {
  const secure = cfg.endpoints.filter((e) => e.startsWith('https://')).length;
  if (secure > 0 && secure < cfg.endpoints.length) throw invalid('--etcd endpoints must be all https:// or all http://');
  const any = cfg.ca || cfg.cert || cfg.key;
  if (!secure) {
    if (any) throw invalid('--etcd-ca/--etcd-cert/--etcd-key need https:// etcd endpoints');
    return undefined;
  }
  if (cfg.cert && !cfg.key) throw invalid('--etcd-cert needs --etcd-key (the client certificate\'s private key)');
  if (cfg.key && !cfg.cert) throw invalid('--etcd-key needs --etcd-cert (the client certificate)');
  if (cfg.cert && !cfg.ca) throw invalid('--etcd-cert without --etcd-ca: pass the CA that signed etcd\'s server certificate (--etcd-ca FILE)');
  const out: EtcdCredentials = {};
  if (cfg.ca) {
    const ca = cfg.ca;
    out.rootCertificate = readPem('--etcd-ca', ca);
    parsed('--etcd-ca', ca, () => new X509Certificate(out.rootCertificate as Buffer));
  }
  if (cfg.cert && cfg.key) {
    const [certFile, keyFile] = [cfg.cert, cfg.key];
    out.certChain = readPem('--etcd-cert', certFile);
    out.privateKey = readPem('--etcd-key', keyFile);
    const cert = parsed('--etcd-cert', certFile, () => new X509Certificate(out.certChain as Buffer));
    const key = parsed('--etcd-key', keyFile, () => createPrivateKey(out.privateKey as Buffer));
    if (!cert.checkPrivateKey(key)) throw invalid(`--etcd-key ${keyFile} is not the private key of --etcd-cert ${certFile}`);
  }
  return out;
}

import { generate } from 'selfsigned'

export interface TestCertificate {
  /** PEM private key (server side). */
  readonly key: string
  /** PEM certificate: the server's, and the only CA its clients trust. */
  readonly cert: string
}

let pending: Promise<TestCertificate> | undefined

/**
 * A self-signed certificate for `localhost` and `127.0.0.1`, generated in memory on first use
 * (one per test process): nothing is committed, so nothing expires in the repository.
 * Clients pass `ca: cert` and connect to 127.0.0.1 with certificate checks left on.
 */
export function testCertificate(): Promise<TestCertificate> {
  pending ??= (async () => {
    const now = Date.now()
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 60 * 60 * 1000),
      notAfterDate: new Date(now + 24 * 60 * 60 * 1000),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
      ],
    })
    return { key: pems.private, cert: pems.cert }
  })()
  return pending
}

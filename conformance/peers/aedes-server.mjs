// aedes 1.x on 127.0.0.1 with its defaults (in-memory persistence, anonymous clients).
// Started by conformance/peers/peer.sh: `node aedes-server.mjs PORT` from the folder where
// aedes is installed (ES modules resolve `aedes` next to the script, so peer.sh copies it there).
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`usage: node aedes-server.mjs PORT (got ${process.argv[2]})`);
  process.exit(2);
}
const aedes = await Aedes.createBroker();
const server = createServer(aedes.handle);
// A client that errors must not bring the broker down; log it like mosquitto would.
aedes.on('clientError', (client, err) => console.error(`client ${client?.id}: ${err.message}`));
aedes.on('connectionError', (client, err) => console.error(`connection ${client?.id}: ${err.message}`));
server.on('error', (err) => { console.error(`listen: ${err.message}`); process.exit(1); });
server.listen(port, '127.0.0.1', () => console.log(`aedes listening on 127.0.0.1:${port}`));

const stop = () => server.close(() => aedes.close(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

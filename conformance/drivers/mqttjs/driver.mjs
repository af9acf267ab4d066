// mqttkit-conformance driver for MQTT.js (npm `mqtt`, v5).
//
// Commands arrive as JSON lines on stdin; what the library tells its application goes out
// as JSON lines on stdout (conformance/CLIENT-DRIVERS.md). Every command is answered at
// once; completions come later as events.
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import mqtt from 'mqtt'

const require = createRequire(import.meta.url)
const emit = (message) => process.stdout.write(JSON.stringify(message) + '\n')

// snake_case property names (the runner's) <-> MQTT.js camelCase ones.
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const snake = (name) => name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())

function toLibraryProperties (values) {
  if (!values) return undefined
  const out = {}
  for (const [name, value] of Object.entries(values)) {
    if (name === 'user_property') {
      // MQTT.js takes user properties as an object: repeated keys become arrays.
      const props = {}
      for (const [k, v] of value) {
        if (k in props) props[k] = [].concat(props[k], v)
        else props[k] = v
      }
      out.userProperties = props
    } else if (name === 'correlation_data') {
      out.correlationData = Buffer.from(value, 'hex')
    } else if (name === 'payload_format_indicator') {
      out.payloadFormatIndicator = value === 1
    } else {
      out[camel(name)] = value
    }
  }
  return out
}

function fromLibraryProperties (props) {
  const out = {}
  if (!props) return out
  for (const [name, value] of Object.entries(props)) {
    if (name === 'userProperties') {
      out.user_property = []
      for (const [k, v] of Object.entries(value)) {
        for (const one of [].concat(v)) out.user_property.push([k, String(one)])
      }
    } else if (name === 'subscriptionIdentifier') {
      out.subscription_identifier = [].concat(value)
    } else if (Buffer.isBuffer(value)) {
      out[snake(name)] = value.toString('hex')
    } else if (typeof value === 'boolean') {
      out[snake(name)] = value ? 1 : 0
    } else {
      out[snake(name)] = value
    }
  }
  return out
}

const payloadOf = (c) => (c.payload_hex !== undefined ? Buffer.from(c.payload_hex, 'hex') : Buffer.from(c.payload ?? '', 'utf8'))

let client = null
let v5 = false
let lostReported = false
let disconnectId = null

function connect (c) {
  if (client) return ['unsupported', 'one connect per client (it reconnects by itself)']
  v5 = c.version === '5.0'
  const options = {
    protocolVersion: v5 ? 5 : 4,
    clientId: c.client_id ?? '',
    reconnectPeriod: c.auto_reconnect === false ? 0 : 1000,
    connectTimeout: 10000
  }
  if (c.clean_start !== undefined) options.clean = c.clean_start
  if (c.keep_alive !== undefined) options.keepalive = c.keep_alive
  if (c.username !== undefined) options.username = c.username
  if (c.password !== undefined) options.password = c.password
  if (c.will) {
    options.will = { topic: c.will.topic, payload: payloadOf(c.will), qos: c.will.qos ?? 0, retain: c.will.retain ?? false }
    if (v5 && c.will.properties) options.will.properties = toLibraryProperties(c.will.properties)
  }
  if (v5) {
    const props = toLibraryProperties(c.properties) ?? {}
    if (c.session_expiry !== undefined) props.sessionExpiryInterval = c.session_expiry
    if (c.receive_maximum !== undefined) props.receiveMaximum = c.receive_maximum
    if (c.maximum_packet_size !== undefined) props.maximumPacketSize = c.maximum_packet_size
    if (c.topic_alias_maximum !== undefined) props.topicAliasMaximum = c.topic_alias_maximum
    if (Object.keys(props).length) options.properties = props
    if (c.topic_aliases) options.autoUseTopicAlias = true
  }
  client = mqtt.connect(c.url, options)
  client.on('connect', (connack) => {
    lostReported = false
    emit({
      event: 'connected',
      session_present: Boolean(connack.sessionPresent),
      assigned_client_id: connack.properties?.assignedClientIdentifier ?? null
    })
  })
  client.on('message', (topic, payload, packet) => {
    emit({
      event: 'message',
      topic,
      qos: packet.qos,
      retain: Boolean(packet.retain),
      dup: Boolean(packet.dup),
      payload_hex: payload.toString('hex'),
      properties: fromLibraryProperties(packet.properties)
    })
  })
  client.on('disconnect', (packet) => {
    lostReported = true
    emit({ event: 'connection_lost', reason: 'server sent DISCONNECT', reason_code: packet.reasonCode ?? 0 })
  })
  client.on('error', (err) => {
    const message = { event: 'connection_lost', reason: String(err.message ?? err) }
    if (typeof err.code === 'number') message.reason_code = err.code
    lostReported = true
    emit(message)
  })
  client.on('close', () => {
    if (disconnectId !== null) {
      emit({ event: 'disconnected', id: disconnectId })
      disconnectId = null
    } else if (!lostReported) {
      emit({ event: 'connection_lost', reason: 'connection closed' })
    }
    lostReported = true
  })
  return ['ack']
}

function handle (c) {
  const id = c.id
  if (c.cmd === 'plan') return ['ack']
  if (c.cmd === 'connect') return connect(c)
  if (!client) return ['error', 'not connected (no connect command yet)']
  switch (c.cmd) {
    case 'publish': {
      const opts = { qos: c.qos ?? 0, retain: c.retain ?? false }
      if (v5 && c.properties) opts.properties = toLibraryProperties(c.properties)
      client.publish(c.topic, payloadOf(c), opts, (err, packet) => {
        if (err) emit({ event: 'error', id, message: String(err.message ?? err) })
        else emit({ event: 'published', id, reason_code: packet?.reasonCode ?? 0 })
      })
      return ['ack']
    }
    case 'subscribe': {
      const filters = {}
      for (const f of c.filters) {
        filters[f.filter] = { qos: f.qos ?? 0 }
        if (v5) Object.assign(filters[f.filter], { nl: f.no_local ?? false, rap: f.retain_as_published ?? false, rh: f.retain_handling ?? 0 })
      }
      const opts = {}
      if (v5 && c.properties) opts.properties = toLibraryProperties(c.properties)
      client.subscribe(filters, opts, (err, granted) => {
        if (err) emit({ event: 'error', id, message: String(err.message ?? err) })
        else emit({ event: 'subscribed', id, reason_codes: (granted ?? []).map((g) => g.qos) })
      })
      return ['ack']
    }
    case 'unsubscribe': {
      const opts = {}
      if (v5 && c.properties) opts.properties = toLibraryProperties(c.properties)
      client.unsubscribe(c.filters, opts, (err, packet) => {
        if (err) emit({ event: 'error', id, message: String(err.message ?? err) })
        else emit({ event: 'unsubscribed', id, reason_codes: packet?.reasonCode !== undefined ? [].concat(packet.reasonCode) : [] })
      })
      return ['ack']
    }
    case 'disconnect': {
      disconnectId = id
      const opts = {}
      if (v5) {
        opts.reasonCode = c.reason_code ?? 0
        if (c.properties) opts.properties = toLibraryProperties(c.properties)
      }
      client.end(false, opts)
      return ['ack']
    }
    default:
      return ['unsupported', `unknown command ${c.cmd}`]
  }
}

emit({
  event: 'hello',
  library: 'MQTT.js',
  library_version: require('mqtt/package.json').version,
  versions: ['3.1.1', '5.0'],
  capabilities: ['disconnect-reason-codes']
})

const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  if (!line.trim()) return
  const c = JSON.parse(line)
  if (c.cmd === 'quit') process.exit(0)
  let reply
  try {
    reply = handle(c)
  } catch (err) {
    reply = ['error', String(err.message ?? err)]
  }
  const message = { event: reply[0], id: c.id }
  if (reply[1]) message[reply[0] === 'error' ? 'message' : 'reason'] = reply[1]
  emit(message)
})
input.on('close', () => process.exit(0))

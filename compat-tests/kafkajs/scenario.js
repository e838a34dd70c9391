#!/usr/bin/env node
// One kafkajs scenario against a running broker, for compat-tests/test_kafkajs.py.
//
//   node scenario.js <bootstrap host:port> <scenario> [timeout seconds, default 30]
//
// Prints one JSON object on stdout: what the scenario saw (`result`), or the error (`error`),
// and `versions`, the API versions kafkajs sent (parsed from its DEBUG "Request X(key: k,
// version: v)" log lines). Exits 0 on success, 1 on failure, 2 when the hard timeout fires.
// kafkajs' own log lines at WARN and above go to stderr.
'use strict'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = require('kafkajs')

const [bootstrap, scenario, timeoutArg] = process.argv.slice(2)
const HARD_TIMEOUT_MS = Number(timeoutArg || 30) * 1000
const WAIT_MS = 15000 // any single wait inside a scenario

const versions = {}
let finished = false

function emit(obj, code) {
  if (finished) return
  finished = true
  process.stdout.write(JSON.stringify({ scenario, versions, ...obj }) + '\n', () => process.exit(code))
}

const hardTimer = setTimeout(
  () => emit({ error: `hard timeout: scenario ${scenario} still running after ${HARD_TIMEOUT_MS} ms` }, 2),
  HARD_TIMEOUT_MS
)
hardTimer.unref()

const logCreator = () => ({ namespace, level, log }) => {
  const m = /^Request (\w+)\(key: (\d+), version: (\d+)\)/.exec(log.message || '')
  if (m) {
    const v = Number(m[3])
    const seen = versions[m[1]] || (versions[m[1]] = [])
    if (!seen.includes(v)) seen.push(v)
  }
  if (level <= logLevel.WARN) {
    const { message, ...rest } = log
    process.stderr.write(`[kafkajs ${namespace} ${level}] ${message} ${JSON.stringify(rest)}\n`)
  }
}

const kafka = new Kafka({
  clientId: `sluice-compat-${scenario}`,
  brokers: [bootstrap],
  logLevel: logLevel.DEBUG,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 10000,
  retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
})

const uniq = prefix => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
const sleep = ms => new Promise(r => setTimeout(r, ms))

function withTimeout(promise, ms, what) {
  let t
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(t))
}

async function waitFor(pred, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(50)
  }
}

// The Kafka error code name under kafkajs' wrappers (retries exceeded -> cause -> ...).
function protocolErrorType(e) {
  for (let x = e; x; x = x.cause || x.originalError) if (x.type) return x.type
  return e.name
}

function headersToObject(headers) {
  const out = {}
  for (const [k, v] of Object.entries(headers || {})) {
    out[k] = Array.isArray(v) ? v.map(x => (x == null ? null : x.toString())) : v == null ? null : v.toString()
  }
  return out
}

async function createTopic(admin, topic, numPartitions, configEntries = []) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    waitForLeaders: true,
    timeout: 10000,
  })
  return created
}

// A consumer in `groupId` reading `topic` from the beginning until `count` records arrived.
// Returns the records as {partition, offset, key, value, headers} in arrival order.
async function consumeGroup({ groupId, topic, count, fromBeginning = true, consumerOpts = {}, keepRunning = false }) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    ...consumerOpts,
  })
  const got = []
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      got.push({
        partition,
        offset: Number(message.offset),
        key: message.key == null ? null : message.key.toString(),
        value: message.value == null ? null : message.value.toString(),
        headers: headersToObject(message.headers),
      })
    },
  })
  await waitFor(() => got.length >= count, `${count} records in group ${groupId} (have ${got.length})`)
  if (keepRunning) return { consumer, got }
  await sleep(300) // anything beyond `count` would show up here
  await consumer.disconnect() // commits what eachMessage resolved
  return { got }
}

const scenarios = {
  // CreateTopics with configs, Metadata, DescribeConfigs, CreatePartitions, groups seen by the
  // admin client (ListGroups / DescribeGroups / OffsetFetch) while Stable and once Empty,
  // DeleteGroups, DeleteTopics.
  async admin() {
    const admin = kafka.admin()
    await admin.connect()
    const topic = uniq('kjs-admin')
    const out = {}
    try {
      out.created = await createTopic(admin, topic, 2, [
        { name: 'retention.ms', value: '3600000' },
        { name: 'max.message.bytes', value: '500000' },
      ])
      out.createdAgain = await createTopic(admin, topic, 2) // false: already exists
      const meta = await admin.fetchTopicMetadata({ topics: [topic] })
      out.metadata = meta.topics.map(t => ({
        name: t.name,
        partitions: t.partitions.map(p => ({ partitionId: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr, partitionErrorCode: p.partitionErrorCode })).sort((a, b) => a.partitionId - b.partitionId),
      }))
      out.listTopicsHas = (await admin.listTopics()).includes(topic)

      const cfg = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'max.message.bytes', 'cleanup.policy'] }],
        includeSynonyms: false,
      })
      out.configs = cfg.resources.map(r => ({
        errorCode: r.errorCode,
        resourceName: r.resourceName,
        entries: Object.fromEntries(r.configEntries.map(e => [e.configName, { value: e.configValue, isDefault: e.isDefault, configSource: e.configSource }])),
      }))

      // AlterConfigs (kafkajs' alterConfigs is the legacy, replace-all API).
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
      })
      const altered = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
        includeSynonyms: false,
      })
      out.retentionAfterAlter = altered.resources[0].configEntries[0].configValue

      await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }], timeout: 10000 })
      const meta2 = await admin.fetchTopicMetadata({ topics: [topic] })
      out.partitionsAfterGrow = meta2.topics[0].partitions.length
      try {
        await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }], timeout: 10000 })
        out.shrink = 'accepted'
      } catch (e) {
        out.shrink = protocolErrorType(e)
      }

      // A group: produce 6 records to 2 partitions, a member reads them and commits.
      const producer = kafka.producer()
      await producer.connect()
      await producer.send({
        topic,
        messages: [0, 1, 2, 3, 4, 5].map(i => ({ partition: i % 2, value: `v${i}` })),
      })
      await producer.disconnect()
      const groupId = uniq('kjs-admin-group')
      const { consumer } = await consumeGroup({ groupId, topic, count: 6, keepRunning: true })
      await consumer.commitOffsets([
        { topic, partition: 0, offset: '3' },
        { topic, partition: 1, offset: '3' },
      ])
      out.listGroupsWhileStable = (await admin.listGroups()).groups.filter(g => g.groupId === groupId)
      const dStable = (await admin.describeGroups([groupId])).groups[0]
      out.describeWhileStable = {
        groupId: dStable.groupId, errorCode: dStable.errorCode, state: dStable.state,
        protocolType: dStable.protocolType, protocol: dStable.protocol, members: dStable.members.length,
        memberClientId: dStable.members[0] && dStable.members[0].clientId,
      }
      await consumer.disconnect()
      const dEmpty = (await admin.describeGroups([groupId])).groups[0]
      out.describeOnceEmpty = { state: dEmpty.state, members: dEmpty.members.length, errorCode: dEmpty.errorCode }
      const offs = await admin.fetchOffsets({ groupId, topics: [topic] })
      out.fetchOffsets = offs.map(t => ({ topic: t.topic, partitions: t.partitions.map(p => ({ partition: p.partition, offset: p.offset })).sort((a, b) => a.partition - b.partition) }))
      out.deleteGroups = await admin.deleteGroups([groupId])
      const dDeleted = (await admin.describeGroups([groupId])).groups[0]
      out.describeAfterDelete = { state: dDeleted.state, members: dDeleted.members.length }
      out.fetchOffsetsAfterDelete = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions.map(p => p.offset)
      out.topicOffsets = (await admin.fetchTopicOffsets(topic)).map(p => ({ partition: p.partition, low: p.low, high: p.high })).sort((a, b) => a.partition - b.partition)

      await admin.deleteTopics({ topics: [topic], timeout: 10000 })
      await waitFor(async () => !(await admin.listTopics()).includes(topic), 'deleted topic gone from listTopics', 5000)
      out.listTopicsHasAfterDelete = (await admin.listTopics()).includes(topic)
      try {
        await admin.deleteTopics({ topics: [topic], timeout: 5000 })
        out.deleteAgain = 'accepted'
      } catch (e) {
        out.deleteAgain = protocolErrorType(e)
      }
      return out
    } finally {
      await admin.disconnect()
    }
  },

  // Keyed records with headers to 3 partitions; a group member reads every one back once,
  // in offset order per partition, keys and headers intact.
  async produce_consume() {
    const admin = kafka.admin()
    await admin.connect()
    const topic = uniq('kjs-pc')
    await createTopic(admin, topic, 3)
    await admin.disconnect()
    const producer = kafka.producer()
    await producer.connect()
    const sent = []
    for (let round = 0; round < 3; round++) {
      const messages = []
      for (let i = 0; i < 30; i++) {
        const n = round * 30 + i
        messages.push({
          partition: n % 3,
          key: `key-${n}`,
          value: `value-${n}`,
          headers: { n: String(n), kind: n % 2 ? 'odd' : 'even' },
        })
      }
      messages.push({ partition: 0, key: null, value: null, headers: {} }) // a tombstone without key
      const meta = await producer.send({ topic, acks: -1, messages })
      sent.push(...messages.map(m => ({ partition: m.partition, key: m.key, value: m.value, headers: m.headers })))
      void meta
    }
    const acks = await producer.send({ topic, messages: [{ partition: 1, key: 'last', value: 'last' }] })
    sent.push({ partition: 1, key: 'last', value: 'last', headers: {} })
    await producer.disconnect()
    const { got } = await consumeGroup({ groupId: uniq('kjs-pc-group'), topic, count: sent.length })
    return { topic, sent, got, lastAck: acks }
  },

  // idempotent: true (InitProducerId, sequence numbers), acks all, maxInFlightRequests 1.
  async idempotent() {
    const admin = kafka.admin()
    await admin.connect()
    const topic = uniq('kjs-idem')
    await createTopic(admin, topic, 2)
    await admin.disconnect()
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const acks = []
    const sent = []
    for (let b = 0; b < 5; b++) {
      const messages = []
      for (let i = 0; i < 20; i++) {
        const n = b * 20 + i
        messages.push({ partition: n % 2, key: `k${n}`, value: `idem-${n}` })
      }
      sent.push(...messages.map(m => ({ partition: m.partition, value: m.value })))
      acks.push(...(await producer.send({ topic, acks: -1, messages })))
    }
    await producer.disconnect()
    const { got } = await consumeGroup({ groupId: uniq('kjs-idem-group'), topic, count: sent.length })
    return { topic, sent, got, acks }
  },

  // gzip, kafkajs' only built-in codec; the stored batches are checked by the test.
  async gzip() {
    const admin = kafka.admin()
    await admin.connect()
    const topic = uniq('kjs-gzip')
    await createTopic(admin, topic, 1)
    await admin.disconnect()
    const producer = kafka.producer()
    await producer.connect()
    const sent = []
    for (let b = 0; b < 3; b++) {
      const messages = []
      for (let i = 0; i < 50; i++) {
        const n = b * 50 + i
        messages.push({ key: `k${n}`, value: `gzip-value-${n}-${'x'.repeat(200)}`, headers: { n: String(n) } })
      }
      sent.push(...messages.map(m => ({ key: m.key, value: m.value, headers: m.headers })))
      await producer.send({ topic, compression: CompressionTypes.GZIP, messages })
    }
    await producer.disconnect()
    const { got } = await consumeGroup({ groupId: uniq('kjs-gzip-group'), topic, count: sent.length })
    return { topic, sent, got }
  },

  // Two members of one group on a 4-partition topic: each partition owned by exactly one, and
  // every record read once between them.
  async two_members() {
    const admin = kafka.admin()
    await admin.connect()
    const topic = uniq('kjs-two')
    await createTopic(admin, topic, 4)
    const groupId = uniq('kjs-two-group')
    const members = []
    const assignments = [] // per member: latest assignment seen in GROUP_JOIN
    for (let m = 0; m < 2; m++) {
      const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 300, maxWaitTimeInMs: 200, rebalanceTimeout: 10000 })
      const state = { got: [], joins: [] }
      consumer.on(consumer.events.GROUP_JOIN, e => {
        state.joins.push({ leaderId: e.payload.leaderId, memberId: e.payload.memberId, isLeader: e.payload.isLeader, assignment: e.payload.memberAssignment })
      })
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          state.got.push({ partition, offset: Number(message.offset), value: message.value.toString() })
        },
      })
      members.push({ consumer, state })
      assignments.push(state)
    }
    // Wait until both have joined with the same leader and their latest assignments together
    // hold 4 partitions (the first member's first assignment, alone, had all 4).
    const latest = () => assignments.map(s => s.joins[s.joins.length - 1])
    await waitFor(() => {
      const l = latest()
      if (l.some(j => !j)) return false
      if (l[0].leaderId !== l[1].leaderId) return false
      const owned = l.flatMap(j => j.assignment[topic] || [])
      return owned.length === 4
    }, 'both members joined, owning 4 partitions between them')
    const producer = kafka.producer()
    await producer.connect()
    const sent = []
    for (let i = 0; i < 40; i++) sent.push({ partition: i % 4, value: `two-${i}` })
    await producer.send({ topic, messages: sent })
    await producer.disconnect()
    await waitFor(() => members.reduce((a, m) => a + m.state.got.length, 0) >= sent.length, 'all 40 records read by the two members')
    await sleep(300)
    const describe = (await admin.describeGroups([groupId])).groups[0]
    const result = {
      topic,
      sent,
      members: members.map(m => ({ joins: m.state.joins, got: m.state.got })),
      describe: { state: describe.state, members: describe.members.length, protocol: describe.protocol },
    }
    await Promise.all(members.map(m => m.consumer.disconnect()))
    await admin.disconnect()
    return result
  },

  // Offsets committed by one member are where the next member of the group starts.
  async resume() {
    const admin = kafka.admin()
    await admin.connect()
    const topic = uniq('kjs-resume')
    await createTopic(admin, topic, 2)
    const groupId = uniq('kjs-resume-group')
    const producer = kafka.producer()
    await producer.connect()
    const first = []
    for (let i = 0; i < 20; i++) first.push({ partition: i % 2, value: `first-${i}` })
    await producer.send({ topic, messages: first })
    const a = await consumeGroup({ groupId, topic, count: first.length })
    const committed = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions
      .map(p => ({ partition: p.partition, offset: p.offset })).sort((x, y) => x.partition - y.partition)
    const second = []
    for (let i = 0; i < 10; i++) second.push({ partition: i % 2, value: `second-${i}` })
    await producer.send({ topic, messages: second })
    await producer.disconnect()
    // fromBeginning would apply only without a committed offset
    const b = await consumeGroup({ groupId, topic, count: second.length })
    const committedAfter = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions
      .map(p => ({ partition: p.partition, offset: p.offset })).sort((x, y) => x.partition - y.partition)
    await admin.disconnect()
    return { topic, first, second, gotFirst: a.got, committed, gotSecond: b.got, committedAfter }
  },
}

async function main() {
  if (!bootstrap || !scenarios[scenario]) {
    emit({ error: `usage: scenario.js <bootstrap> <${Object.keys(scenarios).join('|')}> [timeout s]` }, 1)
    return
  }
  try {
    const result = await scenarios[scenario]()
    emit({ result }, 0)
  } catch (e) {
    emit({ error: `${e.name}: ${e.message}`, type: e.type, stack: e.stack }, 1)
  }
}

main()

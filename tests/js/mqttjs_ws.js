// MQTT.js over ws:// against Cairn, driven by tests/integration/39_websockets_js.c:
//   node mqttjs_ws.js ws://127.0.0.1:PORT/mqtt
// Subscribes to js/# at QoS 1, publishes js/q0, js/q1, js/q2 at their QoS, prints "ready"
// once all three came back, then "got TOPIC QOS PAYLOAD" for every message and exits 0 after
// js/fromc (published by the C side) arrived. Any error exits 1.
'use strict';
const mqtt = require('mqtt');

const url = process.argv[2];
const client = mqtt.connect(url, {
  clientId: 'mqttjs-' + process.pid,
  protocolVersion: 4,
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: 10000,
});
const seen = new Set();
let ending = false;

function fail(why) {
  if (ending)
    return; // after DISCONNECT the broker closes: the WebSocket's late Close reply may meet EPIPE
  console.log('error ' + why);
  process.exit(1);
}

setTimeout(() => fail('timeout'), 20000).unref();
client.on('error', (e) => fail(e.message));
client.on('close', () => { if (!seen.has('js/fromc')) fail('closed'); });
client.on('message', (topic, payload, packet) => {
  console.log('got ' + topic + ' ' + packet.qos + ' ' + payload.toString());
  seen.add(topic);
  if (seen.has('js/q0') && seen.has('js/q1') && seen.has('js/q2') && !seen.has('ready')) {
    seen.add('ready');
    console.log('ready');
  }
  if (topic === 'js/fromc') {
    ending = true;
    client.end(false, () => process.exit(0));
  }
});
client.on('connect', () => {
  client.subscribe('js/#', { qos: 2 }, (err, granted) => {
    if (err || granted[0].qos !== 2)
      fail('subscribe');
    for (const q of [0, 1, 2])
      client.publish('js/q' + q, 'from mqtt.js ' + q, { qos: q }, (e) => { if (e) fail('publish'); });
  });
});

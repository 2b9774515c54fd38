#!/bin/sh
# Starts a single-node Apache Kafka (KRaft) in the apache/kafka image: an SSL listener that requires
# client certificates (what Websentry uses, port 9093, the only one on the compose network), a
# PLAINTEXT listener on the container's own loopback for the broker's own traffic, its health check
# and the topic set-up (9092: the `topic` service shares this container's network namespace), and
# the KRaft controller (9094, loopback too). No other container can reach the plaintext listeners.
set -eu
config=/tmp/server.properties
cat >"$config" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9094
listeners=PLAINTEXT://localhost:9092,SSL://:9093,CONTROLLER://localhost:9094
advertised.listeners=PLAINTEXT://localhost:9092,SSL://kafka:9093
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL
log.dirs=/var/lib/kafka/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
ssl.keystore.type=PEM
ssl.keystore.location=/pki/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=/pki/ca.crt
ssl.client.auth=required
PROPERTIES
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format --standalone -t "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" -c "$config"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$config"

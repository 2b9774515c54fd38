#!/bin/sh
# One-shot certificate generator of compose.yaml (runs as root in an Alpine container, once: a
# later run with the certificates in place does nothing). Makes a CA and, signed by it, the broker's,
# PostgreSQL's and Websentry's client certificates; each volume gets only what its service needs,
# owned by the numeric user that service runs as:
#   /ca        ca.crt, ca.key          (the CA's key stays here)
#   /kafka     broker.pem (key + certificate), ca.crt       uid 1000  (apache/kafka's appuser)
#   /postgres  server.crt, server.key, ca.crt               uid 999   (the postgres image's user)
#   /client    client.crt, client.key, ca.crt               uid 65532 (Websentry's images)
# To rotate: `docker compose down`, `docker volume rm` the four pki volumes, `docker compose up`.
set -eu
if [ -f /ca/.complete ]; then echo "certs: already generated"; exit 0; fi
apk add --no-cache openssl >/dev/null
umask 077
cd /ca
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca.key
openssl req -x509 -new -key ca.key -subj "/CN=Websentry Compose CA" -days 3650 -sha256 -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# issue NAME CN SAN EKU
issue() {
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "subjectAltName=$3" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=$4" >"$1.ext"
  openssl req -new -key "$1.key" -subj "/CN=$2" |
    openssl x509 -req -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
      -extfile "$1.ext" -out "$1.crt"
}
issue broker kafka "DNS:kafka,DNS:localhost" serverAuth,clientAuth
issue postgres postgres "DNS:postgres,DNS:localhost" serverAuth
issue client websentry-client "DNS:websentry-client" clientAuth

cat broker.key broker.crt >/kafka/broker.pem
cp ca.crt /kafka/ca.crt
chown -R 1000:1000 /kafka /kafka-data
cp postgres.crt /postgres/server.crt && cp postgres.key /postgres/server.key && cp ca.crt /postgres/ca.crt
chown -R 999:999 /postgres
cp client.crt client.key ca.crt /client/
chown -R 65532:65532 /client
chmod 0444 /kafka/ca.crt /postgres/ca.crt /postgres/server.crt /client/ca.crt /client/client.crt
rm -f broker.* postgres.* client.*
touch .complete
echo "certs: generated"

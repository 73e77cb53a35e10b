#!/bin/sh
# mkcerts.sh DIR — the TLS test material, made fresh in DIR (an existing, empty temp dir) with the
# openssl command line. Run by the unit test of broker/net/tls*.c (tests/unit/broker/test_tls.c) and
# by the TLS integration tests (tests/integration/harness_tls.c), so both test the same files:
#
#   ca.crt ca.key              "Cairn Test CA" (EC P-256), the CA every listener trusts
#   other-ca.crt other-ca.key  "Other CA", which nothing trusts
#   server-rsa.{crt,key}       RSA 2048 server certificate, CN=localhost, SAN localhost, 127.0.0.1
#   server-ec.{crt,key}        EC P-256 server certificate, the same names
#   client.{crt,key}           client certificate O=Example, CN=device-1 from ca.crt
#   revoked.{crt,key}          CN=revoked from ca.crt, listed in crl.pem
#   expired.{crt,key}          CN=expired from ca.crt, valid only in January 2020
#   other.{crt,key}            CN=device-1 from other-ca.crt
#   crl.pem                    ca.crt's CRL (revoked.crt)
#   psk                        a psk_file: sensor-9 (key 00112233445566778899aabbccddeeff, written
#                              in capitals) and other (abcd)
#
# All certificates are valid for 30 days from now except expired.crt. Exit status 0 on success.
set -e
cd "$1"
cat > ca.cnf <<'X'
[ca]
default_ca = myca
[myca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
crlnumber = crlnumber
default_md = sha256
policy = pol
default_crl_days = 30
unique_subject = no
[pol]
commonName = supplied
organizationName = optional
[srv]
subjectAltName = DNS:localhost,IP:127.0.0.1
X
: > index.txt; echo 1000 > serial; echo 01 > crlnumber
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
    -days 30 -subj "/CN=Cairn Test CA" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key \
    -out other-ca.crt -days 30 -subj "/CN=Other CA" 2>/dev/null
openssl genrsa -out server-rsa.key 2048 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out server-ec.key
for k in rsa ec; do
    openssl req -new -key server-$k.key -out server-$k.csr -subj "/CN=localhost"
    openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in server-$k.csr \
        -out server-$k.crt -days 30 -extensions srv 2>/dev/null
done
for c in client:"/O=Example/CN=device-1" revoked:"/CN=revoked" expired:"/CN=expired"; do
    n=${c%%:*}; s=${c#*:}
    openssl ecparam -name prime256v1 -genkey -noout -out $n.key
    openssl req -new -key $n.key -out $n.csr -subj "$s"
done
openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in client.csr \
    -out client.crt -days 30 2>/dev/null
openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in revoked.csr \
    -out revoked.crt -days 30 2>/dev/null
openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr \
    -out expired.crt -startdate 20200101000000Z -enddate 20200201000000Z 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out other.key
openssl req -new -key other.key -out other.csr -subj "/CN=device-1"
openssl x509 -req -in other.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial \
    -out other.crt -days 30 2>/dev/null
openssl ca -config ca.cnf -cert ca.crt -keyfile ca.key -revoke revoked.crt 2>/dev/null
openssl ca -config ca.cnf -cert ca.crt -keyfile ca.key -gencrl -out crl.pem 2>/dev/null
printf '# identity:key\nsensor-9:00112233445566778899AABBCCDDEEFF\nother:abcd\n' > psk

#!/bin/sh
# Make the seed corpora of the fuzz targets in fuzz/seeds/TARGET/ (and fuzz/seeds/trusted.pem,
# which the archive target trusts). Needs the openssl, zip and tar commands. Deterministic
# keys: the P-256 scalar 0x0101...01 (the key the csr_signed target signs with).
# Usage: fuzz/make-seeds.sh   (from anywhere; rewrites fuzz/seeds/)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
seeds=$here/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"
mkdir -p "$seeds"
for t in csr csr_signed dn dn_der pkcs11_uri archive certificate; do mkdir -p "$seeds/$t"; done
cd "$work"

# The fixed P-256 key: SEC1 ECPrivateKey { 1, 0x01 x 32, [0] prime256v1 } (openssl derives the point).
printf '\060\061\002\001\001\004\040' > key.der
i=0; while [ $i -lt 32 ]; do printf '\001' >> key.der; i=$((i + 1)); done
printf '\240\012\006\010\052\206\110\316\075\003\001\007' >> key.der
openssl ec -inform DER -in key.der -out key.pem 2>/dev/null

# DER of the element at depth 1 number $2 (0-based) inside the DER file $1.
nth_child() {
    line=$(openssl asn1parse -inform DER -in "$1" | awk '/d=1/' | sed -n "$(($2 + 1))p")
    off=$(echo "$line" | sed 's/^ *\([0-9]*\):.*/\1/')
    hl=$(echo "$line" | sed 's/.*hl= *\([0-9]*\).*/\1/')
    len=$(echo "$line" | sed 's/.*l= *\([0-9]*\) .*/\1/')
    dd if="$1" bs=1 skip="$off" count=$((hl + len)) 2>/dev/null
}

# The trusted signer certificate (archive target) and certificate seeds.
openssl req -new -x509 -key key.pem -subj "/C=DE/O=Example/CN=hsmsign fuzz signer" -days 3650 \
    -addext keyUsage=critical,digitalSignature -out "$seeds/trusted.pem"
cp "$seeds/trusted.pem" "$seeds/certificate/signer.pem"
openssl x509 -in "$seeds/trusted.pem" -outform DER -out "$seeds/certificate/signer.der"
openssl req -new -x509 -key key.pem -subj "/DC=com/DC=example/O=Example+OU=CA/CN=Fuzz Root" -days 3650 \
    -addext basicConstraints=critical,CA:TRUE,pathlen:1 -addext keyUsage=critical,keyCertSign,cRLSign \
    -outform DER -out "$seeds/certificate/ca.der"

# CSRs: PEM and DER, P-256 (the fixed key), P-384 and RSA, with subject alternative names.
openssl req -new -key key.pem -subj "/C=DE/ST=Berlin/O=Example GmbH/OU=Ops/CN=agent-1.example.com" \
    -addext "subjectAltName=DNS:agent-1.example.com,DNS:*.example.com,IP:10.0.0.1,IP:::1,email:ops@example.com,URI:https://example.com/x" \
    -addext "keyUsage=digitalSignature" -addext "extendedKeyUsage=serverAuth,clientAuth" \
    -out "$seeds/csr/p256-san.pem"
openssl req -in "$seeds/csr/p256-san.pem" -outform DER -out "$seeds/csr/p256-san.der"
openssl req -new -key key.pem -subj "/CN=plain" -out plain.der -outform DER
cp plain.der "$seeds/csr/p256-plain.der"
openssl ecparam -name secp384r1 -genkey -noout -out p384.pem 2>/dev/null
openssl req -new -key p384.pem -sha384 -subj "/CN=controller/O=Example" -addext "subjectAltName=DNS:controller" \
    -outform DER -out "$seeds/csr/p384.der"
openssl genrsa -out rsa.pem 2048 2>/dev/null
openssl req -new -key rsa.pem -subj "/CN=rsa client/emailAddress=a@example.com" -addext "subjectAltName=IP:192.0.2.7" \
    -out "$seeds/csr/rsa.pem"

# csr_signed: the CertificationRequestInfo of the fixed key's CSRs; dn_der: their subjects.
openssl req -in "$seeds/csr/p256-san.der" -inform DER -outform DER -out san.der
nth_child san.der 0 > "$seeds/csr_signed/san.info"
nth_child plain.der 0 > "$seeds/csr_signed/plain.info"
nth_child "$seeds/csr_signed/san.info" 1 > "$seeds/dn_der/san.name"
nth_child "$seeds/csr_signed/plain.info" 1 > "$seeds/dn_der/plain.name"
openssl req -in "$seeds/csr/rsa.pem" -outform DER -out rsa.der
nth_child rsa.der 0 > rsa.info
nth_child rsa.info 1 > "$seeds/dn_der/rsa.name"

# DN strings.
n=0
for dn in 'CN=agent-1.example.com,OU=Ops,O=Example GmbH,C=DE' \
    '/C=DE/O=Example/CN=Root CA' \
    'CN=a\,b+UID=x,DC=example,DC=com' \
    'CN=\ lead and trail\ ,O=\#hash' \
    'CN=Jürgen Müller,L=München,ST=Bayern,C=DE' \
    'CN=x\0Ay,emailAddress=a@example.com' \
    '/CN=slash\/in\/value/O=A+OU=B'; do
    printf '%s' "$dn" > "$seeds/dn/$n.txt"; n=$((n + 1))
done

# PKCS#11 URIs.
n=0
for uri in 'pkcs11:token=hsmsign;object=ca-root;type=private' \
    'pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=1a2b;token=t;id=%01%02%ff' \
    'pkcs11:slot-id=7;object=a%3bb?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin' \
    'pkcs11:token=t?pin-value=1234' \
    'pkcs11:type=cert;object=signer%2fkey'; do
    printf '%s' "$uri" > "$seeds/pkcs11_uri/$n.txt"; n=$((n + 1))
done

# A small JS7 export, signed with the fixed key (SHA256withECDSA), as ZIP and tar.gz.
mkdir -p js7/Accounting
printf '{"jocVersion":"2.7.2","inventorySchemaVersion":"1.0.0"}' > js7/meta_inf
printf '{\n  "TYPE" : "Workflow",\n  "instructions" : [ ]\n}\n' > js7/Accounting/eod.workflow.json
printf '{"TYPE":"JobResource","env":{"A":"1"}}' > js7/Accounting/env.jobresource.json
printf '{"TYPE":"Lock","limit":1}' > js7/Accounting/one.lock.json
for f in Accounting/eod.workflow.json Accounting/env.jobresource.json; do
    openssl dgst -sha256 -sign key.pem "js7/$f" | openssl base64 -A > "js7/$f.sig"
done
(cd js7 && zip -q -X -r "$seeds/archive/export.zip" meta_inf Accounting)
(cd js7 && tar --owner=0 --group=0 --mtime=@0 -czf "$seeds/archive/export.tar.gz" meta_inf Accounting)
echo "seeds written to $seeds"

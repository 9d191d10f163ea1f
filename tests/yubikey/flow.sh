#!/usr/bin/env bash
# The YubiKey ceremony against the emulated PIV card (run by tests/yubikey_emulated.rs through
# tools/piv-emulator/run-with-pcscd.sh). Every step is checked with openssl where it can be.
# Usage: flow.sh HSMSIGN_BINARY WORKDIR
set -euo pipefail
H=$1
cd "$2"
echo 123456 > pin
echo 000000 > wrong-pin
export HSMSIGN_PIN_SOURCE=file:$PWD/pin HSMSIGN_STATE=$PWD/state
step() { printf '\n== %s\n' "$*"; }

step "management key: refused without a source or an explicit opt-in to the default"
if "$H" key generate --key yubikey:slot=9a --algorithm ec-p256 2> err; then exit 1; fi
grep -q -- "--management-key-source" err && echo "refused: no management key"

step "a wrong PIN is tried once and reported with the tries left"
if HSMSIGN_PIN_SOURCE=file:$PWD/wrong-pin "$H" key generate --key yubikey:slot=9a \
  --algorithm ec-p256 --allow-default-credentials 2> err; then exit 1; fi
grep -q "tries left" err && echo "refused: wrong PIN, $(grep -o '[0-9] tries left' err)"

step "keys generated in slots 9a (root CA) and 9c (operator)"
"$H" key generate --key yubikey:slot=9a --algorithm ec-p384 --allow-default-credentials
"$H" key generate --key yubikey:slot=9c --algorithm ec-p256 --allow-default-credentials --pin-policy once
if "$H" key generate --key yubikey:slot=9a --algorithm ec-p256 --allow-default-credentials 2> err; then exit 1; fi
grep -q "already holds a key" err && echo "refused: slot 9a already holds a key"
"$H" key public --key yubikey:slot=9a --out root.pub
"$H" key inspect --key yubikey:slot=9a

step "a root CA in the YubiKey"
"$H" ca init --name ykroot --key yubikey:slot=9a --subject "CN=YubiKey Root CA, O=SOS, C=DE" --out ykroot.pem
openssl verify -x509_strict -CAfile ykroot.pem ykroot.pem
cmp <(openssl x509 -in ykroot.pem -noout -pubkey) root.pub && echo "root certificate holds the slot 9a key"

step "a certificate from a CSR, an operator certificate for slot 9c"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout c.key -subj /CN=controller -out c.csr 2>/dev/null
"$H" cert issue --ca ykroot --profile server-client --csr c.csr --san DNS:controller.example --out c.pem
openssl verify -x509_strict -purpose sslserver -CAfile ykroot.pem c.pem
"$H" cert issue --ca ykroot --profile signing --key yubikey:slot=9c --subject "CN=Operator, O=SOS" --out op.pem
openssl verify -CAfile ykroot.pem op.pem

step "a JS7 archive signed with slot 9c"
mkdir -p export/Flows
printf '{"TYPE":"Workflow","instructions":[]}\n' > export/Flows/a.workflow.json
printf '{"TYPE":"JobResource","arguments":{}}' > export/Flows/r.jobresource.json
(cd export && tar -czf ../export.tar.gz Flows)
"$H" archive sign --key yubikey:slot=9c --cert op.pem --in export.tar.gz --out signed.tar.gz
"$H" archive verify --in signed.tar.gz --trusted ykroot.pem --cert op.pem
mkdir -p check && tar -xzf signed.tar.gz -C check
openssl base64 -d -A -in check/Flows/a.workflow.json.sig -out a.sig.bin
openssl x509 -in op.pem -noout -pubkey > op.pub
openssl dgst -sha256 -verify op.pub -signature a.sig.bin check/Flows/a.workflow.json

step "a CRL signed in the YubiKey, and the audit log"
"$H" cert revoke --ca ykroot --serial "$(openssl x509 -in c.pem -noout -serial | cut -d= -f2)" --reason superseded
"$H" crl generate --ca ykroot --out ykroot.crl
openssl crl -in ykroot.crl -noout -CAfile ykroot.pem -verify
"$H" audit anchor --ca ykroot
"$H" audit verify

step "attestation: the emulated card cannot attest, and hsmsign says so"
if "$H" key attest --key yubikey:slot=9a 2> err; then exit 1; fi
grep -q "cannot attest" err && echo "refused: no attestation from the emulated card"
echo "YUBIKEY FLOW OK"

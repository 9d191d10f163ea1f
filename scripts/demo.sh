#!/usr/bin/env bash
# A full demo ceremony on throwaway SoftHSM2 tokens. Nothing outside a fresh temp directory is
# touched. PINs come from files in that directory (a real ceremony types them at the prompt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
hsmsign=$PWD/target/release/hsmsign

work=$(mktemp -d "${TMPDIR:-/tmp}/hsmsign-demo.XXXXXX")
eval "$(softhsm-config/new-token-dir.sh "$work/softhsm")"
export HSMSIGN_STATE=$work/state
cd "$work"
umask 077
# Throwaway PINs for throwaway tokens.
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > so-pin
head -c 6 /dev/urandom | od -An -tu1 | tr -d ' \n' | cut -c1-8 > user-pin
export HSMSIGN_PIN_SOURCE=file:$work/user-pin

step() { printf '\n=== %s\n' "$*"; }
run() { printf '$ hsmsign %s\n' "$*"; "$hsmsign" "$@"; }

step "1. Two tokens: the CA token (root + intermediate keys) and an operator's token"
run token init --label "JS7 CA" --so-pin-source "file:$work/so-pin"
run token init --label "Operator Alice" --so-pin-source "file:$work/so-pin"
run token list

step "2. Keys generated inside the tokens; they can never leave them"
run key generate --key "pkcs11:token=JS7%20CA;object=root-ca" --algorithm ec-p384
run key generate --key "pkcs11:token=JS7%20CA;object=intermediate-ca" --algorithm ec-p256
run key generate --key "pkcs11:token=Operator%20Alice;object=signing" --algorithm ec-p256
run key list --token "pkcs11:token=JS7%20CA"

step "3. Proof of provenance: every security attribute, and the verdict"
run key inspect --key "pkcs11:token=JS7%20CA;object=root-ca"

step "4. Root CA and Intermediate CA, signed inside the token"
run ca init --name root --key "pkcs11:token=JS7%20CA;object=root-ca" \
  --subject "CN=JS7 Root CA, OU=IT Operations, O=SOS, L=Berlin, ST=Berlin, C=DE" --out root-ca.pem
run ca intermediate --name intermediate --issuer root --key "pkcs11:token=JS7%20CA;object=intermediate-ca" \
  --subject "CN=JS7 Intermediate CA, OU=IT Operations, O=SOS, L=Berlin, ST=Berlin, C=DE" --out intermediate-ca.pem
run ca show
run ca export --name intermediate --chain --out ca-bundle.pem
openssl verify -x509_strict -CAfile root-ca.pem intermediate-ca.pem

step "5. Instance certificates: Controller and Agent from CSRs made on the instances"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout controller.key \
  -subj "/C=DE/O=SOS/OU=JS7/CN=controller.example.com" -out controller.csr 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout agent.key \
  -subj "/C=DE/O=SOS/OU=JS7/CN=agent.example.com" -out agent.csr 2>/dev/null
run cert issue --ca intermediate --profile server-client --csr controller.csr \
  --san DNS:controller.example.com --out controller.pem --chain-out controller-ca-bundle.pem
run cert issue --ca intermediate --profile server-client --csr agent.csr \
  --san DNS:agent.example.com --out agent.pem
openssl verify -purpose sslserver -CAfile ca-bundle.pem controller.pem agent.pem

step "6. JOC Cockpit: key made here, handed over in a password-protected PKCS#12 key bundle"
head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > joc-p12-password
run cert issue --ca intermediate --profile server-client --generate-key ec-p256 \
  --subject "CN=joc.example.com, OU=JS7, O=SOS, C=DE" --san DNS:joc.example.com \
  --pkcs12 joc-https-keystore.p12 --p12-password-source "file:$work/joc-p12-password" --out joc.pem
keytool -list -storetype PKCS12 -keystore joc-https-keystore.p12 -storepass "$(cat joc-p12-password)" | grep -i entry

step "7. CA bundle as JS7 truststore, and the Controller's private.conf lines"
run bundle truststore --ca root --ca intermediate --out https-truststore.p12 --pkcs12 \
  --password-source "file:$work/joc-p12-password"
run bundle js7-config --cert controller.pem --role controller

step "8. An operator signing certificate for Alice's key on her own token"
run cert issue --ca intermediate --profile signing --key "pkcs11:token=Operator%20Alice;object=signing" \
  --subject "CN=Alice Operator, OU=JS7 Deployment, O=SOS, C=DE" --out alice-signing.pem
run cert list

step "9. Sign a JS7 export (Security Level High) with Alice's token key"
mkdir -p export/Accounting/Daily export/Accounting/Resources
printf '{"jocVersion":"2.7.2","inventorySchemaVersion":"1.0.0","apiVersion":"1.0.0","versionId":"6f1c0e2a"}' > export/meta_inf
printf '{\n  "TYPE": "Workflow",\n  "version": "1.0.0",\n  "instructions": [ { "TYPE": "Execute.Named", "jobName": "eod" } ],\n  "jobs": { "eod": { "agentName": "agent", "executable": { "TYPE": "ShellScriptExecutable", "script": "echo end of day" } } }\n}\n' \
  > export/Accounting/Daily/eod.workflow.json
printf '{"TYPE":"JobResource","arguments":{"DB_URL":"\\"jdbc:h2:mem:x\\""}}' > export/Accounting/Resources/db.jobresource.json
printf '{"TYPE":"Lock","limit":1}' > export/Accounting/Daily/one.lock.json
(cd export && tar -czf ../export.tar.gz meta_inf Accounting)
run archive sign --key "pkcs11:token=Operator%20Alice;object=signing" --cert alice-signing.pem \
  --in export.tar.gz --out export-signed.tar.gz
tar -tzf export-signed.tar.gz

step "10. Would a JS7 Controller accept it? (trusted-x509-keys holds the Intermediate CA)"
run bundle trusted-keys --ca intermediate --out trusted-x509-keys
run archive verify --in export-signed.tar.gz --trusted trusted-x509-keys --cert alice-signing.pem
# The same check with openssl alone, for one object:
mkdir -p check && tar -xzf export-signed.tar.gz -C check
openssl base64 -d -A -in check/Accounting/Daily/eod.workflow.json.sig -out eod.sig.bin
openssl x509 -in alice-signing.pem -noout -pubkey > alice.pub
openssl dgst -sha256 -verify alice.pub -signature eod.sig.bin check/Accounting/Daily/eod.workflow.json

step "11. Revoke the Agent's certificate and publish a CRL"
agent_serial=$(openssl x509 -in agent.pem -noout -serial | cut -d= -f2)
run cert revoke --ca intermediate --serial "$agent_serial" --reason keyCompromise
run crl generate --ca intermediate --out intermediate.crl
openssl crl -in intermediate.crl -noout -CAfile ca-bundle.pem -verify

step "12. The audit log: anchored by the root key, then verified"
run audit anchor --ca root
run audit show
run audit verify

step "13. What ends when (a daily monitoring job: exit status 4 when anything ends within 90 days)"
run expiry --all

if [ -n "${HSMSIGN_DEMO_YUBIKEY:-}" ]; then
  step "14. (optional) A real YubiKey: the slot's provenance and its attestation, read-only"
  unset HSMSIGN_PIN_SOURCE   # the YubiKey's PIN is asked for on the terminal
  run key inspect --key "$HSMSIGN_DEMO_YUBIKEY"
  run key attest --key "$HSMSIGN_DEMO_YUBIKEY" --out yubikey-attestation.pem
else
  printf '\n(Optional YubiKey step: plug in a YubiKey with a key in slot 9a and run with HSMSIGN_DEMO_YUBIKEY=yubikey:slot=9a; see docs/yubikey.md.)\n'
fi

step "Done. Everything is in $work"

// @node-saml/node-saml (the SAML core of passport-saml, over xml-crypto) validating the
// run's SAML Response: refuses the tampered copy first, then the median of many calls.
//
//   node saml_node.mjs WORK_DIR   prints {"key":"acs.node-saml","value":µs,"unit":"us"}
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SAML } from "@node-saml/node-saml";

const work = join(process.argv[2], "saml");
const config = JSON.parse(readFileSync(join(work, "config.json"), "utf8"));
const response = readFileSync(join(work, "response.b64"), "utf8");
const tampered = readFileSync(join(work, "tampered.b64"), "utf8");

const saml = new SAML({
  callbackUrl: config.acs_url,
  entryPoint: config.idp_sso_url,
  issuer: config.sp_entity_id,
  audience: config.sp_entity_id,
  idpCert: readFileSync(join(work, "idp-cert.pem"), "utf8"),
  idpIssuer: config.idp_entity_id,
  wantAssertionsSigned: true,
  wantAuthnResponseSigned: false,
  validateInResponseTo: "never",
  signatureAlgorithm: "sha256",
});

const valid = async (encoded) => {
  try {
    await saml.validatePostResponseAsync({ SAMLResponse: encoded });
    return true;
  } catch {
    return false;
  }
};

try {
  await saml.validatePostResponseAsync({ SAMLResponse: response });
} catch (e) {
  console.error(`node-saml refused the fixture: ${e}`);
  process.exit(1);
}
if (await valid(tampered)) {
  console.error("node-saml accepted the tampered response");
  process.exit(1);
}
const n = 500;
for (let i = 0; i < n / 10; i++) await valid(response);
const times = [];
for (let i = 0; i < n; i++) {
  const t = process.hrtime.bigint();
  await valid(response);
  times.push(Number(process.hrtime.bigint() - t) / 1000);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ key: "acs.node-saml", value: Math.round(times[n >> 1] * 100) / 100, unit: "us" }));

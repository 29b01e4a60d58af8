// jose doing the cryptographic part of the JWT bearer grant, keys imported once: verify the
// RS256 assertion (signature, exp, aud, iss) and sign an ES256 access token. No store.
//
//   node jwt_node.mjs WORK_DIR   prints {"key":"grant.jose","value":µs,"unit":"us"}
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { importPKCS8, importSPKI, jwtVerify, SignJWT } from "jose";

const work = join(process.argv[2], "jwt");
const config = JSON.parse(readFileSync(join(work, "config.json"), "utf8"));
const assertion = readFileSync(join(work, "assertion.jwt"), "utf8").trim();
const tampered = readFileSync(join(work, "tampered.jwt"), "utf8").trim();
const pub = await importSPKI(readFileSync(join(work, "client-public.pem"), "utf8"), "RS256");
const signing = await importPKCS8(readFileSync(join(work, "signing-es256.pem"), "utf8"), "ES256");

const grant = async (token) => {
  const { payload } = await jwtVerify(token, pub, {
    algorithms: ["RS256"],
    audience: config.audience,
    issuer: config.issuer,
  });
  return new SignJWT({ scope: "api" })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt" })
    .setIssuer(config.access_token_issuer)
    .setSubject(payload.sub)
    .setAudience(config.audience)
    .setIssuedAt()
    .setExpirationTime("1h")
    .setJti(randomUUID())
    .sign(signing);
};

await grant(assertion);
let accepted = true;
try {
  await grant(tampered);
} catch {
  accepted = false;
}
if (accepted) {
  console.error("jose accepted the tampered assertion");
  process.exit(1);
}
const n = 2000;
for (let i = 0; i < n / 10; i++) await grant(assertion);
const times = [];
for (let i = 0; i < n; i++) {
  const t = process.hrtime.bigint();
  await grant(assertion);
  times.push(Number(process.hrtime.bigint() - t) / 1000);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ key: "grant.jose", value: Math.round(times[n >> 1] * 100) / 100, unit: "us" }));

// oidc-provider (node-oidc-provider) serving client_credentials for one confidential client,
// access tokens as ES256 JWTs (RFC 9068), as our token endpoint issues them: the peer of the
// token-endpoint rows. Listens on 127.0.0.1 only.
//
//   node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET
import Provider from "oidc-provider";
import { exportJWK, generateKeyPair } from "jose";

const [port, clientId, clientSecret] = process.argv.slice(2);
const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: "ES256", use: "sig", kid: "bench" };
const resource = "https://api.example.com";

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "ES256",
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ["api"],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "api",
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "ES256" } },
      }),
    },
  },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => console.log(`listening on ${port}`));

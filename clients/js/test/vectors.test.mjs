// The shared DPoP vectors (testdata/vectors/dpop): proofs made by this
// package verify with the Go dpop package (dpop/jsvectors_test.go) and
// vice versa. Here: js.json is what createProof makes today, the proofs of
// both makers get the case's outcome from the reference verifier, and the
// Go-made proofs carry exactly the header and claims this package writes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { thumbprint } from "../dist/index.js";
import { makeProof, readVectors, referenceVerify, signerOf } from "./vectorlib.mjs";

const { keys } = readVectors("keys.json");
const cases = readVectors("cases.json").cases;
const strip = ({ proof, ...c }) => c;
const signingInput = (p) => p.slice(0, p.lastIndexOf("."));

test("vector keys: thumbprints as keys.json says", async () => {
  for (const [name, k] of Object.entries(keys)) {
    const jwk = k.kty === "EC" ? { kty: "EC", crv: "P-256", x: k.x, y: k.y } : { kty: "OKP", crv: "Ed25519", x: k.x };
    assert.equal(await thumbprint(jwk), k.jkt, name);
    if (k.d) assert.deepEqual((await signerOf(k)).publicJwk, jwk, `${name}: d and x/y`);
  }
});

for (const file of ["js.json", "go.json"]) {
  test(`${file}: generated from the current cases.json`, () => {
    const f = readVectors(file);
    assert.deepEqual(f.cases.map(strip), cases, `${file} is stale: regenerate it (testdata/vectors/dpop/README.md)`);
  });
  for (const c of readVectors(file).cases) {
    test(`${file}/${c.name}: ${c.expect}`, async () => {
      assert.equal(await referenceVerify(c.proof, c.verify, keys), c.expect, c.comment);
      const mine = await makeProof(keys, c);
      if (keys[c.key].kty === "OKP") {
        assert.equal(mine, c.proof, "Ed25519 proofs are deterministic: both implementations make the same bytes");
      } else {
        assert.equal(signingInput(mine), signingInput(c.proof), "both implementations write the same header and claims");
      }
      if (file === "js.json" && keys[c.key].kty !== "OKP") {
        // ES256 signatures are randomised: a fresh one must verify the same.
        assert.equal(await referenceVerify(mine, c.verify, keys), c.expect);
      }
    });
  }
}

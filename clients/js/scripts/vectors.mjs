// Writes testdata/vectors/dpop/js.json: the proofs this package makes for
// each case of cases.json. `npm run vectors` after changing cases.json or
// the proof code; test/vectors.test.mjs checks the file is current.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeProof, readVectors, vectorsDir } from "../test/vectorlib.mjs";

const { keys } = readVectors("keys.json");
const { cases } = readVectors("cases.json");
const out = {
  comment: "Proofs made by clients/js (createProof) for cases.json. Generated: cd clients/js && npm run vectors",
  maker: "js",
  cases: [],
};
for (const c of cases) out.cases.push({ ...c, proof: await makeProof(keys, c) });
writeFileSync(join(vectorsDir, "js.json"), JSON.stringify(out, null, 2) + "\n");
console.log(`wrote ${out.cases.length} cases to ${join(vectorsDir, "js.json")}`);

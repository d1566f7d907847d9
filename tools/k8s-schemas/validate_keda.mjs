// Validate KEDA objects against KEDA's CRD schemas (the validators
// @kubernetes-models/keda generates from them): reads a JSON list of
// objects on stdin, prints one line per object ("ok" or the errors) and
// exits 1 if any is invalid. Used by tests/test_helm.py.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";

const kinds = { ScaledObject, TriggerAuthentication };
const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));
let failed = false;
for (const object of input) {
  const Kind = kinds[object.kind];
  if (!Kind) {
    console.log(`${object.kind}: no KEDA schema for this kind`);
    failed = true;
    continue;
  }
  try {
    new Kind(object).validate();
    console.log(`${object.kind}/${object.metadata.name}: ok`);
  } catch (error) {
    console.log(`${object.kind}/${object.metadata.name}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);

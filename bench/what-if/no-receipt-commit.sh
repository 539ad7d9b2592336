#!/usr/bin/env bash
# What a webhook would gain if its receipt cost no statement and no commit of its own: the
# gateway as it is, beside the same code with no-receipt-commit.patch applied (Mollie receipts
# not stored at all: an upper bound, never a build to ship), interleaved A B A B.
# Each round runs (e) (one gateway pass beside the hand-written baseline) and (a) with the
# in-process lock only (max rate, half rate, the evenly paced pass), for each build.
#   bash bench/what-if/no-receipt-commit.sh            # 2 rounds; WHAT_IF_ROUNDS=N for more
# Takes about 5 minutes a round. Summary lines at the end; full logs in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/what-if-receipt.XXXXXX)
mkdir -p "$work/as-is" "$work/no-receipt"
git archive HEAD src drizzle | tar -x -C "$work/as-is"
git archive HEAD src drizzle | tar -x -C "$work/no-receipt"
git apply --directory="$work/no-receipt" --unsafe-paths bench/what-if/no-receipt-commit.patch
grep -q unstoredId "$work/no-receipt/src/webhooks/receipts.ts"
echo "logs in $work (code: $(git rev-parse --short HEAD))"
for round in $(seq 1 "${WHAT_IF_ROUNDS:-2}"); do
  for build in as-is no-receipt; do
    BENCH_GATEWAY_SRC="$work/$build" BENCH_OUT="$work/$build-e$round.json" BENCH_SCENARIOS=e BENCH_E_SDK=0 BENCH_AB_ROUNDS=1 \
      npm run --silent bench > "$work/$build-e$round.log" 2>&1
    BENCH_GATEWAY_SRC="$work/$build" BENCH_OUT="$work/$build-a$round.json" BENCH_SCENARIOS=a BENCH_REDIS=0 BENCH_PACED_SECONDS=30 \
      npm run --silent bench > "$work/$build-a$round.log" 2>&1
  done
done
for round in $(seq 1 "${WHAT_IF_ROUNDS:-2}"); do
  for build in as-is no-receipt; do
    echo "== round $round, $build"
    grep -hE "^  round 1: (gateway|baseline)" "$work/$build-e$round.log" | cut -c1-150
    grep -hE "^  in-process lock, node, (max rate|half rate .*evenly paced)" "$work/$build-a$round.log" | cut -c1-170
  done
done

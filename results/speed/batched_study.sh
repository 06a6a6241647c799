#!/usr/bin/env bash
# sgmmq bench on results/speed/batched_study.yml, batched then --no-batch, one after the other, into
# fresh folders; writes results/speed/batched_study.json (wall-clock of each bench, the run files' sums).
#   bash results/speed/batched_study.sh [OUT_ROOT]      (default /tmp/batched_study)
set -euo pipefail
root=${1:-/tmp/batched_study}
rm -rf "$root" && mkdir -p "$root"
export OMP_NUM_THREADS=1
for mode in batched single; do
  flag=(); [ "$mode" = single ] && flag=(--no-batch)
  start=$(date +%s.%N)
  sgmmq bench results/speed/batched_study.yml --out "$root/$mode" --workers 2 --no-progress "${flag[@]}"
  echo "$mode $start $(date +%s.%N)" >> "$root/times.txt"
done
python - "$root" <<'PY'
import json, pathlib, sys
from sgmmq.provenance import machine, versions
from sgmmq.study import record
root = pathlib.Path(sys.argv[1])
summary = {"config": "results/speed/batched_study.yml", "command": "bash results/speed/batched_study.sh", "versions": versions(),
           "machine": machine(), "load_average_after": open("/proc/loadavg").read().split()[:3]}
for line in (root / "times.txt").read_text().splitlines():
    mode, start, end = line.split()
    runs = [record.read(p) for p in sorted((root / mode / "runs").glob("*.json"))]
    summary[mode] = {"bench_wall_seconds": float(end) - float(start), "runs": len(runs), "ok": sum(r.ok for r in runs),
                     "train_seconds_sum": sum(r.train_seconds for r in runs), "eval_seconds_sum": sum(r.eval_seconds for r in runs),
                     "scores": [r.score_mean for r in runs], "jobs_wall_seconds": sorted({r.batched["wall_seconds"] for r in runs if r.batched})}
summary["ratio_bench_wall_single_over_batched"] = summary["single"]["bench_wall_seconds"] / summary["batched"]["bench_wall_seconds"]
summary["ratio_train_seconds_single_over_batched"] = summary["single"]["train_seconds_sum"] / summary["batched"]["train_seconds_sum"]
pathlib.Path("results/speed/batched_study.json").write_text(json.dumps(summary, indent=1) + "\n")
print(json.dumps(summary, indent=1))
PY

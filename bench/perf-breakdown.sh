#!/usr/bin/env bash
# Where a CPU forward spends its time, by kind of work: runs the bench tool's `loop` mode (one kind of call back to
# back) under Linux perf (cpu-clock sampling: a VM exposes no hardware counters), with the .NET JIT's perf map so
# that the engine's kernels have names, and prints the share of samples of each category below, over all threads.
# For ONNX Runtime (`ort`), whose native library is stripped, it prints the share of each 64 KB region of
# libonnxruntime.so instead (addresses relative to the library; on the Zen 5 VM 86-93% of ORT's samples fell in two
# adjacent regions, presumably its MLAS kernels) and of every other library.
#
# usage: bench/perf-breakdown.sh model MODEL.safetensors BATCH [SECONDS]
#        bench/perf-breakdown.sh ort MODEL.onnx BATCH [SECONDS]
#        bench/perf-breakdown.sh conv N C K H KH STRIDE FORM|auto [SECONDS]
# (SECONDS default 20.) Needs perf: `apt-get install linux-perf`; the bench tool is built first if missing.
# Categories (by the sampled function's name; the first that matches):
#   GEMM micro-kernels      PackedGemm's tiles (column, pixel-row and Winograd GEMMs, linear layers)
#   direct-conv kernel      DirectConv.Kernel (the NHWC-buffer form)
#   planar kernel           PlanarConv.Kernel/Row (stems, narrow 1x1s)
#   depthwise               DepthwiseConv.*
#   Winograd transforms     WinogradConv.* (input split and transform, output transform and store)
#   layout copies, stores   DirectConv's NHWC copy and transposing store, planar tile finish, transposed scatters
#   packing                 B/A panel packing (PackA, InPlaceRows, ConvColumns, RowOffsets, ConvPlan)
#   pooling, elementwise    CpuPooling, CpuElementwise, CpuMisc, store epilogues, GAP
#   wait, runtime, OS       CpuParallel's loop and spin-waits, libcoreclr, the kernel (scheduler, yields), libc, vdso
#   other                   everything else (JIT, graph bookkeeping, ...)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '9,11p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2; }
[ $# -ge 1 ] || usage
kind=$1; shift
case "$kind" in
  model|ort) [ $# -ge 2 ] && [ $# -le 3 ] || usage; args=("$1" "$2" "${3:-20}") ;;
  conv) [ $# -ge 7 ] && [ $# -le 8 ] || usage; args=("$@"); [ $# -eq 8 ] || args+=(20) ;;
  *) usage ;;
esac
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 1; }
dll="$root/bench/CamEngine.Bench/bin/Release/net10.0/CamEngine.Bench.dll"
[ -f "$dll" ] || dotnet build -c Release "$root/bench/CamEngine.Bench" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# W^X off: with it on, the JIT's code runs from a second mapping perf cannot match to the perf map.
DOTNET_TieredCompilation=0 DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 \
  perf record -q -F 2000 -o "$work/perf.data" dotnet "$dll" loop "$kind" "${args[@]}" >"$work/loop.txt" 2>"$work/record.err" || true
cat "$work/loop.txt"
grep -q '^loop ' "$work/loop.txt" || { grep -v '^\[ perf record' "$work/record.err" | head -5 >&2; exit 1; }
perf script -i "$work/perf.data" -F ip,sym,dso 2>/dev/null > "$work/samples.txt" || true
pid="$(perf script -i "$work/perf.data" -F pid 2>/dev/null | head -1 | tr -d ' ' || true)"
[ -z "$pid" ] || rm -f "/tmp/perf-$pid.map" "/tmp/perfinfo-$pid.map"
if [ "$kind" = ort ]; then
  # perf report gives a stripped library's addresses relative to the library (the same from run to run).
  perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio -q 2>/dev/null |
    awk '$1 ~ /%$/ { p = $1; sub(/%/, "", p); dso = $2; a = $NF
         if (dso == "libonnxruntime.so" && a ~ /^0x/) { r = substr(a, 1, length(a) - 4); key = "libonnxruntime.so at " r "0000 (64 KB)" }
         else key = dso
         share[key] += p }
       END { for (k in share) printf "%6.1f%%  %s\n", share[k], k }' | sort -rn | head -12
  exit 0
fi
awk '
  function cat(line) {
    if (line ~ /PackedGemm::(Kernel|WideTile|RowsATile|CrossingTile|RowPanelTile|Tile\(|StoreEdge|StoreEnd|Store512)/) return "GEMM micro-kernels"
    if (line ~ /DirectConv::Kernel/) return "direct-conv kernel"
    if (line ~ /PlanarConv::(Kernel|Row)/) return "planar kernel"
    if (line ~ /DepthwiseConv/) return "depthwise"
    if (line ~ /WinogradConv/) return "Winograd transforms"
    if (line ~ /DirectConv|PlanarConv::Finish|ScatterTransposed|Transpose|CopyRow|Gather/) return "layout copies, stores"
    if (line ~ /Pack|InPlaceRows|ConvColumns|RowOffsets|ConvPlan|PrepackedPanels|PackedGemm/) return "packing"
    if (line ~ /CpuPooling|CpuElementwise|CpuMisc|StoreEpilogue|TileEnd|GlobalAvg|Relu/) return "pooling, elementwise"
    if (line ~ /CpuParallel|SpinWait|libcoreclr|kernel\.kallsyms|libc\.so|vdso|ld-linux|sched_yield/) return "wait, runtime, OS"
    return "other"
  }
  { n++; share[cat($0)]++ }
  END { for (k in share) printf "%6.1f%%  %s\n", 100 * share[k] / n, k; printf "%d samples\n", n > "/dev/stderr" }' \
  "$work/samples.txt" | sort -rn

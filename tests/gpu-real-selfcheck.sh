#!/bin/bash
# gpu-real-selfcheck.sh — checks tests/gpu-real.sh itself where there is no GPU: against a fake nvidia-smi
# that lists the cards written in a file and, as compute processes, the fake holders that are alive (each
# registers its card and size in a directory), it must find every promise held on two cards and on one; it
# must find them broken when the fake holder opens another card than the one CUDA_VISIBLE_DEVICES names;
# and it must skip (exit 0) without nvidia-smi and when nvidia-smi finds no GPU. Not part of make check.
#
#   bash tests/gpu-real-selfcheck.sh      # from the repository root, with ./ts built
set -u
cd "$(dirname "$0")/.." || exit 1
F=$(mktemp -d "${TMPDIR:-/tmp}/gpu-real-fake.XXXXXX") || exit 1
trap 'rm -rf "$F"' EXIT
mkdir "$F/procs"

cat >"$F/nvidia-smi" <<EOF
#!/bin/sh
# The fake: cards from $F/cards (index, uuid, bus, total MiB, name), processes from $F/procs/PID (uuid mib).
F=$F
alive() { for p in "\$F"/procs/*; do [ -e "\$p" ] && kill -0 "\${p##*/}" 2>/dev/null && echo "\${p##*/} \$(cat "\$p")"; done; }
if [ ! -s "\$F/cards" ]; then echo "No devices were found"; exit 6; fi
case "\$*" in
--query-gpu=index,uuid,memory.total,name" "*)
    awk -F', ' '{ print \$1 ", " \$2 ", " \$4 ", " \$5 }' "\$F/cards" ;;
--query-gpu=index,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,compute_mode,mig.mode.current,name" "*)
    alive >"\$F/.alive.\$\$"
    while IFS=, read -r i u b t n; do
        used=\$(awk -v u="\${u# }" '\$2 == u { s += \$3 } END { print s + 0 }' "\$F/.alive.\$\$")
        echo "\$i,\$u,\$b,\$t, \$used, 0, Default, Disabled,\$n"
    done <"\$F/cards"
    rm -f "\$F/.alive.\$\$" ;;
--query-compute-apps=gpu_uuid,pid,used_memory,process_name" "*)
    alive | while read -r p u m; do echo "\$u, \$p, \$m, gpu-hold"; done ;;
--query-compute-apps=gpu_uuid,pid" "*)
    alive | while read -r p u m; do echo "\$u, \$p"; done ;;
*) echo "fake nvidia-smi: unexpected arguments: \$*"; exit 2 ;;
esac
EOF
cat >"$F/gpu-hold" <<EOF
#!/bin/sh
# The fake gpu-hold MIB [SECONDS]: registers itself on the first card CUDA_VISIBLE_DEVICES names (another
# one when $F/lie exists), says so as gpu-hold does, and waits.
F=$F
i=\${CUDA_VISIBLE_DEVICES-0}
i=\${i%%,*}
[ "\$i" = -1 ] && { echo "gpu-hold: cuDeviceGet(0) failed: error 100 (no CUDA-capable device is detected)" >&2; exit 1; }
n=\$(wc -l <"\$F/cards")
[ -e "\$F/lie" ] && i=\$(( (i + 1) % n ))
u=\$(awk -F', ' -v i="\$i" '\$1 == i { print \$2 }' "\$F/cards")
echo "\$u \$1" >"\$F/procs/\$\$"
echo "holding \$1 MiB on \$u (pid \$\$)"
sleep "\${2:-86400}" &
s=\$!
trap 'kill \$s 2>/dev/null; rm -f "\$F/procs/\$\$"; exit 0' TERM INT HUP
wait \$s
rm -f "\$F/procs/\$\$"
EOF
chmod 755 "$F/nvidia-smi" "$F/gpu-hold"

two='0, GPU-0a0a0a0a-0000-4000-8000-00000000000a, 00000000:18:00.0, 81559, NVIDIA H100 80GB HBM3
1, GPU-1b1b1b1b-1111-4111-8111-11111111111b, 00000000:2A:00.0, 81559, NVIDIA H100 80GB HBM3'
FAILED=0
# run WHAT WANT_RC WANT_TEXT: run gpu-real.sh against the fake; its exit status and a line it must print.
run() {
    local out rc
    out=$(GPU_REAL_SMI=$F/nvidia-smi GPU_REAL_HOLD=$F/gpu-hold timeout 300 bash tests/gpu-real.sh 2>&1)
    rc=$?
    if [ $rc = "$2" ] && grep -q -- "$3" <<<"$out" && { [ "$2" != 0 ] || ! grep -q '^broken' <<<"$out"; }; then
        echo "ok - $1 (exit $rc)"
    else
        FAILED=$((FAILED + 1))
        echo "not ok - $1: exit $rc, wanted $2 and '$3'"
        sed 's/^/#   /' <<<"$out"
    fi
    [ -n "${VERBOSE-}" ] && sed 's/^/#   /' <<<"$out"
}

printf '%s\n' "$two" >"$F/cards"
run "two cards: every promise held" 0 '^gpu-real: [0-9]* held, 0 broken'
head -n 1 <<<"$two" >"$F/cards"
run "one card: every promise held (the job waits for the foreign process)" 0 '^gpu-real: [0-9]* held, 0 broken'
printf '%s\n' "$two" >"$F/cards"
: >"$F/lie"
run "a job that opens another card than it was given: broken" 1 "^broken  a job's CUDA_VISIBLE_DEVICES"
rm -f "$F/lie"
: >"$F/cards"
run "nvidia-smi finds no GPU: skipped" 0 '^gpu-real: skipped: .* finds no GPU (exit 6: No devices were found)'
out=$(GPU_REAL_SMI=$F/no-such-smi bash tests/gpu-real.sh 2>&1)
rc=$?
if [ $rc = 0 ] && grep -q '^gpu-real: skipped: .*no-such-smi not found' <<<"$out"; then echo "ok - no nvidia-smi: skipped"
else FAILED=$((FAILED + 1)); echo "not ok - no nvidia-smi: exit $rc: $out"; fi
left=$(ls "$F/procs" | wc -l)
[ "$left" = 0 ] && echo "ok - no stand-in left running" || { FAILED=$((FAILED + 1)); echo "not ok - $left stand-ins left"; }
echo "gpu-real-selfcheck: $FAILED failed"
[ "$FAILED" = 0 ]

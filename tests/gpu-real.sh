#!/bin/bash
# gpu-real.sh — ts's GPU promises (README "GPUs") checked on a machine with a real NVIDIA GPU, with real
# processes: tests/gpu-hold.c (built here with cc; it holds GPU memory through the CUDA driver API) plays a
# colleague's process, run outside ts, and the jobs. Each promise is printed as `held` or `broken` with a
# short detail, then a summary line; the exit status is 1 if any promise is broken. Where nvidia-smi is
# missing or finds no GPU it says so and exits 0. Not part of `make check` (no GPU there).
#
#   bash tests/gpu-real.sh          # from the repository root; builds ./ts if it is missing
#
# Each section runs its own queue on a private TS_SOCKET and TMPDIR (a queue's settings are its own), and
# everything started is killed on exit. It takes a minute or two; every wait has a deadline.
# For a check of this script's own logic without a GPU: GPU_REAL_SMI names an nvidia-smi to use instead
# of the real one and GPU_REAL_HOLD a program to use instead of gpu-hold (tests/gpu-real-selfcheck.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
SMI=${GPU_REAL_SMI:-nvidia-smi}

if ! command -v "$SMI" >/dev/null 2>&1; then
    echo "gpu-real: skipped: $SMI not found (this checks ts on a machine with an NVIDIA GPU)"
    exit 0
fi
CARDS=$("$SMI" --query-gpu=index,uuid,memory.total,name --format=csv,noheader,nounits 2>&1)
rc=$?
if [ $rc -ne 0 ] || ! printf '%s\n' "$CARDS" | grep -q '^[0-9]*, GPU-'; then
    echo "gpu-real: skipped: $SMI finds no GPU (exit $rc: $(printf '%s\n' "$CARDS" | head -n 1))"
    exit 0
fi

[ -x ./ts ] || make -j2 ts >/dev/null || { echo "gpu-real: cannot build ./ts"; exit 1; }
TS=$ROOT/ts
W=$(mktemp -d "${TMPDIR:-/tmp}/gpu-real.XXXXXX") || exit 1
PIDS=()
QUEUES=()
cleanup() {
    local p q
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for q in "${QUEUES[@]}"; do TS_SOCKET=$q timeout 10 "$TS" -K >/dev/null 2>&1; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR=$W
unset TS_GPU_SLOTS TS_GPU_FOREIGN TS_GPU_MIN_FREE TS_GPU_SETTLE TS_VISIBLE_DEVICES TS_GPU_HIDE TS_GPU_SYSFS \
    TS_GPU_PROBE_INTERVAL TS_GPU_PROBE_TIMEOUT CUDA_VISIBLE_DEVICES TS_GPUS TS_ENV TS_ONFINISH TS_MAXFINISHED

if [ -n "${GPU_REAL_HOLD-}" ]; then
    HOLD=$GPU_REAL_HOLD
else
    HOLD=$W/gpu-hold
    if ! cc -O2 -o "$HOLD" tests/gpu-hold.c -ldl 2>"$W/cc.err"; then
        echo "gpu-real: cannot build tests/gpu-hold.c: $(head -n 3 "$W/cc.err")"
        exit 1
    fi
fi

# The cards as nvidia-smi lists them: IDX[i] UUID[i] TOTAL[i] (MiB) NAME[i].
IDX=() UUID=() TOTAL=() NAME=()
while IFS=, read -r i u t n; do
    IDX+=("$i") UUID+=("${u# }") TOTAL+=("${t# }") NAME+=("${n# }")
done <<<"$CARDS"
N=${#IDX[@]}
echo "gpu-real: $N GPU(s): $(for k in "${!IDX[@]}"; do printf '%s: %s (%s MiB); ' "${IDX[$k]}" "${NAME[$k]}" "${TOTAL[$k]}"; done)"

HELD=0 BROKEN=0
held() { HELD=$((HELD + 1)); echo "held    $1${2:+ ($2)}"; }
broken() { BROKEN=$((BROKEN + 1)); echo "broken  $1${2:+ ($2)}"; }
promise() { if [ "$1" = 0 ]; then held "$2" "$3"; else broken "$2" "$3"; fi; }

# queue NAME [VAR=VALUE...]: a fresh queue for a section (its settings on the command that starts it).
queue() {
    export TS_SOCKET=$W/$1/s
    mkdir -p -m 700 "$W/$1"
    QUEUES+=("$TS_SOCKET")
    shift
    env TS_NVIDIA_SMI="$(command -v "$SMI")" TS_GPU_PROBE_INTERVAL=0.5 "$@" "$TS" -S 4 >/dev/null
}
# until SECONDS CMD...: run CMD every 0.2 s until it succeeds (0) or SECONDS pass (1).
until_ok() {
    local end=$((SECONDS + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}
state() { "$TS" -s "$1" 2>/dev/null; }
running() { [ "$(state "$1")" = running ]; }
# the pids nvidia-smi lists on a card (by UUID)
pids_on() { "$SMI" --query-compute-apps=gpu_uuid,pid --format=csv,noheader,nounits 2>/dev/null | awk -F', *' -v u="$1" '$1 == u { print $2 }'; }
listed() { pids_on "$1" | grep -qx "$2"; }
# the line "holding ... on GPU-... (pid N)" a holder wrote in FILE; its UUID and pid
holding() { grep -m1 '^holding ' "$1" 2>/dev/null; }
uuid_of_hold() { holding "$1" | sed -E 's/^holding [0-9]+ MiB on ([^ ]+) .*/\1/'; }
pid_of_hold() { holding "$1" | sed -E 's/.*\(pid ([0-9]+)\)$/\1/'; }
# the card (UUID) and index -i gives a job
job_uuid() { "$TS" -i "$1" | sed -nE 's/^GPUs: [0-9]+ \(([^)]*)\)$/\1/p'; }
index_of() { local k; for k in "${!UUID[@]}"; do [ "${UUID[$k]}" = "$1" ] && echo "${IDX[$k]}"; done; }
# a foreign process (not a ts job) on card index I holding MIB MiB; its output in FILE
foreign() {
    CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=$1 "$HOLD" "$2" 600 >"$3" 2>&1 </dev/null &
    PIDS+=($!)
}
gpulist_row() { "$TS" --gpu-list | awk -v u="$1" '$2 == u'; }

# ---- the time a probe takes (the two nvidia-smi calls ts makes) ----
t0=$(date +%s%N)
"$SMI" --query-gpu=index,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,compute_mode,mig.mode.current,name \
    --format=csv,noheader,nounits >/dev/null 2>&1
"$SMI" --query-compute-apps=gpu_uuid,pid,used_memory,process_name --format=csv,noheader,nounits >/dev/null 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
promise "$([ $ms -lt 10000 ]; echo $?)" "a probe takes well under TS_GPU_PROBE_TIMEOUT (10 s)" "$ms ms for the two nvidia-smi calls"

# ---- --gpu-list agrees with nvidia-smi's table ----
queue list
t0=$(date +%s%N)
L=$("$TS" --gpu-list 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
bad=""
[ "$(printf '%s\n' "$L" | grep -c '^[0-9]')" = "$N" ] || bad="$bad; $(printf '%s\n' "$L" | grep -c '^[0-9]') rows for $N cards"
for k in "${!IDX[@]}"; do
    row=$(printf '%s\n' "$L" | awk -v u="${UUID[$k]}" '$2 == u')
    [ -n "$row" ] || { bad="$bad; no row for ${UUID[$k]}"; continue; }
    [ "$(awk '{ print $1 }' <<<"$row")" = "${IDX[$k]}" ] || bad="$bad; ${UUID[$k]} has index $(awk '{ print $1 }' <<<"$row"), not ${IDX[$k]}"
    [[ $(awk '{ print $3 }' <<<"$row") == */"${TOTAL[$k]}" ]] || bad="$bad; GPU ${IDX[$k]}: memory $(awk '{ print $3 }' <<<"$row"), not of ${TOTAL[$k]} MiB"
done
grep -q '^Note: .* counts as busy' <<<"$L" && bad="$bad; $(grep -m1 '^Note: .* counts as busy' <<<"$L")"
promise "$([ -z "$bad" ]; echo $?)" "--gpu-list agrees with nvidia-smi (count, indices, UUIDs, memory totals; it shows no names)" \
    "${bad#; }${bad:+; }$N card(s); the first --gpu-list, with its probe, took $ms ms"

# ---- a job's CUDA_VISIBLE_DEVICES / TS_GPUS name the card it was given; its process is a ts job's ----
queue env
"$TS" -G 1 sh -c 'echo "env $CUDA_VISIBLE_DEVICES|${TS_GPUS-unset}|${CUDA_DEVICE_ORDER-unset}"; exec "$0" 256 600' "$HOLD" >/dev/null
if until_ok 60 sh -c '"$1" -s 0 | grep -qx running && grep -q "^holding " "$("$1" -o 0)"' sh "$TS"; then
    out=$("$TS" -o 0)
    line=$(grep -m1 '^env ' "$out")
    given=$(job_uuid 0)
    opened=$(uuid_of_hold "$out")
    cvd=$(sed -E 's/^env ([^|]*)\|.*/\1/' <<<"$line")
    tsg=$(sed -E 's/^env [^|]*\|([^|]*)\|.*/\1/' <<<"$line")
    order=$(sed -E 's/.*\|//' <<<"$line")
    named=$(for k in "${!IDX[@]}"; do [ "${IDX[$k]}" = "$cvd" ] && echo "${UUID[$k]}"; done)
    promise "$([ -n "$given" ] && [ "$named" = "$given" ] && [ "$tsg" = "$cvd" ] && [ "$order" = PCI_BUS_ID ] &&
        [ "$opened" = "$given" ]; echo $?)" "a job's CUDA_VISIBLE_DEVICES and TS_GPUS name the card it was given" \
        "CUDA_VISIBLE_DEVICES=$cvd TS_GPUS=$tsg CUDA_DEVICE_ORDER=$order; -i: $given; nvidia-smi's index $cvd: $named; CUDA opened $opened"
    pid=$(pid_of_hold "$out")
    if until_ok 30 listed "$given" "$pid"; then
        # a row: ID UUID USED/TOTAL MiB UTIL MODE TS-JOBS OTHER-PROCESSES...
        until_ok 10 sh -c '"$1" --gpu-list | awk -v u="$2" '\''$2 == u && $7 == "0"'\'' | grep -q .' sh "$TS" "$given"
        row=$(gpulist_row "$given")
        promise "$([ "$(awk '{ print $7 }' <<<"$row")" = 0 ] && ! grep -qw "$pid" <<<"$(awk '{ $1=$2=$3=$4=$5=$6=$7=""; print }' <<<"$row")"; echo $?)" \
            "the job's own process is on its card in --gpu-list, as a ts job's" "pid $pid; row: $(tr -s ' ' <<<"$row")"
    else
        broken "the job's own process is on its card in --gpu-list, as a ts job's" "nvidia-smi never listed pid $pid on $given"
    fi
else
    broken "a job's CUDA_VISIBLE_DEVICES and TS_GPUS name the card it was given" \
        "job 0 did not start holding within 60 s: $(state 0); $(head -n 3 "$("$TS" -o 0 2>/dev/null)" 2>/dev/null | tr '\n' ' ')"
    broken "the job's own process is on its card in --gpu-list, as a ts job's" "no job ran"
fi
"$TS" -k 0 >/dev/null 2>&1

# ---- a foreign process keeps -G 1 jobs off its card ----
queue foreign
foreign "${IDX[0]}" 256 "$W/foreign.out"
fpid=${PIDS[-1]}
if ! until_ok 60 listed "${UUID[0]}" "$fpid"; then
    broken "a process that is not a ts job keeps -G 1 jobs off its card" \
        "the stand-in never showed on GPU ${IDX[0]} in nvidia-smi: $(head -n 2 "$W/foreign.out" | tr '\n' ' ')"
else
    "$TS" -G 1 sh -c 'echo "env $CUDA_VISIBLE_DEVICES"' >/dev/null
    if [ "$N" -gt 1 ]; then
        timeout 60 "$TS" -w 0 >/dev/null 2>&1
        got=$(sed -n 's/^env //p' "$("$TS" -o 0)")
        promise "$([ -n "$got" ] && [ "$got" != "${IDX[0]}" ]; echo $?)" \
            "a process that is not a ts job keeps -G 1 jobs off its card" "its GPU ${IDX[0]}; the job got GPU $got"
    else
        if until_ok 20 sh -c '"$1" -i 0 | grep -q "^Waiting for GPUs: .*GPU $2 has a process that is not a ts job"' sh "$TS" "${IDX[0]}" &&
            [ "$(state 0)" = queued ]; then
            held "a process that is not a ts job keeps a -G 1 job waiting on a one-card machine" \
                "$("$TS" -i 0 | grep '^Waiting for GPUs')"
        else
            broken "a process that is not a ts job keeps a -G 1 job waiting on a one-card machine" \
                "job 0 is $(state 0); $("$TS" -i 0 | grep '^Waiting for GPUs')"
        fi
        kill "$fpid" 2>/dev/null
        t0=$SECONDS
        promise "$(until_ok 30 sh -c '[ "$("$1" -s 0)" = finished ]' sh "$TS"; echo $?)" \
            "once the foreign process ends, the waiting job gets the card" "in about $((SECONDS - t0)) s; job 0 is $(state 0)"
    fi
fi
kill "$fpid" 2>/dev/null

# ---- --gpu-mem packs two small jobs onto one card ----
queue pack TS_GPU_SLOTS=2 TS_VISIBLE_DEVICES="${UUID[0]}"
for j in 0 1; do "$TS" --gpu-mem=1G sh -c 'exec "$0" 512 600' "$HOLD" >/dev/null; done
if until_ok 60 sh -c 'for j in 0 1; do o=$("$1" -o $j) && grep -q "^holding " "$o" || exit 1; done' sh "$TS"; then
    u0=$(uuid_of_hold "$("$TS" -o 0)") u1=$(uuid_of_hold "$("$TS" -o 1)")
    promise "$([ "$(state 0)/$(state 1)" = running/running ] && [ "$u0" = "${UUID[0]}" ] && [ "$u1" = "${UUID[0]}" ]; echo $?)" \
        "--gpu-mem packs two small jobs onto one card (TS_GPU_SLOTS=2)" "both hold 512 MiB at once on $u0 / $u1"
else
    broken "--gpu-mem packs two small jobs onto one card (TS_GPU_SLOTS=2)" \
        "within 60 s: job 0 $(state 0), job 1 $(state 1); $("$TS" -i 1 | grep '^Waiting for GPUs')"
fi
"$TS" -k 0 >/dev/null 2>&1
"$TS" -k 1 >/dev/null 2>&1

# ---- after a job ends, its card is handed out again ----
queue again TS_VISIBLE_DEVICES="${UUID[0]}"
"$TS" -G 1 sh -c 'exec "$0" 256 600' "$HOLD" >/dev/null
"$TS" -G 1 sh -c 'exec "$0" 64 1' "$HOLD" >/dev/null
if until_ok 60 running 0 && until_ok 10 sh -c '"$1" -i 1 | grep -q "^Waiting for GPUs"' sh "$TS"; then
    "$TS" -k 0 >/dev/null
    t0=$SECONDS
    if until_ok 30 sh -c '[ "$("$1" -s 1)" = finished ]' sh "$TS"; then
        u=$(uuid_of_hold "$("$TS" -o 1)")
        promise "$([ "$u" = "${UUID[0]}" ]; echo $?)" "after a job ends, its card is handed out again" \
            "job 1 started within about $((SECONDS - t0)) s of job 0's end, on $u"
    else
        broken "after a job ends, its card is handed out again" "job 1 is $(state 1) 30 s after job 0 was killed"
    fi
else
    broken "after a job ends, its card is handed out again" "job 0 $(state 0); job 1 $(state 1): $("$TS" -i 1 | grep '^Waiting')"
fi

echo "gpu-real: $HELD held, $BROKEN broken ($N GPU(s), $SECONDS s)"
[ "$BROKEN" -eq 0 ]

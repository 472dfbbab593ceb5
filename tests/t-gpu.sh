#!/bin/bash
# GPUs (-G, --gpus, --gpu-mem, --gpu-list; README "GPUs"): the real ts against a real server whose
# nvidia-smi is a fake ($T/bin/nvidia-smi) that answers what the test wrote in $T/smi/: the files gpus
# and apps (the two queries' output), gpus.rc and apps.rc (their exit status), hang (while it exists the
# fake hangs). Every call is logged in $T/smi.log (one line per call, so a probe is two lines). The server
# settings go on the command that starts each section's server (gpu_server), never in this shell's
# environment, so they must stick without being sent again. ts-only: task-spooler has no GPUs.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no GPU scheduling"
unset TS_GPU_SLOTS TS_GPU_FOREIGN TS_GPU_MIN_FREE TS_GPU_SETTLE TS_VISIBLE_DEVICES TS_GPU_HIDE TS_NVIDIA_SMI \
    TS_GPU_SYSFS TS_GPU_PROBE_INTERVAL TS_GPU_PROBE_TIMEOUT CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER TS_GPUS \
    HIP_VISIBLE_DEVICES ROCR_VISIBLE_DEVICES

SMI=$T/smi
mkdir -p "$SMI"
QGPU="--query-gpu=index,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,compute_mode,mig.mode.current,name --format=csv,noheader,nounits"
QAPPS="--query-compute-apps=gpu_uuid,pid,used_memory,process_name --format=csv,noheader,nounits"
cat >"$T/bin/nvidia-smi" <<EOF
#!/bin/sh
# The fake nvidia-smi: logs the call, answers from $SMI.
echo "\$*" >>"$T/smi.log"
case "\$*" in
"$QGPU") k=gpus ;;
"$QAPPS") k=apps ;;
*) echo "fake nvidia-smi: unexpected arguments: \$*"; exit 2 ;;
esac
i=0
[ -e "$SMI/hang" ] && echo \$\$ >"$SMI/hung.pid"
while [ -e "$SMI/hang" ] && [ -d "$T" ] && [ "\$i" -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done
cat "$SMI/\$k" 2>/dev/null
exit "\$(cat "$SMI/\$k.rc" 2>/dev/null || echo 0)"
EOF
chmod 755 "$T/bin/nvidia-smi"
: >"$T/smi.log"

U0=GPU-0a0a0a0a-0000-4000-8000-00000000000a
U1=GPU-1b1b1b1b-1111-4111-8111-11111111111b
# card INDEX UUID [TOTAL_MIB [USED_MIB [MODE [MIG]]]]: one --query-gpu line.
card() {
    printf '%s, %s, 00000000:%02X:00.0, %s, %s, 0, %s, %s, NVIDIA H100 80GB HBM3\n' "$1" "$2" $((0x17 + $1 * 0x4e)) \
        "${3:-81559}" "${4:-0}" "${5:-Default}" "${6:-Disabled}"
}
# put NAME: the fake's file NAME gets stdin (replaced at once: the fake never reads half of it).
put() { cat >"$SMI/.new" && mv -f "$SMI/.new" "$SMI/$1"; }
two_cards() { { card 0 $U0; card 1 $U1; } | put gpus; }
one_card() { card 0 $U0 | put gpus; }
smi_reset() {
    rm -f "$SMI/hang" "$SMI/hung.pid" "$SMI/gpus.rc" "$SMI/apps.rc"
    two_cards
    put apps </dev/null
}
calls() { wc -l <"$T/smi.log"; }

# A process that is not a ts job, to list as a compute process (ends by itself when $T goes).
"$T/bin/waitfor" never-foreign </dev/null >/dev/null 2>&1 &
FOREIGN=$!
extra_cleanup() {
    kill "$FOREIGN" 2>/dev/null
    rm -f "$SMI/hang"
}

# gpu_server [VAR=VALUE...]: stop the server, start a fresh one (-S 1) with the fake and fast probes, plus
# these settings. The settings are kept in SRV for the commands that start the server again.
gpu_server() {
    "$TS" -K >/dev/null 2>&1
    smi_reset
    SRV=(TS_NVIDIA_SMI="$T/bin/nvidia-smi" TS_GPU_SYSFS= TS_GPU_PROBE_INTERVAL=0.2 TS_GPU_PROBE_TIMEOUT=1
        TS_GPU_SETTLE=0 "$@")
    check "server with ${*:-the defaults}" 0 '' '' -- env "${SRV[@]}" "$TS" -S 1
}

# wait_probes N DESC: wait until the fake has been called N more times (N/2 probes); one case.
wait_probes() {
    local want=$(( $(calls) + $1 )) start
    start=$(date +%s)
    while [ "$(calls)" -lt "$want" ]; do
        if [ $(( $(date +%s) - start )) -ge 10 ]; then
            fail "$2" "timed out: the fake was called $(calls) times, not $want"
            return 1
        fi
        sleep 0.05
    done
    pass "$2"
}

# wait_info ID TEXT [DEADLINE]: poll -i ID until its output contains TEXT; one case.
wait_info() {
    local id=$1 want=$2 deadline=${3:-10} out start desc
    desc=$(printf '%s' "$want" | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
    start=$(date +%s)
    while :; do
        out=$("$TS" -i "$id" 2>&1 </dev/null)
        if [[ $out == *"$want"* ]]; then
            pass "-i $id shows: $desc"
            return 0
        fi
        if [ $(( $(date +%s) - start )) -ge "$deadline" ]; then
            fail "-i $id shows: $desc" "timed out; last -i:" "$out"
            return 1
        fi
        sleep 0.05
    done
}

# sees TEXT DESC: poll --gpu-list (which probes when its last look is old) until it shows TEXT; one case.
# For a change of the fake made while no GPU job waits (the server then has no reason to probe).
sees() { eventually "$2" -- sh -c '"$TS" --gpu-list | grep -qF -- "$1"' sh "$1"; }

# has TEXT SUBSTRING DESC / hasnt TEXT SUBSTRING DESC
has() { if [[ $1 == *"$2"* ]]; then pass "$3"; else fail "$3" "wanted: $2" "in: $1"; fi; }
hasnt() { if [[ $1 != *"$2"* ]]; then pass "$3"; else fail "$3" "unwanted: $2" "in: $1"; fi; }
# info_line ID PREFIX: the line of -i ID that starts with PREFIX.
info_line() { "$TS" -i "$1" 2>&1 | grep -- "^$2" | head -n 1; }
# out_of ID: the job's output (after it ended).
out_of() { cat "$("$TS" -o "$1")"; }
# now: seconds, with fractions.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# ge A B: A >= B (decimals)
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
# The GPU variables of a job, as one line.
E='echo "${CUDA_VISIBLE_DEVICES-unset}|${CUDA_DEVICE_ORDER-unset}|${TS_GPUS-unset}"'

# ---- options: bad values are refused by the client, nothing is queued --------------------------------
gpu_server
for a in x -1 65 1.5 2x ''; do
    check "-G '$a' is refused" 255 '' "-G needs a number of GPUs from 0 to 64, not '$a'."$'\n' -- "$TS" -G "$a" true
done
check "--gpus=x is refused" 255 '' $'--gpus needs a number of GPUs from 0 to 64, not \'x\'.\n' -- "$TS" --gpus=x true
check "--gpu-mem=8Q is refused" 255 '' \
    $'--gpu-mem needs a size from 1M to 1024T, such as 8G or 512M, not \'8Q\'.\n' -- "$TS" --gpu-mem=8Q true
check "--gpu-mem=0 is refused" 255 '' \
    $'--gpu-mem needs a size from 1M to 1024T, such as 8G or 512M, not \'0\'.\n' -- "$TS" --gpu-mem=0 true
check "nothing was queued" 0 "$(HDR 0 1)"$'\n' '' -- "$TS" -l
is "$(calls)" 0 "the refusals asked nothing of nvidia-smi"

# ---- two cards, -S 1: two -G 1 jobs and a CPU job run at once, with their environments -----------------
export CUDA_VISIBLE_DEVICES=keep7
check "job 0: -G 1" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor g0"
check "job 1: --gpus=1" 0 $'1\n' '' -- "$TS" --gpus=1 sh -c "$E; exec waitfor g1"
check "job 2: a CPU job" 0 $'2\n' '' -- "$TS" sh -c "$E; exec waitfor g2"
unset CUDA_VISIBLE_DEVICES
wait_running 0
wait_running 1
wait_running 2
is "$(sed -n 1p "$T/smi.log")" "$QGPU" "the cards are asked for with the documented query"
is "$(sed -n 2p "$T/smi.log")" "$QAPPS" "then the processes"
check_norm "-l: all three run, the header counts the slot only, no new column" 0 "$(HDR 1 1
LQ 0 running OUT "sh -c $E; exec waitfor g0"
LQ 1 running OUT "sh -c $E; exec waitfor g1"
LQ 2 running OUT "sh -c $E; exec waitfor g2")
" '' -- "$TS" -l
is "$(info_line 0 GPU)" "GPUs required: 1" "-i 0: GPUs required: 1"
is "$("$TS" -i 0 | grep '^GPUs:')" "GPUs: 0 ($U0)" "-i 0: GPUs: 0 (its UUID)"
is "$("$TS" -i 1 | grep '^GPUs:')" "GPUs: 1 ($U1)" "-i 1: GPUs: 1 (its UUID)"
is "$(info_line 0 'Slots required')" "Slots required: 0" "-i 0: a GPU job takes no slot"
run_cmd "$TS" -i 2
hasnt "$OUT" $'\nGPU' "-i of the CPU job has no GPU line"
has "$OUT" $'Slots required: 1\n' "-i of the CPU job: Slots required: 1"
run_cmd "$TS" --gpu-list
is "$RC" 0 "--gpu-list: rc 0"
is "$(printf '%s' "$OUT" | sed -E 's/, [0-9.]+ s ago\)/, N s ago)/')" \
"GPUs (nvidia-smi, N s ago): 1 job per GPU; a process that is not a ts job makes a GPU busy.
$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' ID UUID 'MEMORY USED/TOTAL' UTIL MODE 'TS JOBS' 'OTHER PROCESSES')
$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 0 $U0 '0/81559 MiB' 0% Default 0 -)
$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 1 $U1 '0/81559 MiB' 0% Default 1 -)" \
    "--gpu-list: the cards, their ts jobs"
release g2
check "-w 2" 0 '' '' -- "$TS" -w 2
check "job 3: --gpus 1 (both cards taken)" 0 $'3\n' '' -- "$TS" --gpus 1 sh -c "$E"
wait_probes 4 "two probes while job 3 waits"
check "job 3 waits" 0 $'queued\n' '' -- "$TS" -s 3
wait_info 3 \
    $'\nWaiting for GPUs: no GPU is free (GPU 0 has 1 ts job, as many as it takes; GPU 1 has 1 ts job, as many as it takes)\n'

release g0
check "-w 0" 0 '' '' -- "$TS" -w 0
check "-w 3: job 3 got card 0 when job 0 ended" 0 '' '' -- "$TS" -w 3
is "$(info_line 3 'GPUs:')" "GPUs: 0 ($U0)" "-i 3 after its end: GPUs: 0"
release g1
check "-w 1" 0 '' '' -- "$TS" -w 1
is "$(out_of 0)" "0|PCI_BUS_ID|0" "job 0: CUDA_VISIBLE_DEVICES=0 (the submitter's value replaced), CUDA_DEVICE_ORDER, TS_GPUS"
is "$(out_of 1)" "1|PCI_BUS_ID|1" "job 1: card 1"
is "$(out_of 2)" "keep7|unset|unset" "the CPU job's environment is untouched"
is "$(out_of 3)" "0|PCI_BUS_ID|0" "job 3: card 0"
check "job 4: -G 0 is a CPU job" 0 $'4\n' '' -- env CUDA_VISIBLE_DEVICES=keep8 "$TS" -G 0 sh -c "$E"
check "-w 4" 0 '' '' -- "$TS" -w 4
is "$(out_of 4)" "keep8|unset|unset" "-G 0: environment untouched"
run_cmd "$TS" -i 4
hasnt "$OUT" $'\nGPU' "-i of the -G 0 job has no GPU line"
check "job 5: -f -G 2 (run by the client)" 0 $'5\n' '' -- "$TS" -f -G 2 sh -c "$E"
is "$(out_of 5)" "0,1|PCI_BUS_ID|0,1" "job 5 got both cards"
check "a client's TS_GPU_SLOTS does not change the server's" 0 '' '' -- env TS_GPU_SLOTS=5 "$TS" -S 1
has "$("$TS" --gpu-list)" ": 1 job per GPU;" "--gpu-list still says 1 job per GPU"

# ---- -G with -N takes slots too ----
check "job 6: a CPU job holds the slot" 0 $'6\n' '' -- "$TS" waitfor n6
wait_running 6
check "job 7: -G 1 -N 1 needs the slot" 0 $'7\n' '' -- "$TS" -G 1 -N 1 true
check "job 8: -G 1 needs none" 0 $'8\n' '' -- "$TS" -G 1 true
check "-w 8" 0 '' '' -- "$TS" -w 8
check "job 7 still waits for its slot" 0 $'queued\n' '' -- "$TS" -s 7
is "$(info_line 7 'Slots required')" "Slots required: 1" "-i 7: Slots required: 1"
release n6
check "-w 7" 0 '' '' -- "$TS" -w 7

# ---- TS_GPU_HIDE=1 ----
gpu_server TS_GPU_HIDE=1
check "job 0 without -G" 0 $'0\n' '' -- env CUDA_VISIBLE_DEVICES=keep7 "$TS" sh -c \
    'echo "$CUDA_VISIBLE_DEVICES|$HIP_VISIBLE_DEVICES|$ROCR_VISIBLE_DEVICES|${TS_GPUS-unset}"'
check "job 1: -G 1" 0 $'1\n' '' -- env CUDA_VISIBLE_DEVICES=keep7 "$TS" -G 1 sh -c "$E"
check "job 2: -G 0" 0 $'2\n' '' -- "$TS" -G 0 sh -c "$E"
for i in 0 1 2; do "$TS" -w $i; done
is "$(out_of 0)" "-1|-1|-1|" "hidden: CUDA/HIP/ROCR_VISIBLE_DEVICES=-1, TS_GPUS empty"
is "$(out_of 1)" "0|PCI_BUS_ID|0" "the -G 1 job sees its card"
is "$(out_of 2)" "-1|unset|" "-G 0 is hidden too"
check "job 3: -f without -G" 0 $'3\n' '' -- "$TS" -f sh -c 'echo "$CUDA_VISIBLE_DEVICES"'
is "$(out_of 3)" "-1" "-f without -G is hidden too"

# ---- refusals at submit ----
gpu_server
run_cmd "$TS" -G 3 true
is "$RC/$OUT" "255/" "-G 3 on 2 cards: rc 255"
is "$ERR" $'Error in the request: the job needs 3 GPUs, and this machine has 2 that ts may use; the job was not queued (see ts --gpu-list).\n' \
    "-G 3: says how many there are, and --gpu-list"
run_cmd "$TS" --gpu-mem=100G true
is "$RC" 255 "--gpu-mem=100G on 80 GB cards: rc 255"
has "$ERR" "none of this machine's have that much memory" "--gpu-mem=100G: says none has that much"
has "$ERR" "--gpu-list" "--gpu-mem=100G: names --gpu-list"
check "nothing was queued" 0 "$(HDR 0 1)"$'\n' '' -- "$TS" -l
check "-G 2 is fine" 0 $'0\n' '' -- "$TS" -G 2 true
check "-w 0" 0 '' '' -- "$TS" -w 0

gpu_server TS_NVIDIA_SMI="$T/no-such/nvidia-smi"
run_cmd "$TS" -G 1 true
is "$RC/$OUT" "255/" "no nvidia-smi: -G 1 refused, rc 255"
is "$ERR" "Error in the request: the job needs 1 GPU, and this machine has none that ts may use ($T/no-such/nvidia-smi was not found; TS_NVIDIA_SMI names it); the job was not queued (see ts --gpu-list)."$'\n' \
    "no nvidia-smi: says it was not found"
check "no nvidia-smi: a CPU job runs" 0 $'0\n' '' -- "$TS" true
check "-w 0" 0 '' '' -- "$TS" -w 0
check_norm "no nvidia-smi: the list has the CPU job only" 0 "$(HDR 0 1
LF 0 OUT 0 true)
" '' -- "$TS" -l
run_cmd "$TS" --gpu-list
is "$RC" 0 "no nvidia-smi: --gpu-list rc 0"
has "$OUT" "No GPU found ($T/no-such/nvidia-smi was not found; TS_NVIDIA_SMI names it)." \
    "no nvidia-smi: --gpu-list says so"

# ---- a CPU job never waits for a GPU ----
gpu_server
check "job 0: -G 2 takes both cards" 0 $'0\n' '' -- "$TS" -G 2 waitfor c0
wait_running 0
check "job 1: -G 1 waits" 0 $'1\n' '' -- "$TS" -G 1 true
check "job 2: -G 2 waits" 0 $'2\n' '' -- "$TS" -G 2 true
check "job 3: a CPU job after them" 0 $'3\n' '' -- "$TS" true
check "-w 3: it ran at once" 0 '' '' -- "$TS" -w 3
check "job 1 still waits" 0 $'queued\n' '' -- "$TS" -s 1
release c0
for i in 0 1 2; do check "-w $i" 0 '' '' -- "$TS" -w $i; done

# Under valgrind (make check-valgrind) the server is slow, and what follows is timing: it is left to the
# other passes (the sections above run the probe, the allocation and the environment under memcheck).
if [ -n "${TS_VALGRIND-}" ]; then
    echo "# server under valgrind: the sections after 'a CPU job never waits' are left to the other passes"
    done_testing
    exit 0
fi

# ---- packing: TS_GPU_SLOTS, --gpu-mem, compute modes ----
gpu_server TS_GPU_SLOTS=2
one_card
check "job 0 on the one card" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor p"
check "job 1 shares it (TS_GPU_SLOTS=2)" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor p"
check "job 2" 0 $'2\n' '' -- "$TS" -G 1 true
wait_running 0
wait_running 1
wait_probes 4 "two probes while job 2 waits"
check "job 2: a third waits" 0 $'queued\n' '' -- "$TS" -s 2
wait_info 2 $'\nWaiting for GPUs: no GPU is free (GPU 0 has 2 ts jobs, as many as it takes)\n'
has "$("$TS" --gpu-list)" "$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 0 $U0 '0/81559 MiB' 0% Default 0,1 -)" \
    "--gpu-list: jobs 0,1 on card 0; 2 jobs per GPU"
release p
for i in 0 1 2; do check "-w $i" 0 '' '' -- "$TS" -w $i; done
is "$(out_of 0)/$(out_of 1)" "0|PCI_BUS_ID|0/0|PCI_BUS_ID|0" "both on card 0"

gpu_server TS_GPU_SLOTS=8
card 0 $U0 10240 | put gpus
run_cmd "$TS" --gpu-mem=11G true
is "$RC" 255 "--gpu-mem=11G on a 10 GiB card: refused"
check "job 0: --gpu-mem=4G" 0 $'0\n' '' -- "$TS" --gpu-mem=4G waitfor m
check "job 1: --gpu-mem=4096 (MiB)" 0 $'1\n' '' -- "$TS" --gpu-mem=4096 waitfor m
check "job 2: --gpu-mem=4G does not fit" 0 $'2\n' '' -- "$TS" --gpu-mem=4G true
check "job 3: --gpu-mem=2048M fits" 0 $'3\n' '' -- "$TS" --gpu-mem=2048M waitfor m
wait_running 0
wait_running 1
wait_running 3
has "$(info_line 0 'GPUs required')" "GPUs required: 1 (" "-i 0: --gpu-mem implies -G 1 and is shown"
check "job 2 waits" 0 $'queued\n' '' -- "$TS" -s 2
wait_info 2 "(GPU 0 has 0 B of its 10 GiB not claimed)"
release m
for i in 0 1 3 2; do check "-w $i" 0 '' '' -- "$TS" -w $i; done

gpu_server TS_GPU_SLOTS=2
{ card 0 $U0 81559 0 Exclusive_Process; card 1 $U1 81559 0 Prohibited; } | put gpus
check "job 0: Exclusive_Process card" 0 $'0\n' '' -- "$TS" -G 1 waitfor x
check "job 1" 0 $'1\n' '' -- "$TS" -G 1 true
wait_running 0
wait_probes 4 "two probes while job 1 waits"
check "job 1 waits: an Exclusive_Process card takes one job, a Prohibited one none" 0 $'queued\n' '' -- "$TS" -s 1
run_cmd "$TS" -G 2 true
is "$RC" 255 "-G 2 with one usable card: refused"
has "$ERR" "the job needs 2 GPUs, and this machine has 1 that ts may use" "-G 2: the usable count"
run_cmd "$TS" --gpu-list
has "$OUT" "$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 1 $U1 '0/81559 MiB' 0% Prohibited - -)" "--gpu-list: Prohibited"
has "$OUT" "Note: GPU 1 is in the Prohibited compute mode: not used." "--gpu-list: a note for it"
release x
check "-w 1" 0 '' '' -- "$TS" -w 1
{ card 0 $U0 81559 0 Default Enabled; card 1 $U1 81559 0 Prohibited; } | put gpus
eventually "--gpu-list sees MIG" -- sh -c '"$TS" --gpu-list | grep -q "GPU 0 is in MIG mode"'
run_cmd "$TS" -G 1 true
is "$RC" 255 "-G 1 with MIG on the only other card: refused"
has "$ERR" "has none that ts may use" "MIG: none usable"

# ---- foreign processes ----
gpu_server
printf '%s, %s, 2048, python\n' $U0 $FOREIGN | put apps
check "job 0: card 0 has a foreign process" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E"
check "-w 0" 0 '' '' -- "$TS" -w 0
is "$(out_of 0)" "1|PCI_BUS_ID|1" "job 0 went to card 1"
has "$("$TS" --gpu-list)" "$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 0 $U0 '0/81559 MiB' 0% Default - "$FOREIGN python (2048 MiB)")" \
    "--gpu-list: the foreign process"
one_card
eventually "the server sees one card" -- sh -c '! "$TS" --gpu-list | grep -qF "$1"' sh "$U1"
check "job 1: only card 0, busy" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E"
wait_probes 4 "two probes while job 1 waits"
check "job 1 waits" 0 $'queued\n' '' -- "$TS" -s 1
wait_info 1 $'\nWaiting for GPUs: no GPU is free (GPU 0 has a process that is not a ts job)\n'
put apps </dev/null
t0=$(now)
check "-w 1: it starts once the process is gone" 0 '' '' -- timeout 10 "$TS" -w 1
t1=$(now)
ok "$(ge 1.5 "$(elapsed "$t0" "$t1")"; echo $?)" "within $(elapsed "$t0" "$t1") s (<= 1.5, a few probe intervals)"
is "$(out_of 1)" "0|PCI_BUS_ID|0" "job 1 on card 0"

# ---- what nvidia-smi cannot tell counts against the card ----
# (in containers and some driver states nvidia-smi lists a process with pid [N/A]: it is no less there)
gpu_server
one_card
nlog=$(grep -c . "$TS_SOCKET.error" 2>/dev/null)
printf '%s, [N/A], 61440, python\n' $U0 | put apps
check "job 0: -G 1; card 0 has a 60 GiB process with pid [N/A]" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E"
wait_probes 4 "two probes while job 0 waits"
check "job 0 waits" 0 $'queued\n' '' -- "$TS" -s 0
wait_info 0 $'\nWaiting for GPUs: no GPU is free (GPU 0 has a process ts cannot read (pid: [N/A]; 60 GiB; python))\n'
run_cmd "$TS" --gpu-list
has "$OUT" "$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 0 $U0 '0/81559 MiB' 0% Default - "? python (61440 MiB)")" \
    "--gpu-list: the process, its pid unknown"
has "$OUT" "Note: GPU 0 has a process ts cannot read (pid: [N/A]; 60 GiB; python): it counts as busy." \
    "--gpu-list: why card 0 is busy"
wait_probes 4 "two more probes"
is "$(tail -n +$((nlog + 1)) "$TS_SOCKET.error" | grep -c 'GPU 0 has a process ts cannot read')" 1 \
    "logged once, not once a probe"
put apps </dev/null
card 0 $U0 81559 '[N/A]' | put gpus
wait_info 0 "Waiting for GPUs: no GPU is free (GPU 0 cannot be read (memory.used: [N/A]))"
printf 'GPU-ffffffff-0000-4000-8000-00000000000f, 1, 10, x\nnot a process line\n' | put apps
one_card
wait_info 0 "Waiting for GPUs: no GPU is free (GPU 0 has a process ts cannot read (line 2: not a process line))"
put apps </dev/null
check "-w 0: it runs once everything about the card can be read" 0 '' '' -- timeout 10 "$TS" -w 0
is "$(out_of 0)" "0|PCI_BUS_ID|0" "job 0 on card 0"
eventually "the log says so" -- sh -c 'tail -n +$1 "$TS_SOCKET.error" | grep -q "GPU 0 can be read again"' sh $((nlog + 1))
# A line of the card listing that is no card (a card the driver cannot reach): that card is never used,
# and -i, --gpu-list and the log (once) say so.
bad="Unable to determine the device handle for GPU 0000:65:00.0: Unknown Error"
{ card 0 $U0; echo "$bad"; } | put gpus
printf '%s, %s, 100, Xorg\n' $U0 $FOREIGN | put apps
nlog=$(grep -c . "$TS_SOCKET.error" 2>/dev/null)
check "job 1: -G 1; card 0 busy, and a line that is no card" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E"
wait_info 1 "(and nvidia-smi listed what ts cannot read: nvidia-smi: line 2 left out (not a card): $bad)"
run_cmd "$TS" --gpu-list
has "$OUT" "Note: nvidia-smi: line 2 left out (not a card): $bad: what it names is not used." \
    "--gpu-list: the line ts cannot read"
wait_probes 4 "two more probes"
is "$(tail -n +$((nlog + 1)) "$TS_SOCKET.error" | grep -c 'line 2 left out (not a card)')" 1 \
    "logged once, not once a probe"
one_card
put apps </dev/null
check "-w 1: it runs on card 0 once it is free" 0 '' '' -- timeout 10 "$TS" -w 1
# A card whose memory cannot be read may be the one a --gpu-mem job needs: the job waits, not refused.
card 0 $U0 '[N/A]' | put gpus
eventually "the server sees card 0's memory as unreadable" -- sh -c '"$TS" --gpu-list | grep -q "memory.total: \[N/A\]"'
check "job 2: --gpu-mem=2G while card 0's memory cannot be read: queued" 0 $'2\n' '' -- "$TS" --gpu-mem=2G sh -c "$E"
one_card
check "-w 2: it runs once card 0 can be read" 0 '' '' -- timeout 10 "$TS" -w 2

gpu_server TS_GPU_SLOTS=2
check "job 0: a job whose child uses the card" 0 $'0\n' '' -- "$TS" -G 1 sh -c "waitfor o & echo \$! >'$T/child'; wait"
wait_running 0
eventually "its child's pid is known" -- test -s "$T/child"
is "$("$TS" -i 0 | grep '^GPUs:')" "GPUs: 0 ($U0)" "job 0 is on card 0"
{
    printf '%s, %s, 4096, python\n' $U0 "$(cat "$T/child")" $U0 "$("$TS" -p 0)"
    printf '%s, %s, 100, Xorg\n' $U1 $FOREIGN
} | put apps
sees "$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 1 $U1 '0/81559 MiB' 0% Default - "$FOREIGN Xorg (100 MiB)")" \
    "the server sees the processes (a foreign one on card 1)"
check "job 1: the job's own processes are not foreign" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E"
check "-w 1" 0 '' '' -- timeout 10 "$TS" -w 1
is "$(out_of 1)" "0|PCI_BUS_ID|0" "job 1 shared card 0 with job 0"
run_cmd "$TS" --gpu-list
has "$OUT" "$(printf '%-3s %-40s %-18s %-5s %-10s %-8s %s' 0 $U0 '0/81559 MiB' 0% Default 0 -)" \
    "--gpu-list: no other process on card 0"
release o
check "-w 0" 0 '' '' -- "$TS" -w 0

gpu_server TS_GPU_FOREIGN=memory
{ card 0 $U0 81559 81047; card 1 $U1 81559 80000; } | put gpus   # 512 MiB and 1559 MiB free
printf '%s, %s, %s, python\n' $U0 $FOREIGN 81047 $U1 $FOREIGN 80000 | put apps
check "job 0: memory policy, 512 MiB free on 0, 1.5 GiB on 1" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E"
check "-w 0" 0 '' '' -- timeout 10 "$TS" -w 0
is "$(out_of 0)" "1|PCI_BUS_ID|1" "job 0 went to card 1 (1 GiB free needed)"
check "job 1: --gpu-mem=2G fits on neither" 0 $'1\n' '' -- "$TS" --gpu-mem=2G sh -c "$E"
wait_probes 4 "two probes while job 1 waits"
check "job 1 waits" 0 $'queued\n' '' -- "$TS" -s 1
{ card 0 $U0 81559 78000; card 1 $U1 81559 80000; } | put gpus   # 3559 MiB free on 0
printf '%s, %s, %s, python\n' $U0 $FOREIGN 78000 $U1 $FOREIGN 80000 | put apps
check "-w 1: it starts once card 0 has room" 0 '' '' -- timeout 10 "$TS" -w 1
is "$(out_of 1)" "0|PCI_BUS_ID|0" "job 1 on card 0, beside the foreign process"
has "$("$TS" --gpu-list)" "a GPU is judged by its free memory" "--gpu-list names the memory policy"

gpu_server TS_GPU_FOREIGN=memory TS_GPU_MIN_FREE=2G
{ card 0 $U0 81559 80000; } | put gpus
printf '%s, %s, 80000, python\n' $U0 $FOREIGN | put apps
check "job 0: TS_GPU_MIN_FREE=2G, 1.5 GiB free" 0 $'0\n' '' -- "$TS" -G 1 true
wait_probes 4 "two probes while job 0 waits"
check "job 0 waits" 0 $'queued\n' '' -- "$TS" -s 0
wait_info 0 "free (a job without --gpu-mem needs 2"
{ card 0 $U0 81559 79000; } | put gpus
printf '%s, %s, 79000, python\n' $U0 $FOREIGN | put apps   # its process freed 1000 MiB
check "-w 0: it starts with 2.5 GiB free" 0 '' '' -- timeout 10 "$TS" -w 0

# ---- settling: measured memory is not trusted for TS_GPU_SETTLE s after a start ----
gpu_server TS_GPU_FOREIGN=memory TS_GPU_SLOTS=3 TS_GPU_SETTLE=2
one_card
check "job 0" 0 $'0\n' '' -- "$TS" -G 1 waitfor st
wait_running 0
t0=$(now)
check "job 1: without --gpu-mem" 0 $'1\n' '' -- "$TS" -G 1 waitfor st
check "job 2: --gpu-mem=1G goes by the declarations" 0 $'2\n' '' -- "$TS" --gpu-mem=1G waitfor st
wait_running 2
check "job 1 waits while the card settles" 0 $'queued\n' '' -- "$TS" -s 1
wait_info 1 "Waiting for GPUs: no GPU is free (GPU 0 is settling (a job started on it" 2
wait_running 1
t1=$(now)
ok "$(ge "$(elapsed "$t0" "$t1")" 1.5; echo $?)" "job 1 started $(elapsed "$t0" "$t1") s after job 0 (>= 1.5)"
ok "$(ge 6 "$(elapsed "$t0" "$t1")"; echo $?)" "and not much later (<= 6)"
release st
for i in 0 1 2; do check "-w $i" 0 '' '' -- "$TS" -w $i; done

# ---- TS_VISIBLE_DEVICES ----
gpu_server TS_VISIBLE_DEVICES=1,0
check "job 0 with TS_VISIBLE_DEVICES=1,0" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor v"
check "job 1" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor v"
wait_running 0
wait_running 1
release v
check "-w 0" 0 '' '' -- "$TS" -w 0
check "-w 1" 0 '' '' -- "$TS" -w 1
is "$(out_of 0)/$(out_of 1)" "1|PCI_BUS_ID|1/0|PCI_BUS_ID|0" "card 1 first, then card 0"

gpu_server TS_VISIBLE_DEVICES=$U1
run_cmd "$TS" -G 2 true
is "$RC" 255 "TS_VISIBLE_DEVICES=<uuid of 1>: -G 2 refused"
has "$ERR" "the job needs 2 GPUs, and this machine has 1 that ts may use" "-G 2: one usable"
check "job 0" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor w"
check "job 1" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E"
wait_running 0
wait_probes 4 "two probes while job 1 waits"
check "job 1 waits: card 0 is not used" 0 $'queued\n' '' -- "$TS" -s 1
has "$("$TS" --gpu-list)" "Note: GPU 0 is not in TS_VISIBLE_DEVICES: not used." "--gpu-list: card 0 not used"
release w
check "-w 1" 0 '' '' -- "$TS" -w 1
is "$(out_of 0)/$(out_of 1)" "1|PCI_BUS_ID|1/1|PCI_BUS_ID|1" "both on card 1"

"$TS" -K
for v in 0,,1 foo MIG-0a0a0a0a; do
    run_cmd env "${SRV[@]}" TS_VISIBLE_DEVICES="$v" "$TS" -l
    is "$RC/$OUT" "255/" "TS_VISIBLE_DEVICES=$v: the server does not start (rc 255)"
    has "$ERR" "TS_VISIBLE_DEVICES=$v: " "TS_VISIBLE_DEVICES=$v: the client says why"
    eventually "TS_VISIBLE_DEVICES=$v: no server runs (the refused one is gone)" -- no_server
done

# ---- a job that needs several GPUs reserves those that free up ----
gpu_server
check "job 0: -G 1 on card 0" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor r0"
wait_running 0
check "job 1: -G 2" 0 $'1\n' '' -- "$TS" -G 2 sh -c "$E; exec waitfor r1"
check "job 2: -G 1" 0 $'2\n' '' -- "$TS" -G 1 sh -c "$E"
wait_probes 4 "two probes while jobs 1 and 2 wait"
check "job 2 does not take card 1" 0 $'queued\n' '' -- "$TS" -s 2
wait_info 2 \
    $'\nWaiting for GPUs: no GPU is free (GPU 0 has 1 ts job, as many as it takes; GPU 1 is kept for an earlier job that needs several GPUs)\n'
wait_info 1 $'\nWaiting for GPUs: 1 of the 2 GPUs it needs is free (GPU 0 has 1 ts job, as many as it takes)\n'
release r0
wait_running 1
check "job 2 still waits" 0 $'queued\n' '' -- "$TS" -s 2
release r1
check "-w 2" 0 '' '' -- "$TS" -w 2
is "$(out_of 1)" "0,1|PCI_BUS_ID|0,1" "job 1 had both cards"
is "$(out_of 2)" "0|PCI_BUS_ID|0" "job 2 then card 0"

# ---- the probe fails or hangs: GPU jobs wait, the rest goes on ----
gpu_server
one_card
fail_with() {   # fail_with CODE MESSAGE: the card query exits CODE, printing MESSAGE
    printf '%s\n' "$2" | put gpus
    echo "$1" | put gpus.rc
}
fail_with 9 "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver (fake 9)."
check "job 0: -G 1 while nvidia-smi fails" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E"
check "job 0 waits" 0 $'queued\n' '' -- "$TS" -s 0
wait_info 0 "fake 9)."
is "$(info_line 0 'Waiting for GPUs' | grep -c '^Waiting for GPUs: the GPUs cannot be probed: .*9.*fake 9)\.$')" 1 \
    "-i 0: waiting, because the probe fails (exit 9)"
check "a CPU job runs" 0 $'1\n' '' -- "$TS" true
check "-w 1" 0 '' '' -- "$TS" -w 1
run_cmd "$TS" --gpu-list
is "$RC" 0 "--gpu-list while the probe fails: rc 0"
has "$OUT" "fake 9" "--gpu-list shows the failure"
for c in 12 18; do
    fail_with $c "fake-smi failure $c"
    wait_info 0 "fake-smi failure $c"
done
one_card
echo 0 | put gpus.rc
echo "fake-smi: apps failure" | put apps
echo 15 | put apps.rc
wait_info 0 "fake-smi: apps failure"
rm -f "$SMI/apps.rc"
put apps </dev/null
printf 'this is not\na CSV at all\n' | put gpus
wait_info 0 "cannot be read"
check "job 0 still waits" 0 $'queued\n' '' -- "$TS" -s 0
one_card
check "-w 0: it runs once nvidia-smi answers" 0 '' '' -- timeout 10 "$TS" -w 0
is "$(out_of 0)" "0|PCI_BUS_ID|0" "job 0 on card 0"

check "job 2: -G 1 holds the card" 0 $'2\n' '' -- "$TS" -G 1 waitfor h
wait_running 2
check "job 3: -G 1 waits, so the cards are probed" 0 $'3\n' '' -- "$TS" -G 1 sh -c "$E"
: >"$SMI/hang"
eventually "a probe hangs" -- test -s "$SMI/hung.pid"
hung=$(cat "$SMI/hung.pid")
t0=$(now)
run_cmd "$TS" -l
t1=$(now)
is "$RC" 0 "-l while the probe hangs: rc 0"
ok "$(ge 2 "$(elapsed "$t0" "$t1")"; echo $?)" "-l answered in $(elapsed "$t0" "$t1") s (<= 2)"
t0=$(now)
check "a CPU job runs while the probe hangs" 0 $'4\n' '' -- "$TS" true
check "-w 4" 0 '' '' -- "$TS" -w 4
t1=$(now)
ok "$(ge 2 "$(elapsed "$t0" "$t1")"; echo $?)" "the CPU job was done in $(elapsed "$t0" "$t1") s (<= 2)"
wait_info 3 "Waiting for GPUs: the GPUs cannot be probed: nvidia-smi did not answer within 1 s: killed"
eventually "the hung nvidia-smi was killed" -- sh -c "[ ! -e /proc/$hung ] || grep -q '^[^ ]* ([^)]*) Z' /proc/$hung/stat"
release h
check "-w 2" 0 '' '' -- "$TS" -w 2
wait_probes 2 "the fake is called again"
check "job 3 waits while the probe hangs" 0 $'queued\n' '' -- "$TS" -s 3
rm -f "$SMI/hang"
check "-w 3: it runs once nvidia-smi answers" 0 '' '' -- timeout 10 "$TS" -w 3
is "$(out_of 3)" "0|PCI_BUS_ID|0" "job 3 on card 0"

# ---- --gpu-list after a failed probe: the last table that worked, its real age, and why the last probe failed ----
gpu_server
one_card
sees "$U0" "--gpu-list sees card 0"
fail_with 9 "fake 9 again"
eventually "--gpu-list says the last probe failed" -- sh -c '"$TS" --gpu-list | grep -q "^The last probe of the GPUs failed"'
run_cmd "$TS" --gpu-list
has "$(printf '%s\n' "$OUT" | head -n 1)" "The last probe of the GPUs failed (" "--gpu-list: the failure first"
has "$(printf '%s\n' "$OUT" | head -n 1)" "fake 9 again" "--gpu-list: why it failed"
has "$OUT" "$(printf '%-3s %-40s' 0 $U0)" "--gpu-list: the last table that worked"
failed_ago=$(printf '%s\n' "$OUT" | sed -nE 's/^The last probe of the GPUs failed \(([0-9.]+) s ago\).*/\1/p')
table_ago=$(printf '%s\n' "$OUT" | sed -nE 's/^GPUs \(nvidia-smi, ([0-9.]+) s ago\).*/\1/p')
said_ago=$(printf '%s\n' "$OUT" | sed -nE 's/^What follows is what the last probe that worked saw, ([0-9.]+) s ago\.$/\1/p')
ok "$([ -n "$failed_ago" ] && [ -n "$table_ago" ] && [ "$said_ago" = "$table_ago" ] && ge "$table_ago" 0.2 &&
    ! ge "$failed_ago" "$table_ago"; echo $?)" \
    "the table's age ($table_ago s, said $said_ago s) is its own, older than the failure ($failed_ago s)"
rm -f "$SMI/gpus.rc"
one_card
eventually "once a probe works, --gpu-list no longer says one failed" -- \
    sh -c 'l=$("$TS" --gpu-list) && [ -n "$l" ] && ! printf "%s" "$l" | grep -q "failed"'

# ---- -r and -k of a job waiting for GPUs ----
gpu_server
check "job 0: -G 2" 0 $'0\n' '' -- "$TS" -G 2 waitfor k0
wait_running 0
check "job 1: -G 1 waits" 0 $'1\n' '' -- "$TS" -G 1 true
check "job 2: -G 1 waits" 0 $'2\n' '' -- "$TS" -G 1 true
check "job 3: CPU job waits for the slot" 0 $'3\n' '' -- "$TS" -N 2 true
check "-k of a queued CPU job" 255 '' $'Error in the request: Job 3 not finished or not running.\n' -- "$TS" -k 3
check "-k of a job waiting for GPUs: the same" 255 '' $'Error in the request: Job 1 not finished or not running.\n' -- "$TS" -k 1
check "job 1 still waits" 0 $'queued\n' '' -- "$TS" -s 1
check "-r 1" 0 '' '' -- "$TS" -r 1
check "-r 3" 0 '' '' -- "$TS" -r 3
check_norm "jobs 1 and 3 are gone" 0 "$(HDR 0 1
LQ 0 running OUT 'waitfor k0'
LQ 2 queued '(file)' true)
" '' -- "$TS" -l
check "-k 0: kill the running -G 2 job" 0 '' '' -- "$TS" -k 0
check "-w 0: it was killed" 255 '' '' -- "$TS" -w 0
check "-w 2: job 2 gets a card it freed" 0 '' '' -- timeout 10 "$TS" -w 2
check "job 4: fails" 0 $'4\n' '' -- "$TS" false
check "job 5: -G 1 -d after it" 0 $'5\n' '' -- "$TS" -G 1 -d true
check "-w 5" 255 '' '' -- "$TS" -w 5
check "a GPU job whose dependency failed is skipped" 0 $'skipped\n' '' -- "$TS" -s 5

# ---- restarts keep the cards allocated ----
gpu_server
one_card
check "job 0: -G 1" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor x0"
wait_running 0
check "job 1: -G 1 waits" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor x1"
check "--restart" 0 '' '' -- env "${SRV[@]}" "$TS" --restart
check "job 0 still runs" 0 $'running\n' '' -- "$TS" -s 0
has "$("$TS" -i 0 | grep '^GPUs:')" "$U0" "-i 0 still shows its card"
wait_info 0 $'\nGPUs: 0 ('"$U0"$')\n'
wait_probes 4 "two probes after the restart"
check "job 1 still waits: the card is still job 0's" 0 $'queued\n' '' -- "$TS" -s 1
release x0
check "-w 0" 0 '' '' -- "$TS" -w 0
wait_running 1
check "job 2: -G 1 waits" 0 $'2\n' '' -- "$TS" -G 1 sh -c "$E"
p=$(server_pids | head -n 1)
ok "$([ -n "$p" ] && grep -q '^ts-server' "/proc/$p/comm"; echo $?)" "the server's pid is known ($p)"
kill -KILL "$p"
eventually "the server is gone" -- sh -c "[ ! -e /proc/$p ] || grep -q '^[^ ]* ([^)]*) Z' /proc/$p/stat"
check "a client starts it again: job 1 still runs" 0 $'running\n' '' -- env "${SRV[@]}" "$TS" -s 1
has "$("$TS" -i 1 | grep '^GPUs:')" "$U0" "-i 1 still shows its card"
wait_info 1 $'\nGPUs: 0 ('"$U0"$')\n'
wait_probes 4 "two probes after the crash"
check "job 2 still waits" 0 $'queued\n' '' -- "$TS" -s 2
release x1
check "-w 1" 0 '' '' -- "$TS" -w 1
check "-w 2" 0 '' '' -- timeout 10 "$TS" -w 2
is "$(out_of 1)/$(out_of 2)" "0|PCI_BUS_ID|0/0|PCI_BUS_ID|0" "jobs 1 and 2 had card 0"

# ---- probes cost per interval, not per job; none while no GPU job waits ----
gpu_server
one_card
N=200
[ -n "${TS_TEST_LIGHT-}" ] && N=40
check "job 0 holds the card" 0 $'0\n' '' -- "$TS" -G 1 waitfor z
wait_running 0
c0=$(calls)
t0=$(now)
for i in $(seq 1 $N); do "$TS" -G 1 true >/dev/null; done
c1=$(calls)
t1=$(now)
s=$(elapsed "$t0" "$t1")
max=$(awk -v s="$s" 'BEGIN { printf "%d", 2 * (s / 0.2 + 3) }')
ok "$([ $((c1 - c0)) -le "$max" ]; echo $?)" "$N GPU submits in $s s: $((c1 - c0)) nvidia-smi calls (<= $max)"
c1=$(calls)
t1=$(now)
sleep 1   # a measurement, not a synchronisation
c2=$(calls)
t2=$(now)
s=$(elapsed "$t1" "$t2")
max=$(awk -v s="$s" 'BEGIN { printf "%d", 2 * (s / 0.2 + 2) }')
ok "$([ $((c2 - c1)) -ge 2 ] && [ $((c2 - c1)) -le "$max" ]; echo $?)" \
    "$N GPU jobs waiting, $s s: $((c2 - c1)) nvidia-smi calls (2 to $max)"
release z
check "-w 0" 0 '' '' -- "$TS" -w 0
gpu_server
check "job 0: -G 1" 0 $'0\n' '' -- "$TS" -G 1 true
check "-w 0" 0 '' '' -- "$TS" -w 0
check "job 1: a CPU job" 0 $'1\n' '' -- "$TS" waitfor y
c0=$(calls)
sleep 1   # a measurement, not a synchronisation
"$TS" -l >/dev/null
"$TS" -i 0 >/dev/null
"$TS" -i 1 >/dev/null
release y
"$TS" -w 1
check "job 2: a CPU job" 0 $'2\n' '' -- "$TS" true
check "-w 2" 0 '' '' -- "$TS" -w 2
is "$(calls)" "$c0" "no GPU job waits: no probe in 1 s (nor for -l, -i, CPU jobs)"
"$TS" --gpu-list >/dev/null
is "$(calls)" "$((c0 + 2))" "--gpu-list of an old look probes once"

# ---- -i's reason: worked out when asked, also when no slot is free; none for a job waiting for something else ----
gpu_server
check "job 0 -G 1" 0 $'0\n' '' -- "$TS" -G 1 waitfor r
check "job 1 -G 1" 0 $'1\n' '' -- "$TS" -G 1 waitfor r
check "job 2: a CPU job holds the one slot" 0 $'2\n' '' -- "$TS" waitfor r
wait_running 0
wait_running 1
wait_running 2
check "job 3 -G 1 waits" 0 $'3\n' '' -- "$TS" -G 1 true
wait_info 3 $'\nWaiting for GPUs: no GPU is free (GPU 0 has 1 ts job, as many as it takes; GPU 1 has 1 ts job, as many as it takes)\n'
check "job 4 -G 1 -D 2: waits for its dependency" 0 $'4\n' '' -- "$TS" -G 1 -D 2 true
check "job 5 -G 1 -N 3: waits for slots" 0 $'5\n' '' -- "$TS" -G 1 -N 3 true
for i in 4 5; do
    out=$("$TS" -i $i)
    has "$out" "GPUs required: 1" "-i $i: GPUs required"
    ok "$(printf '%s' "$out" | grep -q 'Waiting for GPUs'; echo $((1 - $?)))" "-i $i: no 'Waiting for GPUs' (it waits for something else)"
done
release r
for i in 0 1 2 3 4; do check "-w $i" 0 '' '' -- "$TS" -w $i; done
"$TS" -r 5 >/dev/null 2>&1

# ---- a shared queue: each job runs as its submitter, with its cards ----
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    skip "shared queue: b's job" "needs root and setpriv to act as other users"
    skip "shared queue: c's job" "needs root and setpriv to act as other users"
    skip "shared queue: distinct cards" "needs root and setpriv to act as other users"
else
    "$TS" -K
    smi_reset
    B=4101 C=4102
    chmod 755 "$T"
    mkdir -m 1777 "$T/shared"
    chmod 777 "$T/bin"
    Q="$T/shared/TS_SOCKET"
    printf '#!/bin/sh\nTS_SOCKET=$(dirname -- "$0")/shared/TS_SOCKET TS_SOCKET_MODE=0666 exec "%s" -L "$USER" "$@"\n' "$TS" >"$T/q"
    chmod 755 "$T/q"
    d=$(dirname "$TS")
    while [ "$d" != / ] && [ -n "$d" ]; do chmod o+x "$d" 2>/dev/null; d=$(dirname "$d"); done
    as() { local u=$1; shift; env -i PATH="$T/bin:/usr/bin:/bin" USER=u$u TMPDIR="$T/shared" setpriv --reuid=$u --regid=$u --clear-groups "$@"; }
    extra_cleanup() { kill "$FOREIGN"; rm -f "$SMI/hang"; TS_SOCKET="$Q" "$TS" -K; }
    check "the owner starts the shared server" 0 $'1\n' '' -- env "${SRV[@]}" USER=root "$T/q" -S
    J="echo \"\$CUDA_VISIBLE_DEVICES \$(id -u)\" >$T/shared/out.\$(id -u); exec waitfor sh-go"
    check "b queues -G 1" 0 $'0\n' '' -- as $B "$T/q" -G 1 sh -c "$J"
    check "c queues -G 1" 0 $'1\n' '' -- as $C "$T/q" -G 1 sh -c "$J"
    TS_SOCKET="$Q" wait_running 0
    TS_SOCKET="$Q" wait_running 1
    eventually "both jobs wrote their line" -- test -s "$T/shared/out.$B" -a -s "$T/shared/out.$C"
    ob=$(cat "$T/shared/out.$B")
    oc=$(cat "$T/shared/out.$C")
    release sh-go
    TS_SOCKET="$Q" "$TS" -w 0
    TS_SOCKET="$Q" "$TS" -w 1
    [[ $ob =~ ^[01]\ $B$ ]] && pass "shared queue: b's job ran as b with a card ($ob)" || fail "shared queue: b's job" "$ob"
    [[ $oc =~ ^[01]\ $C$ ]] && pass "shared queue: c's job ran as c with a card ($oc)" || fail "shared queue: c's job" "$oc"
    ok "$([ "${ob% *}" != "${oc% *}" ]; echo $?)" "shared queue: distinct cards (${ob% *}, ${oc% *})"
fi

done_testing

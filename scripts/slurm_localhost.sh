#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for curate's Slurm tests (tests/test_slurm.py)
# and for trying `executor.kind: slurm` without a cluster. Needs root (CI runs as root).
#
#   bash scripts/slurm_localhost.sh          # install if missing, configure, start, wait idle
#   bash scripts/slurm_localhost.sh stop     # stop the daemons this script started
#
# Idempotent: when `sinfo` already shows the node idle it returns at once. It never
# overwrites a slurm.conf it did not write (the first line marks ours), so on a real cluster
# it refuses instead of reconfiguring it.
#
# Containers here have no systemd and no writable cgroup tree, so the daemons are started
# directly and the config avoids cgroups: proctrack/linuxproc (tracks job processes through
# /proc), task/none (no CPU binding), no accounting daemon (sacct is unavailable; curate
# reads job states from squeue/scontrol instead).
set -euo pipefail

MARK="# curate: one-node localhost cluster written by scripts/slurm_localhost.sh"
CONF=/etc/slurm/slurm.conf
LOG_DIR=/var/log/slurm
# How long to wait for the node to become idle: slurmd registers within a few seconds.
WAIT_S=${SLURM_LOCALHOST_WAIT_S:-60}

say() { echo "slurm_localhost: $*" >&2; }

# `timeout`: with no controller answering, sinfo retries for ~20 s before it gives up.
node_state() { timeout 5 sinfo --noheader --nodes="$(hostname -s)" --format=%t 2>/dev/null | head -n1 || true; }
running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [[ "${1:-}" == "stop" ]]; then
    for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    say "needs root (installs packages and starts daemons); run it with sudo"
    exit 2
fi

if command -v sinfo >/dev/null && running /run/slurmctld.pid && [[ "$(node_state)" == idle* || "$(node_state)" == mix* ]]; then
    say "already running: node $(hostname -s) is $(node_state)"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (apt)"
    export DEBIAN_FRONTEND=noninteractive
    # --no-install-recommends keeps it to the daemons and clients (no docs, no -dev plugins).
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }
fi

# ---- munge: the authentication every Slurm RPC carries
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null || { say "munged did not start (see /var/log/munge/munged.log)"; exit 1; }

# ---- slurm.conf: one node, this host, its real CPU count (a node configured with more CPUs
# than it has is drained as "Low CPUs")
if [[ -f $CONF ]] && ! head -n1 "$CONF" | grep -qF "$MARK"; then
    say "$CONF exists and was not written by this script; refusing to overwrite a real cluster's config"
    exit 1
fi
NODE=$(hostname -s)
CPUS=$(nproc)
install -d -m 0755 /etc/slurm "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=curate
# "localhost": slurmctld accepts it as its own name whatever the machine is called.
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
# CR_Core: cores are the consumable; memory is not tracked (RealMemory only bounds requests).
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# 2: a node that was down (daemons restarted) returns to service on its own.
ReturnToService=2
# 300 s (the default): finished jobs stay visible to scontrol this long, long enough for
# curate's waiter to read a failed task's state.
MinJobAge=300
# 2048 MB: small, so it fits any CI machine; curate's default request is 1 GB per CPU.
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=2048 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"

# ---- daemons (restart only what is not running)
if ! running /run/slurmctld.pid; then
    /usr/sbin/slurmctld
fi
if ! running /run/slurmd.pid; then
    /usr/sbin/slurmd
fi

for _ in $(seq $((WAIT_S * 2))); do
    state=$(node_state)
    if [[ $state == idle* || $state == mix* ]]; then
        say "node $NODE is $state"
        exit 0
    fi
    if [[ $state == down* || $state == drain* ]]; then
        scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true
    fi
    sleep 0.5
done
say "node $NODE did not become idle within ${WAIT_S}s (state: '$(node_state)'); see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log"
exit 1

#!/usr/bin/env bash
# A real, single-node Slurm cluster on this machine, for tests and for trying the Slurm profile locally.
#
#   sudo bash scripts/slurm/local_slurm.sh install   apt-get the Debian packages (slurmctld slurmd slurm-client munge)
#   sudo bash scripts/slurm/local_slurm.sh start     write /etc/slurm/slurm.conf, start munged, slurmctld, slurmd
#   sudo bash scripts/slurm/local_slurm.sh status    sinfo of the node
#   sudo bash scripts/slurm/local_slurm.sh stop      stop the daemons this script started, remove what it wrote
#
# Needs root (slurmd runs jobs as the submitting user; the config must live at /etc/slurm/slurm.conf because
# the job step does not inherit SLURM_CONF). No slurmdbd: sacct has no data, so Snakemake must be told
# `--slurm-status-command squeue`, and MinJobAge below is long enough for squeue to still show finished jobs.
# An existing /etc/slurm/slurm.conf that this script did not write is never touched (start fails instead).
set -euo pipefail

STATE=${LOCAL_SLURM_STATE:-/var/tmp/mtl-local-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by mtl scripts/slurm/local_slurm.sh"
CPUS=${LOCAL_SLURM_CPUS:-$(nproc)}  # job slots of the node

die() { echo "local_slurm: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it writes $CONF and starts daemons)"; }

install_packages() {
    need_root
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        echo "local_slurm: packages already installed"; return
    fi
    command -v apt-get >/dev/null || die "apt-get not found: install slurmctld, slurmd, slurm-client and munge by hand"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    echo "local_slurm: installed $(slurmctld -V)"
}

write_conf() {
    local mem_mb
    # Leave 10% of RAM to the system; memory is not a consumable resource here (CR_CPU), but a job that
    # asks for more than RealMemory is rejected, so RealMemory must be the real size.
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
    cat >"$CONF.tmp" <<CONF
$MARKER
ClusterName=mtllocal
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# Containers and VMs without systemd/cgroup delegation: track processes by /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Trust CPUs= below even when it exceeds the cores slurmd detects (LOCAL_SLURM_CPUS oversubscribes a small
# test machine: Slurm jobs then overlap their scheduling and start-up waits).
SlurmdParameters=config_overrides
# squeue must still list a finished job when Snakemake polls (plugin needs MinJobAge >= 3 x poll interval).
MinJobAge=600
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MessageTimeout=30
SlurmdTimeout=120
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    mv "$CONF.tmp" "$CONF"
}

wait_idle() {
    local i
    for i in $(seq 1 60); do
        if sinfo -h -N -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then return 0; fi
        sleep 0.5
    done
    echo "--- slurmctld.log" >&2; tail -20 "$STATE/log/slurmctld.log" >&2 || true
    echo "--- slurmd.log" >&2; tail -20 "$STATE/log/slurmd.log" >&2 || true
    die "node did not become idle within 30 s"
}

start() {
    need_root
    command -v slurmctld >/dev/null || die "slurmctld not installed: run '$0 install' first"
    if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARKER"; then
        die "$CONF exists and was not written by this script; refusing to replace a real cluster's config"
    fi
    if [ -f "$STATE/started" ] && sinfo -h >/dev/null 2>&1; then
        echo "local_slurm: already running"; return
    fi
    mkdir -p "$STATE"
    : >"$STATE/started"
    write_conf
    if ! pgrep -x munged >/dev/null; then
        [ -s /etc/munge/munge.key ] || { mungekey --create --force 2>/dev/null || \
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; }
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 0400 /etc/munge/munge.key
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
        runuser -u munge -- munged --force
        echo munged >>"$STATE/started"
    fi
    slurmctld -i
    echo slurmctld >>"$STATE/started"
    slurmd -N localhost
    echo slurmd >>"$STATE/started"
    wait_idle
    echo "local_slurm: up ($(sinfo -h -N -o '%N %t CPUs=%c'))"
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE
    local pid
    [ -f "$2" ] || return 0
    pid=$(cat "$2")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    echo "local_slurm: stopped $1 ($pid)"
}

stop() {
    need_root
    [ -f "$STATE/started" ] || { echo "local_slurm: nothing started by this script"; return; }
    # Cancel leftover jobs first so no job step outlives its slurmd.
    squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
    grep -qx slurmd "$STATE/started" && stop_pidfile slurmd "$STATE/slurmd.pid"
    grep -qx slurmctld "$STATE/started" && stop_pidfile slurmctld "$STATE/slurmctld.pid"
    grep -qx munged "$STATE/started" && stop_pidfile munged /run/munge/munged.pid
    if [ -f "$CONF" ] && head -1 "$CONF" | grep -qF "$MARKER"; then rm -f "$CONF"; fi
    rm -rf "$STATE"
}

case "${1:-}" in
    install) install_packages ;;
    start) start ;;
    stop) stop ;;
    status) sinfo -N -l ;;
    *) die "usage: $0 {install|start|stop|status}" ;;
esac

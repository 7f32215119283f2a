#!/usr/bin/env bash
# Stop the one-node SLURM that .ci/slurm_up.sh started: cancel every job, then stop slurmd,
# slurmctld, slurmdbd, MariaDB and munged (SIGTERM, SIGKILL after 30 s). The configuration,
# the controller's state (job ids go on from where they were) and the accounting database
# stay, so slurm_up.sh starts the same cluster again.
#
#   --purge   also drop the accounting database and clear the controller's state and the
#             daemons' logs: the next slurm_up.sh starts as on a fresh machine (job ids from 1)
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

purge=0
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac
run_dir=/run/slurm
t0=$SECONDS
mkdir -p /run/lock
exec 9> /run/lock/jettag-slurm_up.lock  # not while slurm_up.sh runs
flock -w 300 9 || { echo "slurm_down: ERROR: slurm_up.sh holds the lock" >&2; exit 1; }

# live_pids <name>, running <name>: daemons of this PID namespace, zombies not counted
source "$(dirname "${BASH_SOURCE[0]}")/slurm_lib.sh"

stop() {  # stop <name> <pidfile>: SIGTERM, then SIGKILL after 30 s
    local name=$1 pids
    pids=$(cat "$2" 2> /dev/null || true)
    if [ -z "$pids" ] || ! kill -0 "$pids" 2> /dev/null; then
        pids=$(live_pids "$name")
    fi
    [ -n "$pids" ] || return 0
    echo "slurm_down: stopping $name (${pids//$'\n'/ })"
    # shellcheck disable=SC2086
    kill $pids 2> /dev/null || true
    for _ in $(seq 150); do
        running "$name" || { rm -f "$2"; return 0; }
        sleep 0.2
    done
    echo "slurm_down: $name ignored SIGTERM for 30 s: SIGKILL" >&2
    pids=$(live_pids "$name")
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -9 $pids 2> /dev/null || true
    rm -f "$2"
}

if running slurmctld && jobs=$(timeout 10 squeue -h -o %A 2> /dev/null) && [ -n "$jobs" ]; then
    echo "slurm_down: cancelling $(echo "$jobs" | wc -l) jobs"
    # shellcheck disable=SC2086
    scancel $jobs || true
    for _ in $(seq 50); do  # up to 10 s for the jobs to end (KillWait may take longer)
        [ -z "$(timeout 10 squeue -h -t running,completing -o %A 2> /dev/null)" ] && break
        sleep 0.2
    done
fi
stop slurmd "$run_dir/slurmd.pid"
# job steps that outlived scancel and slurmd: each slurmstepd with the job's processes
tree() {  # tree <pid>: the pid and its descendants
    local child
    echo "$1"
    for child in $(pgrep -P "$1" || true); do tree "$child"; done
}
steps=$(live_pids slurmstepd)
if [ -n "$steps" ]; then
    echo "slurm_down: killing leftover job steps (slurmstepd ${steps//$'\n'/ }) and their processes"
    # shellcheck disable=SC2046
    kill -9 $(for pid in $steps; do tree "$pid"; done) 2> /dev/null || true
fi
stop slurmctld "$run_dir/slurmctld.pid"
if [ $purge = 1 ] && running mariadbd && running slurmdbd; then
    echo "slurm_down: dropping the accounting database"
    stop slurmdbd "$run_dir/slurmdbd.pid"
    mariadb -e 'DROP DATABASE IF EXISTS slurm_acct_db' || true
fi
stop slurmdbd "$run_dir/slurmdbd.pid"
stop mariadbd /run/mysqld/mysqld.pid
stop mysqld_safe /dev/null
stop munged /run/munge/munged.pid
if [ $purge = 1 ]; then
    echo "slurm_down: clearing /var/spool/slurmctld, /var/spool/slurmd and /var/log/slurm"
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* /var/log/slurm/*
fi
echo "slurm_down: stopped ($((SECONDS - t0)) s)"

#!/usr/bin/env bash
# Start a one-node SLURM with accounting on this machine (Debian 12, as root), for
# tests/test_slurm.py and benchmarks/cluster_scale.py: munge, MariaDB, slurmdbd, slurmctld
# and slurmd, without systemd and without cgroups (proctrack/linuxproc, task/none).
#
# Idempotent: run it again and a cluster that answers, with the same configuration, is left as
# it is (about a second); a changed configuration restarts the SLURM daemons; a daemon that is
# missing is started. It ends with a job through sbatch + srun that must reach sacct as
# COMPLETED. Daemon logs: /var/log/slurm/. Stop everything with .ci/slurm_down.sh.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

cluster=jettag
partition=debug
log_dir=/var/log/slurm
state_dir=/var/spool/slurmctld
spool_dir=/var/spool/slurmd
run_dir=/run/slurm
db_name=slurm_acct_db
db_password=jettag-ci-slurmdbd  # a throwaway, local-socket-only test database
t0=$SECONDS
t_step=$SECONDS

# one run at a time (e.g. test processes that each start the cluster when sinfo fails)
mkdir -p /run/lock
exec 9> /run/lock/jettag-slurm_up.lock
if ! flock -w 300 9; then
    echo "slurm_up: ERROR: another slurm_up.sh still holds /run/lock/jettag-slurm_up.lock" >&2
    exit 1
fi

step() {  # step <message>: what happens next, with the time since the start and the last step
    echo "slurm_up: $* (+$((SECONDS - t0)) s, last step $((SECONDS - t_step)) s)"
    t_step=$SECONDS
}

fail() {  # fail <message> <log>: name the daemon, show its log's tail, stop
    echo "slurm_up: ERROR: $1 (log: $2)" >&2
    if [ -s "$2" ]; then
        echo "---- last lines of $2 ----" >&2
        tail -n 25 "$2" >&2 || true
    fi
    if grep -qs 'getaddrinfo() failed' "$2"; then
        echo "slurm_up: hint: SLURM resolves names with AI_ADDRCONFIG, which needs an IPv4" \
            "address other than 127.0.0.1 (e.g. 'ip addr add 10.254.0.1/32 dev lo')" >&2
    fi
    exit 1
}

# live_pids <name>, running <name>: daemons of this PID namespace, zombies not counted
source "$(dirname "${BASH_SOURCE[0]}")/slurm_lib.sh"

wait_for() {  # wait_for <seconds> <daemon> <log> <command...>: until the command succeeds
    local limit=$1 daemon=$2 log=$3 deadline=$((SECONDS + $1))
    shift 3
    while ! timeout 10 "$@" > /dev/null 2>&1; do
        if ! running "$daemon"; then
            fail "$daemon exited while starting" "$log"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$daemon did not answer within $limit s ($*)" "$log"
        fi
        sleep 0.2
    done
}

node_state() { sinfo -h -n "$host" -o '%t' 2> /dev/null | head -n 1 || true; }

node_up() { [[ "$(node_state)" =~ ^(idle|mix|alloc|comp)$ ]]; }

# ---- packages -------------------------------------------------------------------------------
missing=()
for cmd in slurmctld slurmd slurmdbd sinfo munged mariadbd; do
    command -v "$cmd" > /dev/null || missing+=("$cmd")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing the SLURM and MariaDB packages (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        slurmctld slurmd slurmdbd slurm-client munge mariadb-server < /dev/null > /dev/null
fi

# ---- configuration --------------------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
mem_total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)  # MB
reserve=$((mem_total / 4 < 1024 ? mem_total / 4 : 1024))  # left to the daemons and the OS
real_memory=$((mem_total - reserve))

# Everything on 127.0.0.1: no name resolution needed beyond the node's own name.
slurm_conf="# Written by .ci/slurm_up.sh: a one-node test cluster (rewritten on every run).
ClusterName=$cluster
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$state_dir
SlurmdSpoolDir=$spool_dir
SlurmctldPidFile=$run_dir/slurmctld.pid
SlurmdPidFile=$run_dir/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
MailProg=/bin/true
MpiDefault=none
# no systemd and no usable cgroups here: processes tracked by parent pid, no binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# sacct's MaxRSS, AveRSS, TotalCPU: sampled every second (a shorter step has none)
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# sacct shows the Comment the Snakemake executor gives each job (the rule)
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
# cores and memory are consumable: a job waits until its --mem fits
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem gets its CPUs' share of the node, not the whole node's memory
DefMemPerCPU=$((real_memory / cpus))
# at its time limit a job gets SIGTERM, then SIGKILL KillWait seconds later (limits are
# checked every 30 s or so: a 1-minute job ends 60-90 s after its start)
KillWait=30
OverTimeLimit=0
# sacct has the record; finished jobs stay in squeue 5 minutes (the plugin's squeue mode)
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
# schedule at once on submit and job end, and retry pending jobs every 2 s
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2,batch_sched_delay=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_memory State=UNKNOWN
PartitionName=$partition Nodes=$host Default=YES MaxTime=INFINITE State=UP
"
slurmdbd_conf="# Written by .ci/slurm_up.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
PidFile=$run_dir/slurmdbd.pid
LogFile=$log_dir/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$db_password
StorageLoc=$db_name
"

changed=()
write_conf() {  # write_conf <path> <mode> <owner> <content>: only when it differs
    local path=$1 mode=$2 owner=$3 content=$4
    if [ -f "$path" ] && [ "$(cat "$path")" = "${content%$'\n'}" ]; then
        chmod "$mode" "$path"
        chown "$owner" "$path"
        return 0
    fi
    local tmp
    tmp=$(mktemp "$path.XXXXXX")
    printf '%s' "$content" > "$tmp"
    chmod "$mode" "$tmp"
    chown "$owner" "$tmp"
    mv -f "$tmp" "$path"
    changed+=("$(basename "$path")")
}
mkdir -p /etc/slurm
write_conf /etc/slurm/slurm.conf 644 root:root "$slurm_conf"
write_conf /etc/slurm/slurmdbd.conf 600 slurm:slurm "$slurmdbd_conf"

stale() {  # stale <daemon> <file>: the daemon runs, started before the file last changed
    local pid age
    pid=$(live_pids "$1" | head -n 1)
    [ -n "$pid" ] || return 1
    age=$(ps -o etimes= -p "$pid") || return 1
    [ "$(stat -c %Y "$2")" -gt $(($(date +%s) - age)) ]
}

# ---- already up? ----------------------------------------------------------------------------
all_running=1
for daemon in munged mariadbd slurmdbd slurmctld slurmd; do
    running "$daemon" || all_running=0
done
if [ $all_running = 1 ] && ! stale slurmdbd /etc/slurm/slurmdbd.conf \
    && ! stale slurmctld /etc/slurm/slurm.conf && ! stale slurmd /etc/slurm/slurm.conf && node_up \
    && timeout 10 sacctmgr -n list cluster > /dev/null 2>&1; then
    echo "slurm_up: already up ($((SECONDS - t0)) s): $(sinfo -h -n "$host" -o \
        'node %n, %c CPUs, %m MB, partition %P, %t')"
    exit 0
fi
[ ${#changed[@]} -eq 0 ] || step "configuration written: ${changed[*]}"

mkdir -p "$log_dir" "$state_dir" "$spool_dir" "$run_dir" /run/munge /run/mysqld
chown slurm:slurm "$log_dir" "$state_dir" "$run_dir"
chmod 755 "$log_dir" "$state_dir" "$spool_dir" "$run_dir"
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld

start_daemon() {  # start_daemon <name> <log> <command...>: a daemon that forks itself
    # Its stdin, stdout and stderr must not be this script's: a caller that reads this script's
    # output through a pipe (subprocess.run(capture_output=True)) would wait for the daemon to
    # exit. Nor may it hold the lock (fd 9). What it prints before its log is open (a bad
    # configuration) goes to its log.
    local name=$1 log=$2
    shift 2
    "$@" < /dev/null >> "$log" 2>&1 9>&- || fail "$name did not start" "$log"
}

stop_daemon() {  # stop_daemon <name>: SIGTERM, wait up to 30 s
    local pids
    pids=$(live_pids "$1")
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill $pids 2> /dev/null || true
    for _ in $(seq 150); do
        running "$1" || return 0
        sleep 0.2
    done
    fail "$1 did not stop on SIGTERM within 30 s" "$log_dir/$1.log"
}

# ---- munge ----------------------------------------------------------------------------------
if ! running munged; then
    step "starting munged"
    if [ ! -s /etc/munge/munge.key ]; then
        if command -v mungekey > /dev/null; then
            mungekey --create --keyfile /etc/munge/munge.key
        else
            create-munge-key -f
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    mkdir -p /var/lib/munge /var/log/munge
    chown munge:munge /var/lib/munge /var/log/munge
    chmod 700 /var/lib/munge /var/log/munge
    # munged refuses a log file that it does not own (start_daemon appends its stderr there)
    touch /var/log/munge/munged.log
    chown munge:munge /var/log/munge/munged.log
    chmod 640 /var/log/munge/munged.log
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    start_daemon munged /var/log/munge/munged.log runuser -u munge -- munged
fi
wait_for 20 munged /var/log/munge/munged.log munge -n

# ---- MariaDB --------------------------------------------------------------------------------
if ! running mariadbd && ! running mysqld; then
    step "starting MariaDB"
    if [ ! -d /var/lib/mysql/mysql ]; then
        mariadb-install-db --user=mysql --skip-test-db > "$log_dir/mariadb-install.log" 2>&1 \
            || fail "mariadb-install-db failed" "$log_dir/mariadb-install.log"
    fi
    # mariadbd does not daemonise itself: detach it from this shell (and from CI's job control)
    setsid mariadbd --user=mysql --innodb-buffer-pool-size=1G --innodb-lock-wait-timeout=900 \
        --skip-networking > "$log_dir/mariadb.log" 2>&1 < /dev/null 9>&- &
fi
wait_for 60 mariadbd "$log_dir/mariadb.log" mariadb -e 'select 1'
mariadb << EOF
CREATE DATABASE IF NOT EXISTS $db_name;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$db_password';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$db_password';
GRANT ALL ON $db_name.* TO 'slurm'@'localhost';
EOF

# ---- slurmdbd, the cluster and root's association -------------------------------------------
if stale slurmdbd /etc/slurm/slurmdbd.conf; then
    step "restarting slurmdbd (new slurmdbd.conf)"
    stop_daemon slurmdbd
fi
if ! running slurmdbd; then
    step "starting slurmdbd"
    start_daemon slurmdbd "$log_dir/slurmdbd.log" slurmdbd
fi
wait_for 60 slurmdbd "$log_dir/slurmdbd.log" sacctmgr -n list cluster
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$cluster"; then
    step "registering cluster $cluster"
    sacctmgr -i add cluster "$cluster" > /dev/null  # also creates account root, user root
fi
if [ -z "$(sacctmgr -n -P list assoc cluster="$cluster" user=root format=account)" ]; then
    sacctmgr -i add user root account=root cluster="$cluster" > /dev/null
fi

# ---- slurmctld and slurmd -------------------------------------------------------------------
if stale slurmctld /etc/slurm/slurm.conf || stale slurmd /etc/slurm/slurm.conf; then
    step "restarting slurmctld and slurmd (new slurm.conf)"
    stop_daemon slurmd
    stop_daemon slurmctld
fi
if ! running slurmctld; then
    step "starting slurmctld"
    start_daemon slurmctld "$log_dir/slurmctld.log" slurmctld
fi
wait_for 60 slurmctld "$log_dir/slurmctld.log" scontrol show partition "$partition"
if ! running slurmd; then
    step "starting slurmd"
    start_daemon slurmd "$log_dir/slurmd.log" slurmd
fi
deadline=$((SECONDS + 60))
until node_up; do
    state=$(node_state)
    case $state in
        down* | drain* | drng* | fail*)  # left so by an earlier run: back to service
            scontrol update nodename="$host" state=resume > /dev/null 2>&1 || true ;;
    esac
    running slurmd || fail "slurmd exited while starting" "$log_dir/slurmd.log"
    if [ "$SECONDS" -ge "$deadline" ]; then
        fail "node $host is '$state', not idle, 60 s after slurmd started" "$log_dir/slurmd.log"
    fi
    sleep 0.2
done

# ---- a job through sbatch and srun that reaches sacct ---------------------------------------
state=$(node_state)
if [ "$state" != idle ]; then  # restarted under running jobs: a check job could wait for hours
    step "node $host is $state (jobs running): no check job"
else
    step "node $host is idle; checking a job runs and reaches sacct"
    job=$(timeout 120 sbatch --parsable --wait --job-name=slurm_up_check -o /dev/null -t 1 \
        --mem 10 --wrap 'srun --mem 10 true') \
        || fail "the check job did not complete within 120 s (sbatch --wait)" \
            "$log_dir/slurmctld.log"
    for _ in $(seq 100); do
        state=$(sacct -n -X -P -j "$job" -o State 2> /dev/null | head -n 1 || true)
        [ "$state" = COMPLETED ] && break
        sleep 0.2
    done
    [ "$state" = COMPLETED ] \
        || fail "check job $job is '$state' in sacct, not COMPLETED" "$log_dir/slurmdbd.log"
    step "check job $job COMPLETED in sacct"
fi
echo "slurm_up: up in $((SECONDS - t0)) s: node $host, $cpus CPUs, $real_memory MB," \
    "partition $partition (default, no time limit), cluster $cluster with accounting"

# Shell functions shared by slurm_up.sh and slurm_down.sh (sourced, not run).

# the live processes of that name in this PID namespace: a zombie does not count (a container
# whose PID 1 does not reap orphans keeps a stopped daemon as a zombie, and pgrep would still
# find it), nor does a daemon of another cluster in a container below this one
live_pids() {
    local pid stat ns
    ns=$(readlink /proc/$$/ns/pid)
    while read -r pid stat; do
        [[ $stat != Z* && "$(readlink "/proc/$pid/ns/pid" 2> /dev/null)" == "$ns" ]] && echo "$pid"
    done < <(ps -C "$1" -o pid=,stat= 2> /dev/null || true)
    return 0
}
running() { [ -n "$(live_pids "$1")" ]; }

#!/usr/bin/env bash
# A one-node Slurm cluster in a folder of its own, for the batch tests:
# munged, slurmctld and slurmd on this machine, configured through
# SLURM_CONF so nothing under /etc is touched.
#
#   source slurm-cluster.sh; slurm_start FOLDER; ...; slurm_stop
#
# Needs root (slurmd runs jobs as their users) and Debian's slurm-wlm and
# munge packages, which slurm_install adds when they are missing.

slurm_install() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then return 0; fi
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    echo "slurm-wlm and munge are required (apt-get install slurm-wlm munge, as root)" >&2
    return 1
  fi
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

slurm_start() {
  SLURM_DIR=$1
  mkdir -p "$SLURM_DIR"/{munge,spool,state,log}
  chmod 700 "$SLURM_DIR/munge"
  dd if=/dev/urandom of="$SLURM_DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$SLURM_DIR/munge/munge.key"
  local socket=$SLURM_DIR/munge/munge.socket
  munged --force --key-file="$SLURM_DIR/munge/munge.key" --socket="$socket" \
    --pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/log/munged.log" \
    --seed-file="$SLURM_DIR/munge/munged.seed"
  local host memory
  host=$(hostname)
  memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  cat >"$SLURM_CONF" <<CONF
ClusterName=atrous-test
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURM_TEST_PORT:-16817}
SlurmdPort=$(( ${SLURM_TEST_PORT:-16817} + 1 ))
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
KillWait=5
MinJobAge=600
NodeName=$host CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=batch Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld
  slurmd
  for _ in $(seq 60); do
    if [[ "$(sinfo -h -o %T 2>/dev/null)" == *idle* ]]; then return 0; fi
    sleep 1
  done
  echo "the Slurm node did not come up:" >&2
  tail -5 "$SLURM_DIR"/log/*.log >&2
  return 1
}

slurm_stop() {
  local pids=()
  for file in "$SLURM_DIR/slurmd.pid" "$SLURM_DIR/slurmctld.pid" "$SLURM_DIR/munge/munged.pid"; do
    [ -f "$file" ] && pids+=("$(cat "$file")")
  done
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  # Until they are gone, so their folder can be removed.
  for _ in $(seq 50); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 0.2
  done
  return 0
}

# Waits until job $1 (all its array tasks) has left the queue.
slurm_wait() {
  for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 1
  done
  echo "job $1 still queued after 10 minutes" >&2
  return 1
}

#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Prepare-backup-dir job (where the backup service runs, before it): makes sure the backup
# service's host directory exists on the data node and that the image's frappe user can write
# to it. Swarm refuses to start a task whose bind-mount source is missing, and a root-owned
# directory makes every backup fail (the image runs as uid 1000). Runs as root in the app
# image, with the node's file system at HOST_ROOT, as `bash -c "<this text>"`.
#
# Missing: created (parents as root, as mkdir -p makes them), owned BACKUP_DIR_OWNER, mode
# 0750. Present but not writable by that user: the directory itself (never its content) is
# given to BACKUP_DIR_OWNER with u+rwx. Otherwise nothing changes. Every outcome is logged.
#
# Environment: HOST_ROOT (/host), BACKUP_DIR (absolute path on the node, e.g.
# /opt/brand-club/backups), BACKUP_DIR_OWNER (uid:gid, 1000:1000), DRILL_STATE_DIR (optional,
# where the restore drill runs: its state folder on the node, <BACKUP_DIR>/.restore-drill,
# prepared the same way after BACKUP_DIR).
JOB=prepare-backup-dir
# From a checkout the libraries are sourced; the job's text has them inlined instead
# (components/frappe/jobs.py), as a swarm job has no checkout.
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The job has no bench to work in; the prelude's `cd` must not fail.
BENCH_DIR=/
# shellcheck source=lib/job-prelude.sh
source "$SCRIPT_DIR/lib/job-prelude.sh"

require_env HOST_ROOT BACKUP_DIR BACKUP_DIR_OWNER
# Absolute, normalised and not / itself (the configuration is checked too; a job that runs as
# root checks again).
normalised_path() { [[ $1 == /?* && $1/ != *//* && $1/ != */./* && $1/ != */../* ]]; }
[[ $BACKUP_DIR == / ]] || BACKUP_DIR=${BACKUP_DIR%/}
normalised_path "$BACKUP_DIR" ||
  die "BACKUP_DIR must be an absolute, normalised path other than /, got '$BACKUP_DIR'"
: "${DRILL_STATE_DIR:=}"
DRILL_STATE_DIR=${DRILL_STATE_DIR%/}
[[ -z $DRILL_STATE_DIR ]] || normalised_path "$DRILL_STATE_DIR" ||
  die "DRILL_STATE_DIR must be an absolute, normalised path other than /, got '$DRILL_STATE_DIR'"
[[ $BACKUP_DIR_OWNER =~ ^([0-9]+):([0-9]+)$ ]] ||
  die "BACKUP_DIR_OWNER must be uid:gid, got '$BACKUP_DIR_OWNER'"
uid=${BASH_REMATCH[1]}
gid=${BASH_REMATCH[2]}
[[ -d $HOST_ROOT ]] || die "the node's file system is not mounted at $HOST_ROOT"


# Whether uid:gid may create files in the directory: write and search permission through its
# owner, group or other bits (the frappe user has no supplementary groups).
writable_by_owner() {
  local owner group mode
  read -r owner group mode < <(stat -c '%u %g %a' -- "$directory")
  mode=$((8#$mode))
  if ((owner == uid)); then
    (( (mode & 8#300) == 8#300 ))
  elif ((group == gid)); then
    (( (mode & 8#030) == 8#030 ))
  else
    (( (mode & 8#003) == 8#003 ))
  fi
}

# prepare PATH: PATH on the node made ready for uid:gid, as above.
prepare() {
  local path=$1
  directory=$HOST_ROOT$path
  if [[ -L $directory || (-e $directory && ! -d $directory) ]]; then
    die "$path on the node is not a directory (a file or a symbolic link): fix it by hand"
  fi
  if [[ ! -d $directory ]]; then
    mkdir -p -- "$directory"
    chown "$uid:$gid" -- "$directory"
    chmod 0750 -- "$directory"
    log "created $path, owned $uid:$gid, mode 0750"
  elif writable_by_owner; then
    log "$path exists and $uid:$gid can write to it, nothing to do"
  else
    log "$path exists but $uid:$gid cannot write to it" \
      "($(stat -c 'owner %u:%g, mode %a' -- "$directory")): giving the directory itself to $uid:$gid"
    chown "$uid:$gid" -- "$directory"
    chmod u+rwx -- "$directory"
    log "$path is now $(stat -c 'owner %u:%g, mode %a' -- "$directory")"
  fi
}

prepare "$BACKUP_DIR"
if [[ -n $DRILL_STATE_DIR ]]; then
  prepare "$DRILL_STATE_DIR"
fi

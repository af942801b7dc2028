#!/bin/bash
# Submits an atlasfs export to Slurm: the export array (export.sbatch, task K of N writes
# --shard K/N) and the finalize step (finalize.sbatch) as a job that starts once every task of
# the array succeeded (--dependency=afterok, cancelled if one fails). Prints both job ids.
#     scripts/slurm/submit.sh CONFIG PATH DEST --tasks N [sbatch options] [-- export options]
# e.g.
#     scripts/slurm/submit.sh /etc/atlasfs/era5.toml era5 /scratch/era5.zarr --tasks 16 \
#         --partition=compute --time=01:00:00 --cpus-per-task=8 -- --zarr-format 2
# sbatch options go to both jobs; export options (after --) to every atlasfs run, finalize's
# included. DEST must be reachable from every node (a shared directory or an object-store URL).
#
# Settings, from the environment:
#   SBATCH              the sbatch command                      [default: sbatch]
#   ATLASFS, ATLASFS_CACHE_HOME   as in the .sbatch scripts (sbatch passes the environment on)
set -euo pipefail
me=submit.sh
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SBATCH="${SBATCH:-sbatch}"
usage() {
    echo "usage: $me CONFIG PATH DEST --tasks N [sbatch options] [-- atlasfs export options]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
config=$1 path=$2 dest=$3
shift 3
tasks="" sbatch_opts=() export_opts=()
while [ $# -gt 0 ]; do
    case $1 in
        --tasks) [ $# -ge 2 ] || usage; tasks=$2; shift 2 ;;
        --tasks=*) tasks=${1#--tasks=}; shift ;;
        -a | --array | --array=* | --dependency | --dependency=* | -d)
            echo "$me: $1: the array comes from --tasks and the dependency is set here" >&2
            exit 2 ;;
        --) shift; export_opts=("$@"); break ;;
        *) sbatch_opts+=("$1"); shift ;;
    esac
done
if ! [[ "$tasks" =~ ^[1-9][0-9]*$ ]]; then
    echo "$me: --tasks N (the number of array tasks, at least 1) is required" >&2
    usage
fi
# The jobs may start in another directory (--chdir): pass local paths absolute.
config=$(realpath -m -- "$config")
[[ "$dest" == *://* ]] || dest=$(realpath -m -- "$dest")

job_id() { # sbatch --parsable prints "id" or "id;cluster"
    local id=${1%%;*}
    [[ "$id" =~ ^[0-9]+$ ]] || { echo "$me: sbatch printed no job id: $1" >&2; return 1; }
    echo "$id"
}
out=$("$SBATCH" --parsable --array="0-$((tasks - 1))" "${sbatch_opts[@]}" \
    "$here/export.sbatch" "$config" "$path" "$dest" "${export_opts[@]}") ||
    { echo "$me: submitting the export array failed" >&2; exit 1; }
array=$(job_id "$out")
out=$("$SBATCH" --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes \
    "${sbatch_opts[@]}" "$here/finalize.sbatch" "$config" "$path" "$dest" "${export_opts[@]}") ||
    { echo "$me: submitting the finalize job failed; the array $array is queued" \
           "(scancel $array, or run finalize.sbatch when it is done)" >&2; exit 1; }
final=$(job_id "$out")
echo "export array job $array: $tasks tasks writing $dest"
echo "finalize job $final: runs once every task of $array succeeded"

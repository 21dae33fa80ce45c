#!/usr/bin/env bash
# The phase workflow with ckvc, end to end. Read it top to bottom as a tutorial; run it to see every step:
#
#   bash examples/phase-workflow.sh            # from any folder; needs Node 20 and a built checkout (npm run build)
#   KEEP=1 bash examples/phase-workflow.sh     # keep the work folder to look around in it afterwards
#
#   1. phase G2 trains on branch phase-g2 and commits a checkpoint every 1000 steps, with config and metrics;
#   2. the best G2 agent by reward is tagged best-g2 (not the last checkpoint: the reward collapsed after it);
#   3. phase G2+ continues from best-g2 on branch phase-g2plus, with a lower learning rate;
#   4. three architecture branches (LSTM, GRU, attention) are warm-started from best-g2: each first commit
#      records best-g2 as its warm-start parent, and the embedding they share with it is stored once;
#   5. the history graph, the best agent of each architecture, diffs between them, the store's dedup;
#   6. the four best agents are packed into one bundle, verified, pulled into a second store (another site)
#      and checked out there byte-identical.
#
# The "training job" is examples/toy-agent.mjs: it writes a small, plausible checkpoint (1.3-1.6 MB of F32
# tensors named like a PyTorch agent's: embed.weight, encoder.lstm.weight_ih_l0, attn.q_proj.weight,
# policy_head.weight, ...) plus trainer_state.json and a config YAML, and prints `step=N reward=R loss=L`.
#
# Environment: CKVC (the ckvc command; default: this checkout's bin/ckvc, so no global install is needed),
# WORK_DIR (the work folder; default: a new temp folder; it must be empty or absent), KEEP=1 (keep it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CKVC=${CKVC:-$(cd "$HERE/.." && pwd)/bin/ckvc}
TOY="$HERE/toy-agent.mjs"

if [[ -n ${WORK_DIR:-} ]]; then
  mkdir -p "$WORK_DIR"
  if [[ -n $(ls -A "$WORK_DIR") ]]; then
    echo "phase-workflow: WORK_DIR $WORK_DIR is not empty; give an empty or new folder" >&2
    exit 2
  fi
  WORK="$(cd "$WORK_DIR" && pwd -P)"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/ckvc-phases-XXXXXX")"
fi
cleanup() {
  if [[ -n ${KEEP:-} ]]; then echo "(kept the work folder: $WORK)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Work inside the folder and let ckvc find the store the usual way: the nearest .ckvc upward from here.
cd "$WORK"
unset CKVC_DIR

ckvc() { "$CKVC" "$@"; }

n=0
heading() {
  n=$((n + 1))
  printf '\n== %d. %s\n' "$n" "$*"
}
# show CMD...: print the command (as you would type it), then run it.
show() {
  local arg line='$'
  for arg in "$@"; do
    [[ $arg == "$TOY" ]] && arg=examples/toy-agent.mjs
    if [[ $arg =~ ^[][A-Za-z0-9_./=:@+,-]+$ ]]; then line+=" $arg"; else line+=" '$arg'"; fi
  done
  printf '\n%s\n' "$line"
  "$@"
}

# train ARCH BRANCH [toy-agent options] [-- ckvc commit options]: train one interval, writing the checkpoint
# to ckpt/BRANCH and the run's config to configs/BRANCH.yaml, then commit it to BRANCH with its config,
# metrics and step. The commit prints the new ID on stdout (not needed here) and a summary on stderr.
train() {
  local arch=$1 branch=$2
  shift 2
  local toy_args=() commit_args=() out kv step='' metrics=()
  while [[ $# -gt 0 && $1 != -- ]]; do toy_args+=("$1"); shift; done
  if [[ $# -gt 0 ]]; then shift; commit_args=("$@"); fi
  # (${a[@]+"${a[@]}"} is "${a[@]}" that macOS's bash 3.2 accepts for an empty array under set -u)
  out=$(show node "$TOY" --arch "$arch" --out "ckpt/$branch" --config "configs/$branch.yaml" ${toy_args[@]+"${toy_args[@]}"})
  echo "$out"
  for kv in ${out##*$'\n'}; do # the last line: step=2000 reward=85.78 loss=0.3768
    case $kv in
      step=*) step=${kv#step=} ;;
      *) metrics+=(--metric "$kv") ;;
    esac
  done
  show ckvc commit "ckpt/$branch" -b "$branch" -m "$arch step $step" --config "configs/$branch.yaml" \
    ${metrics[@]+"${metrics[@]}"} --step "$step" --run "$branch" ${commit_args[@]+"${commit_args[@]}"} >/dev/null
}

echo "ckvc phase workflow in $WORK"
echo "ckvc: $CKVC"

heading "Create a store (./.ckvc)"
show ckvc init

heading "Phase G2: train on branch phase-g2, a commit every 1000 steps"
# The first commit creates the branch; each later interval resumes from the checkpoint on disk.
train g2 phase-g2 --lr 1e-3
train g2 phase-g2 --lr 1e-3 --from ckpt/phase-g2
train g2 phase-g2 --lr 1e-3 --from ckpt/phase-g2

heading "Tag the best G2 agent by reward"
# The last checkpoint is not the best one: at this learning rate the policy collapsed after step 2000.
# `reward` ranks highest-first (names like loss rank lowest-first; --min/--max to say so).
show ckvc tag best-g2 --best reward -b phase-g2 -m "best phase-G2 agent by eval reward"
show ckvc show best-g2

heading "Phase G2+: continue from best-g2 with a lower learning rate"
# A branch that starts at best-g2: its first commit's parent is the best-g2 commit, plain history as in git.
show ckvc branch phase-g2plus best-g2
show ckvc checkout best-g2 --to init/best-g2
train g2 phase-g2plus --lr 3e-4 --from init/best-g2
train g2 phase-g2plus --lr 3e-4 --from ckpt/phase-g2plus

heading "Architecture branches warm-started from best-g2: LSTM, GRU, attention"
# New branches, one per architecture, created by their first commit. `--parent best-g2` records where the
# weights came from (the warm-start origin). On a new branch it is the first commit's only parent, recorded
# just like phase-g2plus's start (log --graph draws both forking off best-g2); on a branch that already has
# commits it would be added after the branch's previous commit. `ckvc best -b arch-lstm` ranks only the
# branch's own commits. The embedding and the policy and value heads are loaded from best-g2; the embedding
# stays frozen, so every branch shares its chunks with best-g2.
for arch in lstm gru attention; do
  train "$arch" "arch-$arch" --lr 5e-4 --seed 2 --steps 500 --from init/best-g2 -- --parent best-g2
  train "$arch" "arch-$arch" --lr 5e-4 --seed 2 --steps 500 --from "ckpt/arch-$arch"
done

heading "The whole history: every branch, tag and warm start"
show ckvc log --all --graph --metric reward

heading "The best agent of each architecture, tagged best-lstm, best-gru, best-attention"
for arch in lstm gru attention; do
  show ckvc best --metric reward -b "arch-$arch"
  show ckvc tag "best-$arch" --best reward -b "arch-$arch" -m "best $arch agent, warm-started from best-g2"
done

heading "Compare the best agents: configs, metrics, files, tensors"
# --stat reads no tensor data: one line per file and a summary.
show ckvc diff best-lstm best-gru --stat
# In full, on the tensors every architecture has: embed.weight is unchanged (the same chunks, not even read);
# the heads were trained apart from the same best-g2 start.
show ckvc diff best-gru best-attention --tensor 'embed.*' --tensor 'policy_head.*' --tensor 'value_head.*'

heading "What the store holds: unchanged tensors are stored once"
# Phase G2 updated only the embedding rows it saw: of the embedding's four 256 KiB chunks, one is stored anew.
show ckvc diff best-g2 phase-g2 --tensor embed.weight
show ckvc stats

heading "Pack the four best agents into one bundle and check it (no store needed)"
show ckvc pack best-g2 best-lstm best-gru best-attention -o best-agents.ckvb
show ckvc verify best-agents.ckvb --markdown

heading "Another site: pull the bundle into a fresh store, verify it, check out the winner"
show ckvc init site-b
show ckvc pull best-agents.ckvb --store site-b/.ckvc
show ckvc verify --read-data --store site-b/.ckvc
show ckvc checkout bundle/best-attention --to site-b/agent --store site-b/.ckvc
# The winner is the last attention checkpoint: compare with the files the training job wrote.
show diff -r site-b/agent ckpt/arch-attention
echo "byte-identical to what the training job wrote"

echo
echo "phase workflow finished: bundle verified, site-b verified clean, checkout byte-identical"

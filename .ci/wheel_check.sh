#!/usr/bin/env bash
# The wheel works without the repository: build it from the tracked sources, install it into a
# fresh venv outside the checkout, and run the console script and the Python API from another
# folder. Needs `make install` first (.venv): the fresh venv sees .venv's site-packages for the
# dependencies (torch & co, through a .pth path entry, so no download and no CUDA torch), but
# not its editable priorsep, so every `priors`/`separation` import comes from the wheel.
#   .ci/wheel_check.sh            # ~1 min; prints the wheel's size and each check
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="$REPO/.venv/bin/python"
[ -x "$PY" ] || { echo "wheel_check: $PY missing; run make install first" >&2; exit 1; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/priorsep-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" PYTHONNOUSERSITE=1 PYTHONPATH=

echo "== wheel_check: copy the tracked (and new, not ignored) files of $REPO"
# a copy, not the checkout itself: setuptools' in-tree build/ folder would keep deleted files
"$PY" - "$REPO" "$WORK/src" <<'EOF'
import os, shutil, subprocess, sys
repo, dst = sys.argv[1:]
names = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       check=True, capture_output=True).stdout.decode().split("\0")
for name in sorted({n for n in names if n and os.path.lexists(os.path.join(repo, n))}):
    os.makedirs(os.path.dirname(os.path.join(dst, name)), exist_ok=True)
    shutil.copy2(os.path.join(repo, name), os.path.join(dst, name), follow_symlinks=False)
EOF

echo "== wheel_check: build"
"$PY" -m pip wheel --no-deps -q "$WORK/src" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/priorsep-*.whl)"
"$PY" - "$WHEEL" "$REPO" <<'EOF'
import hashlib, stat, sys, zipfile
from pathlib import Path
wheel, repo = Path(sys.argv[1]), Path(sys.argv[2])
z = zipfile.ZipFile(wheel)
infos = {i.filename: i for i in z.infolist()}
need = ["separation/cli.py", "separation/commands/separate.py", "separation/commands/models.py",
        "separation/models.py", "priors/checkpoint.py", "separation/pretrained/toy.pt", "separation/pretrained/toy-fast.pt"]
missing = [n for n in need if n not in infos]
assert not missing, f"the wheel lacks {missing}"
links = [n for n, i in infos.items() if stat.S_ISLNK(i.external_attr >> 16)]
assert not links, f"the wheel holds symbolic links {links}"
tops = sorted({n.split("/")[0] for n in infos if not n.startswith("priorsep-")})
assert tops == ["priors", "separation"], f"unexpected top-level entries {tops}"
for name in ("toy.pt", "toy-fast.pt"):  # real file content, the same bytes as the repository's
    data = z.read(f"separation/pretrained/{name}")
    ref = (repo / "separation/pretrained" / name).read_bytes()
    assert hashlib.sha256(data).digest() == hashlib.sha256(ref).digest() and len(data) > 2**20, name
print(f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MB, {len(infos)} files, "
      f"models {', '.join(n.split('/')[-1] for n in infos if n.startswith('separation/pretrained/'))}")
EOF

echo "== wheel_check: install into a fresh venv (dependencies from $REPO/.venv)"
"$PY" -m venv --without-pip "$WORK/venv"
VPY="$WORK/venv/bin/python"
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$PY" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' | sort -u \
    > "$SITE/priorsep_ci_deps.pth"  # plain path lines: the .venv's own .pth files (its editable priorsep) stay off
"$PY" -m pip --python "$VPY" install --no-deps --no-index -q "$WHEEL"

mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
PRIORSEP="$WORK/venv/bin/priorsep"
"$VPY" - "$WORK/venv" <<'EOF'
import sys
from pathlib import Path
import priors, separation
for mod in (priors, separation):
    assert Path(mod.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), f"{mod.__name__} from {mod.__file__}"
print("imports from the wheel:", Path(separation.__file__).parent)
EOF

echo "== wheel_check: priorsep --help"
"$PRIORSEP" --help | head -3
"$PRIORSEP" --help | grep -q " models " || { echo "wheel_check: no models subcommand" >&2; exit 1; }

echo "== wheel_check: priorsep models"
"$PRIORSEP" models | tee models.txt
grep -q "^toy (default)" models.txt && grep -q "^toy-fast" models.txt && grep -q "$WORK/venv" models.txt

echo "== wheel_check: priorsep separate (default model) on a toy-set file and on a 44.1 kHz stereo file"
"$VPY" - <<'EOF'
import numpy as np, soundfile as sf
t = np.arange(14_700 * 2) / 14_700
toy = 0.25 * (np.sin(2 * np.pi * 220 * t) + np.sign(np.sin(2 * np.pi * 330 * t)))
sf.write("toy.wav", toy.astype(np.float32), 14_700, subtype="FLOAT")
song = np.resize(toy, 44_100)
sf.write("song.wav", np.stack([song, -song], 1).astype(np.float32), 44_100, subtype="FLOAT")
EOF
"$PRIORSEP" separate toy.wav -o out --quiet 2> toy.err
for s in sin square saw triangle; do [ -s "out/$s.wav" ] || { echo "wheel_check: out/$s.wav missing" >&2; exit 1; }; done
[ ! -s toy.err ] || { echo "wheel_check: unexpected stderr on a toy-set file:" >&2; cat toy.err >&2; exit 1; }
ls out
"$PRIORSEP" separate song.wav -o out_song --model toy-fast --quiet 2> song.err
cat song.err
[ "$(grep -c '^priorsep: warning: song.wav' song.err)" = 1 ] && [ "$(wc -l < song.err)" = 1 ]
"$VPY" -c "import soundfile as sf; i = sf.info('out_song/saw.wav'); assert (i.samplerate, i.channels, i.frames) == (44100, 2, 44100), i"

echo "== wheel_check: Python API"
"$VPY" -c "import separation, numpy as np; out = separation.separate(np.zeros(14700, 'float32'), 14700); \
assert set(out) == {'sin','square','saw','triangle'} and all(v.shape == (14700,) for v in out.values()); print('separation.separate: ok')"

echo "== wheel_check: a repository-relative default outside the checkout is a one-line error"
if "$PRIORSEP" diagnose --n 1 --length 64 --sigma 0 --quiet 2> diag.err; then
    echo "wheel_check: diagnose without --priors should fail outside the checkout" >&2; exit 1
fi
cat diag.err
[ "$(wc -l < diag.err)" = 1 ] && grep -q "^priorsep: error: checkpoints/toy: not found" diag.err
echo "== wheel_check: ok"

"""Probe: wall time of `priorsep separate` on a 60 s toy mixture (20 toy test crops of 3 s end to
end, 14.7 kHz) with the default separator and with the fast one in bfloat16, and on a 1 s file
(start-up). Writes into a temporary folder.

    OMP_NUM_THREADS=2 python experiments/separate_speed.py     # ≈ 40 s
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from separation.reference_data import reference_crops


if __name__ == "__main__":
    SOURCES = ["sin", "square", "saw", "triangle"]
    FAST = ["--model", "checkpoints/toy_gpu/separator_elbo_fast.pt", "--precision", "bf16"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        crops, mix_scale = reference_crops(SOURCES, 20, 44_100, seed=0)
        sf.write(tmp / "mix60.wav", (mix_scale * crops.sum(1)).reshape(-1).numpy(), 14_700, subtype="FLOAT")
        sf.write(tmp / "mix1.wav", np.full(14_700, 0.01, np.float32), 14_700, subtype="FLOAT")
        for name, wav, extra in [("default", "mix60.wav", []), ("fast, bf16", "mix60.wav", FAST),
                                 ("fast, bf16, 1 s file", "mix1.wav", FAST)]:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "separation.cli", "separate", str(tmp / wav), "-o", str(tmp / name),
                            "--quiet", *extra], check=True)
            print(f"{name}: {time.perf_counter() - t0:.1f} s wall", flush=True)

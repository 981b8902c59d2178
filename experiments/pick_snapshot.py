"""Pick each wide prior's snapshot whose free samples best match real TRAIN crops
(rms ratio in 0.8–1.25, then highest autocorrelation peak); only isolated-source data is read.
Usage: python experiments/pick_snapshot.py RUNS_DIR OUT_DIR (RUNS_DIR/<source>64/snap_*.ckpt: copies of
last.ckpt taken every 250 steps during training, RUNS_DIR/<source>64.pt: the final export)."""
import glob, json, sys, torch, numpy as np
from priors.checkpoint import load_prior, save_prior
from priors.data import TOY_SAMPLE_RATE, TOY_SOURCES, ToyGenerator
from priors.diagnose import signal_statistics


if __name__ == "__main__":
    torch.set_num_threads(2)
    g = ToyGenerator(); out = {}
    for k, s in enumerate(TOY_SOURCES):
        if s == "sin":
            continue
        real = torch.from_numpy(np.stack([g.crop("train", i, 0, 4096)[k] for i in range(32)])).float()
        r = signal_statistics(real, TOY_SAMPLE_RATE)
        r_ac, r_rms = r["autocorrelation_peak"], r["rms"]
        rows = []
        for f in sorted(glob.glob(f"{sys.argv[1]}/{s}64/snap_*.ckpt")) + [f"{sys.argv[1]}/{s}64.pt"]:
            p, meta = load_prior(f)
            step = torch.load(f, weights_only=False).get("global_step", "final") if f.endswith(".ckpt") else "final"
            torch.manual_seed(0)
            x = p.generate(32, 4096, sigma=0.0)[:, 1024:]
            stats = signal_statistics(x, TOY_SAMPLE_RATE)
            ac, rms = stats["autocorrelation_peak"], stats["rms"]
            rows.append({"file": f, "step": step, "ac": ac, "rms_ratio": rms / r_rms})
            print(s, step, f"ac={ac:.2f} (real {r_ac:.2f}) rms ratio={rms / r_rms:.2f}", flush=True)
        ok = [r for r in rows if 0.8 <= r["rms_ratio"] <= 1.25] or rows
        best = max(ok, key=lambda r: r["ac"])
        out[s] = {"chosen": best, "candidates": rows}
        p, meta = load_prior(best["file"])
        save_prior(f"{sys.argv[2]}/{s}.pt", p, {k2: v for k2, v in meta.items() if k2 not in ("hash",)})
        print("chosen", s, best, flush=True)
    json.dump(out, open(f"{sys.argv[2]}/pick_snapshot.json", "w"), indent=1)

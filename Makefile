# priorsep: two commands, `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
TORCH_VERSION ?= 2.13.0

.PHONY: install test test-all demo results chorales chorales-results clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg; \
	  else \
	    echo "priorsep: ffmpeg is missing; install it (e.g. sudo apt-get install ffmpeg) for MUSDB/museval"; \
	  fi; }
	@{ command -v fluidsynth >/dev/null 2>&1 && [ -n "$$(ls /usr/share/sounds/sf2/*.sf2 /usr/share/soundfonts/*.sf2 2>/dev/null)" ]; } || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fluidsynth timgm6mb-soundfont; \
	  else \
	    echo "priorsep: fluidsynth or a GM soundfont is missing; install them (e.g. sudo apt-get install fluidsynth timgm6mb-soundfont) for make-chorales"; \
	  fi; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	# Users with GPUs: install your CUDA torch into .venv first, this step then keeps it.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m ""

demo: install
	$(VENV)/bin/priorsep demo --out demo_out

results: install
	# every table and figure of the README, from the shipped checkpoints and fixed seeds
	$(VENV)/bin/priorsep diagnose --priors checkpoints/toy --n 16 --length 4096 --sigma 0 0.01 0.05 0.1 0.3 \
	    --samples 16 --continuation 2048 --seed 0 --json results/diagnose_toy.json --plot results/diagnose_toy.png --quiet
	$(VENV)/bin/priorsep benchmark toy --methods mixture nmf variational sleep wake-sleep remix supervised \
	    --n 256 --length 16384 --seed 0 --json results/toy_benchmark.json --plot results/toy_benchmark.png --quiet
	$(VENV)/bin/priorsep benchmark toy --methods mixture langevin variational --n 4 --length 16384 --seed 0 \
	    --json results/toy_benchmark_langevin.json --quiet
	$(VENV)/bin/priorsep diagnose --priors checkpoints/toy_wide --n 16 --length 4096 --sigma 0 0.01 0.05 0.1 0.3 \
	    --samples 16 --continuation 2048 --seed 0 --json results/diagnose_toy_wide.json --plot results/diagnose_toy_wide.png --quiet
	$(VENV)/bin/priorsep benchmark toy --methods mixture sleep --n 256 --length 16384 --seed 0 \
	    --checkpoints checkpoints/toy_wide --json results/toy_wide_benchmark.json --quiet
	$(VENV)/bin/priorsep diagnose --priors checkpoints/toy_gpu --n 16 --length 4096 --sigma 0 0.01 0.05 0.1 0.3 \
	    --samples 16 --continuation 2048 --seed 0 --json results/diagnose_toy_gpu.json --plot results/diagnose_toy_gpu.png --quiet
	$(VENV)/bin/priorsep benchmark toy --methods mixture sleep wake-sleep remix variational variational-fast supervised \
	    --n 256 --length 16384 --seed 0 --checkpoints checkpoints/toy_gpu --json results/toy_gpu_benchmark.json --quiet
	$(VENV)/bin/priorsep benchmark toy --methods mixture variational variational-fast supervised --n 256 --length 16384 \
	    --seed 0 --checkpoints checkpoints/toy_gpu --precision bf16 --json results/toy_gpu_benchmark_bf16.json --quiet
	$(VENV)/bin/priorsep benchmark toy --methods mixture langevin variational variational-fast --n 2 --length 16384 \
	    --seed 0 --checkpoints checkpoints/toy_gpu --json results/toy_gpu_benchmark_langevin.json --quiet
	for s in 0 0.02 0.03 0.05; do $(VENV)/bin/priorsep diagnose --priors checkpoints/toy_gpu --split valid --n 16 \
	    --length 4096 --sigma 0 --samples 16 --sample-sigma $$s --seed 0 --quiet \
	    --json results/diagnose_toy_gpu_sample_sigma/valid_sigma_$$s.json; done
	for seed in 0 1; do $(VENV)/bin/priorsep diagnose --priors checkpoints/toy_gpu --split test --n 16 --length 4096 \
	    --sigma 0 --samples 16 --sample-sigma 0.03 --seed $$seed --quiet \
	    --json results/diagnose_toy_gpu_sample_sigma/test_sigma_0.03_seed$$seed.json \
	    --plot results/diagnose_toy_gpu_sample_sigma/test_sigma_0.03_seed$$seed.png; done

HELDOUT_SF2 := /usr/share/sounds/sf2/sf_GMbank.sf2
chorales: install
	$(VENV)/bin/priorsep make-chorales --out data/chorales
	# held-out timbre check: the test chorales rendered with csound-soundfont (never trained or selected on)
	@[ -f $(HELDOUT_SF2) ] || { if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends csound-soundfont; \
	  else echo "priorsep: $(HELDOUT_SF2) is missing (apt-get install csound-soundfont)"; exit 1; fi; }
	$(VENV)/bin/priorsep make-chorales --out data/chorales_csound --soundfont $(HELDOUT_SF2) --split test

# the chorale table of the README from the shipped checkpoints/chorales (needs `make chorales`;
# about 2.5 h on 2 CPU cores; each evaluation resumes where it stopped)
CHORALES := $(VENV)/bin/priorsep evaluate --root data/chorales --is-wav --fast --quiet
CHORALES_CSOUND := $(VENV)/bin/priorsep evaluate --root data/chorales_csound --is-wav --fast --quiet
chorales-results: install
	for b in mix irm nmf; do $(CHORALES) --baseline $$b --out results/chorales/$$b; done
	for m in supervised sleep wake_sleep; do $(CHORALES) --model checkpoints/chorales/separator_$$m.pt --out results/chorales/$$m; done
	$(CHORALES) --model checkpoints/chorales/separator_elbo.pt --out results/chorales/variational
	for b in mix irm; do $(CHORALES) --baseline $$b --max-tracks 2 --max-seconds 4 --out results/chorales/subset/$$b; done
	for m in supervised sleep wake_sleep elbo; do $(CHORALES) --model checkpoints/chorales/separator_$$m.pt --max-tracks 2 \
	    --max-seconds 4 --out results/chorales/subset/$$m; done
	$(CHORALES) --langevin checkpoints/chorales --langevin-levels 5 --langevin-steps 4 --max-tracks 2 --max-seconds 4 \
	    --out results/chorales/subset/langevin
	# the time-frequency design: mask separators (checkpoints/chorales_frame; `chorales` is the named model)
	for m in supervised elbo sleep remix_nmf remix wake_sleep; do $(CHORALES) --model checkpoints/chorales_frame/separator_$$m.pt \
	    --out results/chorales/mask_$$m; done
	$(CHORALES) --model chorales --out results/chorales/mask4096_distil_nmf4096
	$(CHORALES) --model checkpoints/chorales_frame_flow/separator_sleep.pt --out results/chorales/mask_sleep_flow
	$(CHORALES) --model checkpoints/chorales_frame/separator_mask4096_supervised.pt --out results/chorales/mask4096_supervised
	# the first teacher of `chorales`: NMF with a 4096-point STFT and Wiener masks (≈ 25 min on one thread)
	$(CHORALES) --baseline nmf --nmf-fft 4096 --nmf-power 2 --out results/chorales/nmf_wiener4096
	$(VENV)/bin/priorsep diagnose --priors checkpoints/chorales_frame --data data/chorales --n 16 --length 88200 --sigma 0 0.01 \
	    --samples 8 --temperature 0.5 --seed 0 --json results/diagnose_chorales_frame.json --plot results/diagnose_chorales_frame.png --quiet
	# the likelihood-ratio frame priors (checkpoints/chorales_frame_ratio; docs/results/chorales_frame_ratio.md)
	$(VENV)/bin/priorsep diagnose --priors checkpoints/chorales_frame_ratio --data data/chorales --n 16 --length 88200 --sigma 0 0.01 \
	    --samples 8 --temperature 0.5 --seed 0 --json results/diagnose_chorales_frame_ratio.json --plot results/diagnose_chorales_frame_ratio.png --quiet
	# the flow priors of whole log-mel crops (checkpoints/chorales_frame_flow; docs/results/chorales_frame_flow.md)
	$(VENV)/bin/priorsep diagnose --priors checkpoints/chorales_frame_flow --data data/chorales --n 16 --length 88200 --sigma 0 0.01 \
	    --samples 8 --temperature 0.7 --seed 0 --json results/diagnose_chorales_frame_flow.json --plot results/diagnose_chorales_frame_flow.png --quiet
	# held-out timbre (csound-soundfont renders of the test chorales); NMF with the TimGM6mb templates of results/chorales/nmf
	mkdir -p results/chorales_csound/nmf && cp results/chorales/nmf/nmf.pt results/chorales_csound/nmf/nmf.pt
	for b in mix irm nmf; do $(CHORALES_CSOUND) --baseline $$b --out results/chorales_csound/$$b; done
	$(CHORALES_CSOUND) --model checkpoints/chorales_frame/separator_supervised.pt --out results/chorales_csound/mask_supervised
	$(CHORALES_CSOUND) --model checkpoints/chorales_frame/separator_remix.pt --out results/chorales_csound/mask_remix
	$(CHORALES_CSOUND) --model chorales --out results/chorales_csound/mask4096_distil_nmf4096
	$(CHORALES_CSOUND) --model checkpoints/chorales_frame/separator_mask4096_supervised.pt --out results/chorales_csound/mask4096_supervised
	mkdir -p results/chorales_csound/nmf_wiener4096 && cp results/chorales/nmf_wiener4096/nmf.pt results/chorales_csound/nmf_wiener4096/nmf.pt
	$(CHORALES_CSOUND) --baseline nmf --nmf-fft 4096 --nmf-power 2 --out results/chorales_csound/nmf_wiener4096

clean:
	rm -rf $(VENV) demo_out runs lightning_logs .pytest_cache

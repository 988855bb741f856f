# Entry points of the workspace. `make test` is what CI runs; `make reproduce-<paper>` reruns a paper.
CARGO ?= cargo

.PHONY: data test fmt clippy unit check-results bench-kernels bench-train compare figures report reproduce-all \
        reproduce-pocketnn reproduce-integer-qat reproduce-f8net reproduce-mixed-precision-mcu reproduce-adaptivfloat \
        reproduce-schemes

data:
	./scripts/fetch_data.sh

test: data fmt clippy unit check-results

fmt:
	$(CARGO) fmt --all -- --check

# Clippy and the tests build the GPU backends' code too, each in one pass over the workspace (a pass
# per feature set would compile Burn again): clippy type-checks wgpu, vulkan and cuda; CUDA's build
# script downloads CubeCL's LLVM bundle, which an offline machine cannot, and DOCS_RS=1 makes it skip
# that download, which a check does not need (a GPU user's build fetches it once). The tests build
# with wgpu, so the GPU test trains on wgpu as on flex: on the machine's GPU, or on Mesa's software
# Vulkan driver (.ci/run installs it; without either that test says it skipped).
GPU_CHECK_FEATURES = quant-train/wgpu,quant-train/vulkan,quant-train/cuda

clippy:
	DOCS_RS=1 $(CARGO) clippy --workspace --all-targets --features $(GPU_CHECK_FEATURES) -- -D warnings

unit:
	$(CARGO) test --workspace --features quant-train/wgpu

# The committed cells and claims tables are what the committed results give, and every committed run has
# clean provenance (legacy runs without recorded source state are counted, not failed).
check-results:
	$(CARGO) run -p repro -- compare --check --summary
	$(CARGO) run -p repro -- report --check
	$(CARGO) run -p repro -- provenance

bench-kernels:
	$(CARGO) run --release -p quant-core --bin bench-kernels
	$(CARGO) run -p quant-train --bin bench-burn-matmul
	python3 scripts/bench_onnxruntime.py

# One training step of every model the papers train (Burn, float and QAT), then the same architectures
# in PyTorch (its own .venv-torch) and the ratios; the workspace's dev profile is optimised, as for the
# training binaries.
bench-train:
	$(CARGO) build -p train-bench
	target/debug/bench-train --burn-ops
	python3 scripts/bench_torch_train.py

reproduce-pocketnn: data
	$(CARGO) run -p pocketnn -- reproduce --profile full
	$(CARGO) run -p repro -- compare --paper pocketnn

reproduce-mixed-precision-mcu: data
	$(CARGO) build -p mixed-precision-mcu
	target/debug/mixed-precision-mcu tables --profile full
	target/debug/mixed-precision-mcu qat --profile full --threads 2
	target/debug/mixed-precision-mcu latency --profile full
	$(CARGO) run -p repro -- compare --paper mixed-precision-mcu

reproduce-adaptivfloat: data
	$(CARGO) build -p adaptivfloat
	target/debug/adaptivfloat rmse --profile full
	target/debug/adaptivfloat accuracy --profile full --model all
	$(CARGO) run -p repro -- compare --paper adaptivfloat

reproduce-integer-qat: data
	$(CARGO) build -p integer-qat
	target/debug/integer-qat --profile full --dataset fashion-mnist all
	$(CARGO) run -p repro -- compare --paper integer-qat

reproduce-f8net: data
	$(CARGO) build -p f8net
	target/debug/f8net stats --profile full
	for m in resnet18 mobilenetv2 mobilenetv1 resnet50; do target/debug/f8net --model $$m --profile full || exit 1; done
	target/debug/f8net ablations --model mobilenetv1 --profile full
	$(CARGO) run -p repro -- compare --paper f8net

compare:
	$(CARGO) run -p repro -- compare

# Redraw the figures that are drawn from committed tables alone (no training); the others are drawn by
# the runs that measure them (f8net stats, mixed-precision-mcu latency, integer-qat latency).
figures:
	$(CARGO) build -p pocketnn -p adaptivfloat -p integer-qat -p f8net
	target/debug/pocketnn figures
	target/debug/adaptivfloat figures
	target/debug/integer-qat --profile full figures
	target/debug/f8net figures --profile full

# results/REPORT.md: per paper the claims, proxies, measured cells, figures and run time.
report: compare figures
	$(CARGO) run -p repro -- report

# The cross-scheme table: one MLP quantized by every scheme that applies to it, three seeds (a few
# minutes on 2 cores); results/schemes/mlp.csv and mlp.svg, the table in crates/schemes/README.md.
reproduce-schemes: data
	$(CARGO) run -p schemes -- run

reproduce-all: reproduce-pocketnn reproduce-integer-qat reproduce-f8net reproduce-mixed-precision-mcu reproduce-adaptivfloat reproduce-schemes

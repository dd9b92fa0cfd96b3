"""The language model: loading a registered model, a local folder or a GGUF file; templates and
response masking; the batched runner with shared-prefix reuse; the score cache; generation;
sentence embeddings; fine-tuning (full, LoRA, soft prompt) with the loss on response tokens.

May import ``tamis.base`` and ``tamis.data``.
"""

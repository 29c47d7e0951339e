"""Generators: chat messages in, text (or a token stream) out, behind one protocol."""

from __future__ import annotations

from ragtune.config import GeneratorConfig
from ragtune.generate.base import Generation, GenerationParams, Generator, Message, run_generation
from ragtune.generate.llama_cpp import LlamaCppGenerator
from ragtune.generate.openai_compat import OpenAICompatGenerator
from ragtune.generate.transformers_backend import TransformersGenerator

__all__ = ["Generation", "GenerationParams", "Generator", "Message", "load_generator", "run_generation"]


def load_generator(config: GeneratorConfig, adapter: str | None = None) -> Generator:
    """The configured backend; `adapter` overrides config.adapter (a tuned LoRA)."""
    adapter = adapter if adapter is not None else config.adapter
    if config.backend == "llama_cpp":
        return LlamaCppGenerator(
            config.model,
            context_window=config.context_window,
            threads=config.threads,
            lora_path=adapter or None,
        )
    if config.backend == "openai":
        return OpenAICompatGenerator(
            config.base_url,
            config.model,
            api_key_env=config.api_key_env,
            context_window=config.context_window,
            timeout_s=config.timeout_s,
        )
    return TransformersGenerator(config.model, adapter=adapter or None, context_window=config.context_window)


def params_from(config: GeneratorConfig) -> GenerationParams:
    return GenerationParams(
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        seed=config.seed,
        timeout_s=config.timeout_s,
    )

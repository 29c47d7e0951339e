"""transformers on a local model folder, optionally with a PEFT LoRA adapter (what tuning produces)."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, GenerateError
from ragtune.generate.base import GenerationParams, Message
from ragtune.models import hf_model_dir


class TransformersGenerator:
    def __init__(
        self, model: str, *, adapter: str | None = None, context_window: int = 2048, device: str | None = None
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")

        folder = hf_model_dir(model)
        self.name = model + (f"+{Path(adapter).name}" if adapter else "")
        self.context_window = context_window
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
            loaded: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
            self.model: Any = loaded.to(self.device)
        except (OSError, ValueError) as exc:
            raise GenerateError(f"cannot load the model in {folder}: {exc}") from exc
        if adapter:
            if not (Path(adapter) / "adapter_config.json").is_file():
                raise ConfigError(
                    f"adapter {adapter!r} is not a PEFT adapter folder (no adapter_config.json)"
                )
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, adapter)
        self.model.eval()

    def _prompt_ids(self, messages: Sequence[Message]) -> Any:
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return int(self._prompt_ids(messages)["input_ids"].shape[-1])

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = {k: v.to(self.device) for k, v in self._prompt_ids(messages).items()}
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=params.timeout_s
        )
        torch.manual_seed(params.seed)
        sampling = (
            {"do_sample": True, "temperature": params.temperature}
            if params.temperature > 0
            else {"do_sample": False}
        )
        kwargs = {
            **inputs,
            "max_new_tokens": params.max_tokens,
            "streamer": streamer,
            "pad_token_id": self.tokenizer.eos_token_id,
            **sampling,
        }
        if params.stop:
            kwargs["stop_strings"] = list(params.stop)
            kwargs["tokenizer"] = self.tokenizer
        worker = threading.Thread(target=self._generate, args=(kwargs,), daemon=True)
        worker.start()
        yield from streamer
        worker.join()

    def _generate(self, kwargs: dict[str, Any]) -> None:
        import torch

        with torch.inference_mode():
            self.model.generate(**kwargs)

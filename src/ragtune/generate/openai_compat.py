"""Any OpenAI-compatible chat endpoint: vLLM, llama.cpp's server, Ollama, OpenAI, or ragtune serve."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from ragtune.errors import ConfigError, GenerateError
from ragtune.generate.base import GenerationParams, Message


class OpenAICompatGenerator:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        context_window: int = 8192,
        timeout_s: float = 120.0,
    ) -> None:
        if not base_url:
            raise ConfigError("generator.base_url is required for the openai backend")
        from openai import OpenAI

        self.name = f"{base_url}#{model}"
        self.model = model
        self.base_url = base_url
        self.context_window = context_window
        key = os.environ.get(api_key_env) or "not-needed"
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=0)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """An estimate (about 4 characters a token): the endpoint's tokenizer is not visible from here."""
        return sum(len(m["content"]) // 4 + 4 for m in messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                seed=params.seed,
                stop=list(params.stop) or None,
                stream=True,
            )
            chunk: Any
            for chunk in response:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.AuthenticationError as exc:
            raise GenerateError(
                f"{self.base_url} rejected the API key (401); check the key's environment variable"
            ) from exc
        except openai.APITimeoutError as exc:
            raise GenerateError(f"{self.base_url} did not answer in time; raise generator.timeout_s") from exc
        except openai.APIConnectionError as exc:
            raise GenerateError(f"cannot reach {self.base_url}: {exc.__cause__ or exc}") from exc
        except openai.APIStatusError as exc:
            raise GenerateError(f"{self.base_url} answered {exc.status_code}: {exc.message}") from exc

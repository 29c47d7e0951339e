"""Progress bars: one look for every long job (sync has its own), and a callback for HF trainers."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def progress_bar(label: str, console: Console, show: bool) -> Progress:
    """A transient bar with a count, a free-text `info` field and the time left."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=True,
    )


def progress_callback(console: Console, show: bool, label: str = "training") -> Any:
    """A transformers TrainerCallback drawing a rich progress bar with the latest loss and tokens/s."""
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        """A progress bar with the latest loss and training tokens/s."""

        def __init__(self) -> None:
            self.progress = progress_bar(label, console, show)
            self.task: Any = None
            self.started = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=state.max_steps, completed=state.global_step, info=""
            )
            self.started = time.perf_counter()
            self.first_tokens = state.num_input_tokens_seen

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            logs = logs or {}
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            speed = (state.num_input_tokens_seen - self.first_tokens) / elapsed
            loss = logs.get("loss", logs.get("eval_loss"))
            if loss is not None:
                rate = f" · {speed:.0f} tokens/s" if speed > 0 else ""
                self.progress.update(self.task, info=f"loss {loss:.3f}{rate}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.progress.stop()

    return RichProgress()

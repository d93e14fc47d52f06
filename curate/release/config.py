"""The `release:` section of a recipe: how curated (and synthetic) documents become a
versioned dataset release for a training team."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from curate.core.section import Section

# The largest bucket weight (copies of a document): gains from repeating data fade after ~4
# epochs and vanish by ~16 (Muennighoff et al. 2023, "Scaling Data-Constrained Language
# Models"); Nemotron-CC repeats its best buckets a few times. Above 10 a typo ({19: 30}) is
# likelier than intent, so it is refused.
MAX_BUCKET_WEIGHT = 10.0


class MixConfig(Section):
    """Which documents go in, in what proportion. Sizes are counted in `unit`s."""

    # Share of the release (in `unit`s) that is synthetic. null: the natural share, i.e.
    # everything the inputs hold (then cut down proportionally to `budget`, if set).
    synthetic_fraction: float | None = Field(default=None, ge=0, le=1)
    # Total size of the release in `unit`s; 0 = as large as the inputs and the fraction allow.
    # A budget the inputs cannot fill is an error, never a silently smaller release.
    budget: int = Field(default=0, ge=0)
    # tokens: what a training team plans in (needs count_tokens); documents: no tokenizer needed.
    unit: Literal["tokens", "documents"] = "tokens"
    # Fixed seed: the same inputs and config give the same documents in the same order, byte
    # for byte, on every machine.
    seed: int = 0
    # Documents held out as the `validation` split (taken from the shuffled order, so they are
    # a uniform sample of web and synthetic alike). 0 = no validation split.
    validation_fraction: float = Field(default=0.0, ge=0, le=0.5)
    # Cap on the validation split: 1% of a billion documents is more than anyone evaluates on;
    # 0 = no cap.
    validation_max_documents: int = Field(default=0, ge=0)
    # Weight of each quality bucket's web documents (quality_bucket 0-19, the combined score cut
    # in 20; unlisted buckets and unscored documents: 1), as Nemotron-CC weights its buckets.
    # w <= 1 is the share kept: {0: 0, 1: 0, 2: 0.5} drops the two bottom buckets and half of the
    # third. w = k + f > 1 repeats each document of the bucket k times, plus once more with
    # probability f ({19: 3, 18: 2.5}): copies keep their `id` and are told apart by the `copy`
    # column (0 = the first; a release without weights above 1 has no such column), are spread
    # through the shuffled train split, and never go to validation (validation_fraction is then a
    # share of the distinct documents, each held out once, its extra copies left out and counted).
    # `budget` and `synthetic_fraction` count the copies: a budget is what the trainer reads.
    # Drawn with their own seeded generator, so the other draws stay the same.
    bucket_weights: dict[int, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bucket_weights(self) -> "MixConfig":
        for bucket, weight in self.bucket_weights.items():
            if not 0 <= bucket <= 19:
                raise ValueError(f"release.mix.bucket_weights has bucket {bucket}. Fix: use quality buckets 0-19")
            if not 0 <= weight <= MAX_BUCKET_WEIGHT:
                raise ValueError(
                    f"release.mix.bucket_weights[{bucket}]={weight}: a weight is 0-{MAX_BUCKET_WEIGHT:g} "
                    "(below 1 the share kept, above 1 the copies of each document). "
                    f"Fix: use a weight from 0 to {MAX_BUCKET_WEIGHT:g}, or lower the weights of the other buckets"
                )
        return self

    @property
    def repeats(self) -> bool:
        """Some bucket is repeated: the release has a `copy` column."""
        return any(w > 1 for w in self.bucket_weights.values())


class ReleaseConfig(Section):
    # Build a release at the end of `curate run` (off by default: counting tokens costs about
    # as much CPU as writing the shards; `curate release OUTPUT` builds one later).
    enabled: bool = False
    # "" = the run's name. The release lands in OUTPUT/releases/<name>/<version>/.
    name: str = Field(default="", pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # "" = the next free vN (v1, v2, ...). An existing version is never overwritten.
    version: str = Field(default="", pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # "default": the SmolLM2 tokenizer of the embedded model (offline). Otherwise a Hugging Face
    # tokenizer folder (with tokenizer.json) or a tokenizer.json file.
    tokenizer: str = "default"
    # Off: num_tokens is null and the manifest has no token totals (mix.unit must be documents).
    count_tokens: bool = True
    # Threads that count (and, for the tokenized formats, encode) tokens: the tokenizer's own
    # Rust thread pool, shared by every shard being written. 0 = every core this process may
    # use (its CPU affinity: taskset, a container's or Slurm job's cpuset), because counting
    # is ~90% of a default release's CPU and the release runs after the stages' workers are
    # done. A number leaves the other cores to other jobs. Counts do not depend on it.
    token_threads: int = 0
    mix: MixConfig = Field(default_factory=MixConfig)
    # 256 MB shards, as for run outputs: ~4k files per TB, seconds to download one, and enough
    # shards for a loader to shuffle at shard level. Shards of a split are balanced in size.
    shard_target_mb: float = Field(default=256.0, gt=0)
    # 32 MB of (uncompressed) text per row group: a streaming loader (HF datasets streaming,
    # pyarrow.dataset) reads one row group at a time, so this bounds its memory per worker,
    # while staying well above the ~1 MB where per-group overhead starts to show.
    row_group_mb: float = Field(default=32.0, gt=0)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    compression_level: int = Field(default=3, ge=1, le=22)  # zstd 3: ~4x on text at >100 MB/s
    # The shuffle holds this much of the selected documents (Arrow, uncompressed) in memory;
    # a larger release is first spilled to temporary Arrow files in groups of this size.
    shuffle_memory_mb: float = Field(default=2048.0, gt=0)
    # PNG plots beside the dataset card (matplotlib).
    plots: bool = True
    # What is written: the Parquet shards (always: every other format is written from the
    # same rows and checked against them), plus pre-tokenized shards for trainers:
    # megatron (Megatron-LM / NeMo / GPT-NeoX indexed dataset, .bin + .idx) and nanotron
    # (datatrove's tokenized .ds files). One tokenized shard per Parquet shard, same order.
    formats: list[Literal["parquet", "megatron", "nanotron"]] = Field(default_factory=lambda: ["parquet"])
    # Written after every document in the tokenized formats. <|endoftext|>: the document
    # separator SmolLM2 (the default tokenizer, id 0) and GPT-2-style tokenizers were trained with.
    eos_token: str = "<|endoftext|>"

    @field_validator("token_threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                "token_threads is a number of threads. Fix: set release.token_threads to 0 (every core this process "
                "may use) or to a thread count such as 2"
            )
        return value

    @model_validator(mode="after")
    def _tokens_needed(self) -> ReleaseConfig:
        sized = self.mix.budget > 0 or self.mix.synthetic_fraction is not None
        if sized and self.mix.unit == "tokens" and not self.count_tokens:
            raise ValueError(
                "mix.unit is tokens but count_tokens is false; set release.count_tokens=true or "
                "release.mix.unit=documents"
            )
        if "parquet" not in self.formats:
            raise ValueError(
                f"formats {self.formats} lacks parquet; the Parquet shards are always written (the tokenized formats "
                "are written from them and checked against them). "
                "Fix: set release.formats to [parquet] plus megatron and/or nanotron, e.g. [parquet,megatron]"
            )
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(
                f"formats {self.formats} names a format twice. Fix: list each of parquet, megatron, nanotron once"
            )
        if self.tokenized_formats and not self.count_tokens:
            raise ValueError(
                f"formats {self.formats} need the tokenizer but count_tokens is false. Fix: set "
                "release.count_tokens=true, or release.formats=[parquet]"
            )
        return self

    @property
    def tokenized_formats(self) -> list[str]:
        return [f for f in self.formats if f != "parquet"]

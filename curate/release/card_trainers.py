"""The card's section for training teams: how to point Megatron-LM, NeMo and nanotron at the
tokenized shards of a release (release.formats), with the tokenizer named. Flags and keys as
the trainers define them: Megatron-LM's --train-data-path / --valid-data-path ("weight
prefix" pairs) and --tokenizer-type HuggingFaceTokenizer --tokenizer-model; NeMo 2's
PreTrainingDataModule(paths={...}); nanotron's NanosetDatasetsArgs (data_stages[].data.dataset:
dataset_folder, dataset_weights), which reads the tokenizer from the .ds.metadata files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.release.tables import num

MAX_LISTED = 4  # shards spelled out in the examples; the one-liner covers any number


def trainer_section(manifest: dict[str, Any], location: Path) -> list[str]:
    section = manifest["tokenized"]
    tok = manifest["tokenizer"]
    folder = str(Path(tok["path"]).parent) if tok["path"].endswith("tokenizer.json") else tok["path"]
    where = str(location)
    lines = [
        f"Pre-tokenized with **{tok['name']}** (`{folder}`, tokenizer.json sha256 {tok['sha256'][:16]}), one "
        "tokenized shard per Parquet shard,"
        f" same documents in the same order. Every document is followed by `{section['eos_token']}` (id "
        f"{section['eos_id']}), so a file holds"
        f" `num_tokens` + 1 tokens per document; tokens are {section['token_bytes']}-byte ids"
        f" ({', '.join(f'{k}: {v}' for k, v in section['dtype'].items())}).",
        "",
        "| format | files | documents | tokens (end-of-document included) |",
        "|---|---|---|---|",
    ]
    for fmt, t in section["totals"].items():
        lines.append(f"| {fmt} | {num(t['files'])} | {num(t['sequences'])} | {num(t['tokens'])} |")
    lines.append("")
    splits = list(manifest["splits"])
    if "megatron" in section["totals"]:
        lines += _megatron(section, where, folder, splits)
    if "nanotron" in section["totals"]:
        lines += _nanotron(where, folder, splits)
    lines += [
        "Provenance: `tokens-index/<shard>.parquet` gives, per sequence, its first token and its document (`id`, "
        "`source`, `offset`);"
        f" `curate lookup {where} --file megatron/train-00000-of-NNNNN.bin --token N` prints the document a token "
        "belongs to.",
    ]
    return lines


def _pairs(section: dict[str, Any], split: str, where: str) -> list[str]:
    """`weight prefix` pairs, weights = tokens, so each shard is sampled in proportion to its size."""
    return [
        f"{e['tokens']} {where}/{e['files'][0]['path'].removesuffix('.bin')}"
        for e in section["shards"]
        if e["format"] == "megatron" and e["split"] == split
    ]


def _megatron(section: dict[str, Any], where: str, folder: str, splits: list[str]) -> list[str]:
    flag = {"train": "--train-data-path", "validation": "--valid-data-path"}
    lines = ["**Megatron-LM** (`pretrain_gpt.py`; GPT-NeoX reads the same `.bin`/`.idx` pairs):", "", "```bash"]
    for split in splits:
        pairs = _pairs(section, split, where)
        more = f" ...  # {len(pairs)} shards" if len(pairs) > MAX_LISTED else ""
        lines.append(f"{flag[split]} {' '.join(pairs[:MAX_LISTED])}{more} \\")
    lines += [f"--tokenizer-type HuggingFaceTokenizer --tokenizer-model {folder}", "```", ""]
    lines += [
        "Every pair of a split, for any number of shards (weights = tokens):",
        "",
        "```bash",
        f"cd {where} && python -c \"import json; m = json.load(open('manifest.json')); "
        "print(' '.join(f\\\"{e['tokens']} $PWD/{e['files'][0]['path'][:-4]}\\\" for e in m['tokenized']['shards'] if "
        "e['format'] == 'megatron' and e['split'] == 'train'))\"",
        "```",
        "",
        "With separate train and validation paths Megatron-LM ignores `--split`. `--eod-mask-loss` / "
        "`--reset-attention-mask`"
        f" look for the tokenizer's eod id: documents here end with id {section['eos_id']}.",
        "",
        "**NeMo 2** (same files):",
        "",
        "```python",
        "from nemo.collections import llm",
        "from nemo.collections.common.tokenizers.huggingface.auto_tokenizer import AutoTokenizer",
        "",
        "data = llm.PreTrainingDataModule(",
    ]
    flat = lambda split: [x for pair in _pairs(section, split, where)[:MAX_LISTED] for x in pair.split(" ", 1)]  # noqa: E731
    if "validation" in splits:
        # NeMo reads train, validation and test from a dict (all three keys); no test split here.
        lines += [
            "    paths={",
            f"        'train': {flat('train')!r},",
            f"        'validation': {flat('validation')!r},",
            f"        'test': {flat('validation')!r},  # no test split: the validation shards",
            "    },",
        ]
    else:
        lines += [
            f"    paths={flat('train')!r},  # one blend, cut by split= (this release has no validation split)",
            "    split='99,1,0',",
        ]
    lines += [
        "    seq_length=2048,",
        f"    tokenizer=AutoTokenizer({folder!r}),",
        ")",
        "```",
        "",
    ]
    return lines


def _nanotron(where: str, folder: str, splits: list[str]) -> list[str]:
    return [
        "**nanotron** (Nanosets read datatrove's `.ds` files; `run_train.py --config-file config.yaml`):",
        "",
        "```yaml",
        "data_stages:",
        "- name: stable",
        "  start_training_step: 1",
        "  data:",
        "    seed: 42",
        "    num_loading_workers: 1",
        "    dataset:",
        f"      dataset_folder: [{where}/nanotron/train]",
        "      dataset_weights: [1]",
        "tokenizer:",
        f"  tokenizer_name_or_path: {folder}",
        "```",
        "",
        f"nanotron takes the tokenizer name and token size from the `.ds.metadata` files (`{folder}|2` or `|4`): that "
        "folder must exist"
        " on the training machine (copy it there, or rebuild the release with `release.tokenizer` set to where it "
        "will be)." + (f" Validation shards: `{where}/nanotron/validation`." if "validation" in splits else ""),
        "",
    ]

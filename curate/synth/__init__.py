"""Synthetic data: seeds from the curated corpus, prompts, generation through a curate.llm engine,
post-processing (language, decontamination, quality), judging, and the corpus's own dedup."""

"""Language-model engines and the embedded default model, below every stage that prompts a model
(curate.synth generates with them, curate.quality annotates with them, curate.release counts tokens
with the default model's tokenizer). Importing this package imports nothing else; vLLM and torch
load when an engine opens."""

"""One module per engine kind (vllm_local, openai_api, vllm_server), the contract they share (base), and
what they need around them (vllm_setup, api_key). curate.llm.engine.open_engine picks one."""

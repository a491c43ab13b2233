"""LLM backends behind one protocol (base.py): embedded llama.cpp, Ollama, OpenAI-compatible servers, auto."""

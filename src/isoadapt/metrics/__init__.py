"""Pure metric functions: retrieval (through ranx) and isotropy diagnostics."""

"""Pure metric functions: retrieval (trec_eval through pytrec_eval, cross-checked against ranx in the tests) and
isotropy diagnostics."""

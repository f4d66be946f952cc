"""Problems and what is built from them: loading and writing KodCode rows, verification, prompts,
HumanEval, dedup, mutants, public tests; the bundled problem files (bundled/)."""

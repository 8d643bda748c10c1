"""The scenario bench: parser, normalisation, Received-chain parsing and the runner
(docs/scenarios.md). Standard library only."""

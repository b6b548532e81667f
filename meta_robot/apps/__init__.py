"""The commands behind the CLI: record, evaluate, replay and demo a sim graph, each in one sim session."""

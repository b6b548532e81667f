"""The data engine: in-process, headless, parallel episodes stored as simulator states (see DESIGN.md)."""

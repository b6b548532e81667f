"""The skill registry (config/skills.yaml) and the predicates that ground it."""

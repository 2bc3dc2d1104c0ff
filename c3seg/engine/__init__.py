"""The machinery under the stages: the run folder, the stage records, shared training helpers, distributed, worker processes."""

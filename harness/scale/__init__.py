"""Fanning a suite out on an existing engine (a Kubernetes Indexed Job, a CI matrix):
deterministic shards of the trial list, the merge of their result directories, and the
manifests that run them. gatecrash schedules nothing itself."""

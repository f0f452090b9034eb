"""Running a tree: the engine, the policy protocol, what a policy sees, the caches, budgets and progress."""

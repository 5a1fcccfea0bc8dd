"""tokenroll: token-exact rollouts for multi-turn, tool-using LLM environments."""

"""One cycle of the agent: pull -> match -> evaluate -> plan -> push (see DESIGN.md)."""

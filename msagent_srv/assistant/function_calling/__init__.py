"""Function calling for models that lack it: a ReAct prompt in, `Action:`/`Action Input:` parsed out."""

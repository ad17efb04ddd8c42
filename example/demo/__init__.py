"""The example's one app: a page with a form that asks an LLM and shows the answer."""

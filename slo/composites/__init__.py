"""Composite SLOs: one objective, budget and burn-rate alerts for a user journey made of several SLOs.

`spec` (the document) and `core` (the math) are pure; `services`, `selectors` and `evaluation`
are the Django side. See docs/composites.md for the definitions.
"""

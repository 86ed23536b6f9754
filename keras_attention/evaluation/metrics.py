"""Sequence-level evaluation metrics."""


def exact_match(hypotheses, references):
    """Fraction of hypotheses equal to their reference (after stripping spaces)."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses for {len(references)} references; "
            "they must be aligned one to one."
        )
    if not references:
        raise ValueError("no references to compare with.")
    matches = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return matches / len(references)

"""Example JSONL transform: score Yelp businesses by ``stars * review_count``.

Referenced from a job spec as ``run.function: yelp_scores:add_review_score``. It is a field
adder: the processor decodes only ``stars`` and ``review_count`` from each line and appends
``review_score`` to the line's original bytes. A record without those fields, or with values
of the wrong type or out of range, is rejected with a reason naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from stepburst.records import adds_fields


class ReviewInputs(msgspec.Struct, frozen=True):
    """The two fields the score needs. Yelp's ``stars`` run from 1 to 5 in halves."""

    stars: Annotated[float, msgspec.Meta(ge=0, le=5)]
    review_count: Annotated[int, msgspec.Meta(ge=0)]


@adds_fields(reads=ReviewInputs, adds=("review_score",))
def add_review_score(business: ReviewInputs) -> dict[str, Any]:
    """``review_score = stars * review_count``."""
    return {"review_score": business.stars * business.review_count}

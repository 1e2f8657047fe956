"""The cost review, prepared (`costline review`, `costline serve --review-every`): per team and for the org, the
page a bi-weekly cost review needs — spend against budget, the trend against the previous period, the anomalies,
the top models with the cheaper-model hint, unpriced, usage-missing and untracked spend, and the budgets
`costline budgets suggest` would propose — as JSON, as HTML, and delivered to a webhook."""

from costline.processor.reports.review.build import Review, TeamReview, build_review, parse_period
from costline.processor.reports.review.deliver import DeliveryError, deliver
from costline.processor.reports.review.render import render_html, review_document

__all__ = ["DeliveryError", "Review", "TeamReview", "build_review", "deliver", "parse_period", "render_html",
           "review_document"]

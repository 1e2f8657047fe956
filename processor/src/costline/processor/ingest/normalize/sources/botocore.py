"""`opentelemetry-instrumentation-botocore`'s Bedrock Runtime spans (`extensions/bedrock.py`): Converse,
ConverseStream, InvokeModel and InvokeModelWithResponseStream.

Semconv names (`gen_ai.system=aws.bedrock`), but Bedrock's `inputTokens` EXCLUDE the cache
(`cacheReadInputTokens` and `cacheWriteInputTokens` are counted beside them), and the instrumentation writes them
as `gen_ai.usage.input_tokens` unchanged: the cache is outside the input for every model on Bedrock. The scope is
the instrumentation's for every AWS call (S3, SQS, ...): only spans naming a GenAI operation are calls.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from costline import attributes as A
from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc

BOTOCORE_SCOPE = "opentelemetry.instrumentation.botocore"
PROVIDER_AWS_BEDROCK = "aws.bedrock"

_EMBEDDING_MODEL_MARKS = (".titan-embed", ".embed-", "cohere.embed")


def _refine(values: MutableMapping[str, object]) -> None:
    # InvokeModel on a Titan or Cohere embeddings model is labelled `text_completion` by the instrumentation (0.66b2
    # names the operation by the model family): the model says what the call was.
    model = values.get("request_model")
    if values.get("operation") == A.OPERATION_TEXT_COMPLETION and isinstance(model, str) and any(
            mark in model for mark in _EMBEDDING_MODEL_MARKS):
        values["operation"] = A.OPERATION_EMBEDDINGS


SOURCE = Source(
    "botocore", SEMCONV, "operation", precedence=28, scopes=(BOTOCORE_SCOPE,), refine=_refine,
    cache_excluded_for=frozenset({PROVIDER_AWS_BEDROCK}),
    pairs_by_usage=True,  # records no response id on (some of) its calls
    doc=SourceDoc(
        tested="opentelemetry-instrumentation-botocore 0.66b2 on botocore 1.44.18 (recorded against a local server "
               "speaking Converse, ConverseStream and InvokeModel)",
        reports="semconv usage with cache read and creation; input WITHOUT the cache (Bedrock's `inputTokens`); "
                "no response id",
        reading="the cache is outside the input: input used as is, cache billed at its own rates; only spans with "
                "`gen_ai.operation.name` are calls (the scope covers every AWS call); InvokeModel on an embeddings model "
                "(labelled `text_completion` by it) read as `embeddings`",
        limits="InvokeModel bodies of models it does not parse give no usage (billed as usage missing)",
    ),
)

"""`opentelemetry-instrumentation-botocore`'s Bedrock Runtime spans (`extensions/bedrock.py`): Converse,
ConverseStream, InvokeModel and InvokeModelWithResponseStream.

Semconv names (`gen_ai.system=aws.bedrock`), but Bedrock's `inputTokens` EXCLUDE the cache
(`cacheReadInputTokens` and `cacheWriteInputTokens` are counted beside them), and the instrumentation writes them
as `gen_ai.usage.input_tokens` unchanged: the cache is outside the input for every model on Bedrock. The scope is
the instrumentation's for every AWS call (S3, SQS, ...): only spans naming a GenAI operation are calls.
"""

from __future__ import annotations

from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc

BOTOCORE_SCOPE = "opentelemetry.instrumentation.botocore"
PROVIDER_AWS_BEDROCK = "aws.bedrock"

SOURCE = Source(
    "botocore", SEMCONV, "operation", precedence=28, scopes=(BOTOCORE_SCOPE,),
    cache_excluded_for=frozenset({PROVIDER_AWS_BEDROCK}),
    doc=SourceDoc(
        tested="opentelemetry-instrumentation-botocore 0.66b2 on botocore 1.44.18 (recorded against a local server "
               "speaking Converse, ConverseStream and InvokeModel)",
        reports="semconv usage with cache read and creation; input WITHOUT the cache (Bedrock's `inputTokens`); "
                "no response id",
        reading="the cache is outside the input: input used as is, cache billed at its own rates; only spans with "
                "`gen_ai.operation.name` are calls (the scope covers every AWS call)",
        limits="InvokeModel bodies of models it does not parse give no usage (billed as usage missing)",
    ),
)

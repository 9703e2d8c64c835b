"""What Powertools for AWS Lambda (Python) takes for the job orderflow's consumer does.

The same batch file as `make bench` gives the Rust consumer (bench/sqs-batch-10.json: 10 SQS
records, each an SNS notification wrapping an OrderPlaced), through Powertools' BatchProcessor +
process_partial_response with the Parser's SqsRecordModel / SnsNotificationModel and a pydantic
model of OrderPlaced v2 that checks what orderflow's decoder checks (required fields, types,
positive quantities and amounts, total = sum of the items). The record handler does nothing.

Printed as one JSON object on stdout (read by `orderflow-local bench`):
  per_record_us   warm, from the event's bytes (json.loads, as Lambda's runtime does) to the
                  partial batch response, divided by the records; median of `rounds` rounds
  cold_start_ms   a fresh interpreter: imports + the three boto3 clients (SNS, SQS, DynamoDB)
                  the functions build, median of `cold_runs` processes (exec to done)
  versions        Python, aws-lambda-powertools, pydantic, boto3

Usage: python powertools_bench.py BATCH_FILE [--rounds N] [--cold-runs N]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from typing import List, Optional
from uuid import UUID

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import SnsNotificationModel, SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json, Literal
from pydantic import AwareDatetime, BaseModel, Field, model_validator

NonEmpty = Field(min_length=1)


class Address(BaseModel):
    name: str = NonEmpty
    line1: str = NonEmpty
    line2: Optional[str] = None
    city: str = NonEmpty
    postalCode: str = NonEmpty
    country: str = Field(min_length=2, max_length=2)


class OrderItem(BaseModel):
    sku: str = NonEmpty
    quantity: int = Field(gt=0)
    unitPrice: Decimal = Field(gt=0)


class OrderPlacedData(BaseModel):
    orderId: str = NonEmpty
    customerId: str = NonEmpty
    items: List[OrderItem] = Field(min_length=1)
    total: Decimal = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    customerEmail: Optional[str] = None
    shippingAddress: Optional[Address] = None

    @model_validator(mode="after")
    def total_is_the_sum_of_the_items(self):
        if sum(i.quantity * i.unitPrice for i in self.items) != self.total:
            raise ValueError("total is not the sum of the items")
        return self


class OrderPlaced(BaseModel):
    eventId: UUID
    eventType: Literal["OrderPlaced"]
    eventVersion: Literal[2]
    occurredAt: AwareDatetime
    aggregateId: str = NonEmpty
    correlationId: str = NonEmpty
    causationId: Optional[str] = None
    source: str = NonEmpty
    data: OrderPlacedData

    @model_validator(mode="after")
    def aggregate_is_the_order(self):
        if self.aggregateId != self.data.orderId:
            raise ValueError("aggregateId is not data.orderId")
        return self


class OrderPlacedNotification(SnsNotificationModel):
    Message: Json[OrderPlaced]


class OrderPlacedRecord(SqsRecordModel):
    body: Json[OrderPlacedNotification]


processor = BatchProcessor(event_type=EventType.SQS, model=OrderPlacedRecord)


def record_handler(record: OrderPlacedRecord) -> None:
    """The no-op handler orderflow's benchmark dispatches to."""


def handler(event: dict, context) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


COLD = """
import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SnsNotificationModel, SqsRecordModel
session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
for service in ("sns", "sqs", "dynamodb"):
    session.client(service, endpoint_url="http://127.0.0.1:9")
"""


def warm(raw: bytes, rounds: int) -> float:
    records = len(json.loads(raw)["Records"])
    response = handler(json.loads(raw), None)
    if response["batchItemFailures"]:
        sys.exit(f"the batch file does not parse under Powertools: {response}")
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(20):
            handler(json.loads(raw), None)
        per_round.append((time.perf_counter() - start) / 20 / records * 1e6)
    return statistics.median(per_round)


def cold(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", COLD], check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("batch")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--cold-runs", type=int, default=10)
    args = parser.parse_args()
    raw = open(args.batch, "rb").read()
    from importlib.metadata import version

    print(
        json.dumps(
            {
                "per_record_us": warm(raw, args.rounds),
                "cold_start_ms": cold(args.cold_runs),
                "versions": {
                    "python": sys.version.split()[0],
                    "aws-lambda-powertools": version("aws-lambda-powertools"),
                    "pydantic": version("pydantic"),
                    "boto3": version("boto3"),
                },
            }
        )
    )


if __name__ == "__main__":
    main()

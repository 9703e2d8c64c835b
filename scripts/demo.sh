#!/usr/bin/env bash
# The publishing half of the orderflow flow, against the emulator named by AWS_ENDPOINT_URL
# (make run starts one with scripts/with-moto.sh):
#   1. one SNS topic; per service a queue, a DLQ and a redrive policy, subscribed with raw
#      delivery and a filter policy on eventType;
#   2. an OrderPlaced published with the orderflow CLI;
#   3. what each service's queue received.
# The Lambda functions do not run yet: the local runner comes after the open issues.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cli=${ORDERFLOW_CLI:-$root/target/debug/orderflow}
# awscli v1 pins SQS in us-east-1 to queue.amazonaws.com whatever AWS_ENDPOINT_URL says, so pass
# the endpoint explicitly when one is set.
aws() { command aws ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# service -> the event types its consumer handles (the subscription's filter policy)
services=(payment inventory notification analytics orders)
declare -A handles=(
  [payment]='["OrderPlaced","OrderCancelled"]'
  [inventory]='["OrderPlaced","OrderCancelled"]'
  [notification]='["OrderPlaced","OrderConfirmed","OrderCancelled"]'
  [analytics]='["OrderPlaced","OrderConfirmed","OrderCancelled"]'
  [orders]='["PaymentProcessed","PaymentFailed","InventoryReserved","InventoryOutOfStock"]'
)

topic=$(aws sns create-topic --name orderflow-events --query TopicArn --output text)
echo "topic          $topic"
declare -A queue_url
for svc in "${services[@]}"; do
  dlq_url=$(aws sqs create-queue --queue-name "orderflow-$svc-dlq" --query QueueUrl --output text)
  dlq_arn=$(aws sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
  redrive=$(printf '{"deadLetterTargetArn":"%s","maxReceiveCount":"5"}' "$dlq_arn")
  printf '{"RedrivePolicy":%s}' "$(printf '%s' "$redrive" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" > "$work/attrs.json"
  url=$(aws sqs create-queue --queue-name "orderflow-$svc" --attributes "file://$work/attrs.json" --query QueueUrl --output text)
  arn=$(aws sqs get-queue-attributes --queue-url "$url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
  aws sns subscribe --topic-arn "$topic" --protocol sqs --notification-endpoint "$arn" \
    --attributes "{\"RawMessageDelivery\":\"true\",\"FilterPolicy\":$(python3 -c 'import json,sys; print(json.dumps(json.dumps({"eventType": json.loads(sys.argv[1])})))' "${handles[$svc]}")}" \
    --output text >/dev/null
  queue_url[$svc]=$url
  printf 'queue          %-13s filter eventType in %s, redrive to orderflow-%s-dlq after 5 receives\n' "$svc" "${handles[$svc]}" "$svc"
done

echo
echo "publishing an OrderPlaced with the orderflow CLI:"
"$cli" publish --example order-placed > "$work/order.json"
"$cli" publish --topic-arn "$topic" --file "$work/order.json" | sed 's/^/  eventId messageId: /'

echo
echo "what each service's queue received (SNS delivers asynchronously on AWS: waiting up to 10 s):"
for svc in "${services[@]}"; do
  bodies=$(aws sqs receive-message --queue-url "${queue_url[$svc]}" --wait-time-seconds "$([ "$svc" = orders ] && echo 2 || echo 10)" \
    --max-number-of-messages 10 --query 'Messages[].Body' --output json)
  summary=$(printf '%s' "$bodies" | python3 -c '
import json, sys
bodies = json.load(sys.stdin) or []
print(", ".join("{} v{} {} (eventId {})".format(e["eventType"], e["eventVersion"], e["aggregateId"], e["eventId"][:8])
                for e in map(json.loads, bodies)) or "nothing (its filter does not match OrderPlaced)")')
  printf '  %-13s %s\n' "$svc" "$summary"
done
echo
echo "Next (not built yet): the Lambda binaries consume these queues through a local Runtime API."

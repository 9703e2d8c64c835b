//! Reading a DynamoDB stream the way Lambda's event source mapping does, and handing the
//! records over as the `aws_lambda_events` stream event a function receives.

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;

/// Follows every shard of one table's stream from its start.
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// Each shard's id and where to read it next.
    iterators: Vec<(String, String)>,
}

impl StreamReader {
    /// Opens the stream of `table` (which must have one) at its oldest record.
    pub async fn open(
        config: &aws_config::SdkConfig,
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Self {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("DescribeTable");
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table has a stream")
            .to_owned();
        let client = aws_sdk_dynamodbstreams::Client::new(config);
        let stream = client
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .expect("DescribeStream");
        let mut iterators = Vec::new();
        for shard in stream
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let shard_id = shard.shard_id().unwrap_or_default().to_owned();
            if let Some(iterator) = trim_horizon(&client, &stream_arn, &shard_id).await {
                iterators.push((shard_id, iterator));
            }
        }
        StreamReader {
            client,
            stream_arn,
            iterators,
        }
    }

    /// The records written since the last call, as one Lambda stream event.
    pub async fn next_batch(&mut self) -> StreamEvent {
        let mut records = Vec::new();
        let mut next = Vec::new();
        for (shard_id, iterator) in std::mem::take(&mut self.iterators) {
            let mut used = iterator;
            let out = match self.client.get_records().shard_iterator(&used).send().await {
                Ok(out) => out,
                // What AWS documents for this error: carry on from the oldest record there is.
                // (DynamoDB Local answers it to an iterator taken on an empty shard once other
                // tables have written: see README, "moto, LocalStack and AWS".)
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_trimmed_data_access_exception()) =>
                {
                    let fresh = trim_horizon(&self.client, &self.stream_arn, &shard_id)
                        .await
                        .expect("a TRIM_HORIZON iterator for a shard that exists");
                    used = fresh;
                    self.client
                        .get_records()
                        .shard_iterator(&used)
                        .send()
                        .await
                        .expect("GetRecords from TRIM_HORIZON")
                }
                Err(err) => panic!("GetRecords: {err:?}"),
            };
            records.extend(out.records().iter().map(|r| self.convert(r)));
            let iterator = out.next_shard_iterator().map(str::to_owned).unwrap_or(used);
            next.push((shard_id, iterator));
        }
        self.iterators = next;
        let mut event = StreamEvent::default();
        event.records = records;
        event
    }

    fn convert(&self, record: &aws_sdk_dynamodbstreams::types::Record) -> EventRecord {
        orderflow_local::stream_source::stream_record(record, &self.stream_arn, "us-east-1")
    }
}

/// An iterator at the oldest record of `shard_id`.
async fn trim_horizon(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shard_id: &str,
) -> Option<String> {
    client
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator()
        .map(str::to_owned)
}

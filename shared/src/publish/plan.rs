//! Splitting entries into PublishBatch requests within SNS's limits.

use std::ops::Range;

/// Most entries one PublishBatch request may carry.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Most bytes (bodies plus attributes, summed) one PublishBatch request may carry: SNS rejects
/// a larger request whole with `BatchRequestTooLong`.
pub const MAX_BATCH_BYTES: usize = 262_144;

/// Groups consecutive entries, given their sizes and FIFO message groups, into requests of at
/// most [`MAX_BATCH_ENTRIES`] entries and [`MAX_BATCH_BYTES`] bytes, keeping their order.
///
/// A request holds at most one entry per message group: SNS does not promise that a failed
/// entry fails the entries after it in the same group and request, so a later entry of a group
/// goes in a later request, which is sent only if the earlier one went through.
///
/// Every size must already be within the per-message limit (which equals the per-request one),
/// so every entry fits in a request of its own.
pub(crate) fn plan_requests(entries: &[(usize, Option<&str>)]) -> Vec<Range<usize>> {
    let mut requests = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &(size, group)) in entries.iter().enumerate() {
        let group_taken =
            group.is_some_and(|g| entries[start..i].iter().any(|(_, other)| *other == Some(g)));
        let full = i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES;
        if (full || group_taken) && i > start {
            requests.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        requests.push(start..entries.len());
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sizes: &[usize]) -> Vec<Range<usize>> {
        let entries: Vec<(usize, Option<&str>)> = sizes.iter().map(|s| (*s, None)).collect();
        plan_requests(&entries)
    }

    #[test]
    fn splits_by_count() {
        assert_eq!(plan(&[100; 25]), vec![0..10, 10..20, 20..25]);
        assert_eq!(plan(&[100; 10]), vec![0..10]);
        assert!(plan(&[]).is_empty());
    }

    #[test]
    fn splits_by_bytes() {
        // Three 100 KiB entries: two fit in 256 KiB, the third starts a new request.
        let k100 = 100 * 1024;
        assert_eq!(plan(&[k100, k100, k100]), vec![0..2, 2..3]);
        // Exactly at the limit still fits.
        assert_eq!(plan(&[MAX_BATCH_BYTES - 10, 10, 1]), vec![0..2, 2..3]);
        assert_eq!(plan(&[MAX_BATCH_BYTES, MAX_BATCH_BYTES]), vec![0..1, 1..2]);
    }

    #[test]
    fn a_request_holds_one_entry_per_message_group() {
        let entries = [
            (10, Some("A")),
            (10, Some("B")),
            (10, Some("A")),
            (10, Some("C")),
            (10, Some("A")),
        ];
        assert_eq!(plan_requests(&entries), vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn every_request_is_within_limits() {
        let sizes: Vec<usize> = (0..200).map(|i| (i * 7919) % 90_000 + 1).collect();
        let plan = plan(&sizes);
        assert_eq!(plan.first().unwrap().start, 0);
        assert_eq!(plan.last().unwrap().end, sizes.len());
        for pair in plan.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        for range in plan {
            assert!(range.len() <= MAX_BATCH_ENTRIES);
            assert!(sizes[range].iter().sum::<usize>() <= MAX_BATCH_BYTES);
        }
    }
}

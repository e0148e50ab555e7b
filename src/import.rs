//! `calltrail import FILE`: backfill notifications from a JSON-lines or JSON-array file
//! through the same pipeline as `POST /notify`.

use std::fmt;

use crate::ingest::Ingest;
use crate::store::{self, Recorded};

/// The content type recorded for imported bodies.
pub const IMPORT_CONTENT_TYPE: &str = "application/json";

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// `(item number, reason)` for each rejected item, numbered from 1.
    pub rejections: Vec<(usize, String)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {}, duplicate {}, rejected {}",
            self.accepted, self.duplicate, self.rejected
        )
    }
}

/// Splits a file into notification bodies: the elements of a top-level JSON array, or else
/// one body per non-blank line. Each body keeps the bytes it had in the file.
pub fn split(content: &[u8]) -> Vec<Vec<u8>> {
    let trimmed = content.trim_ascii_start();
    if trimmed.starts_with(b"[") {
        if let Ok(items) = serde_json::from_slice::<Vec<Box<serde_json::value::RawValue>>>(trimmed)
        {
            return items
                .iter()
                .map(|raw| raw.get().as_bytes().to_vec())
                .collect();
        }
    }
    content
        .split(|b| *b == b'\n')
        .map(|line| line.trim_ascii())
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Records every body, in file order.
pub async fn import(pipeline: &Ingest, bodies: &[Vec<u8>]) -> store::Result<Summary> {
    let mut summary = Summary::default();
    for (index, body) in bodies.iter().enumerate() {
        let ingested = pipeline.ingest(body, Some(IMPORT_CONTENT_TYPE)).await?;
        match ingested.recorded {
            Recorded::Accepted { .. } => summary.accepted += 1,
            Recorded::Duplicate { .. } => summary.duplicate += 1,
            Recorded::Rejected { .. } => {
                summary.rejected += 1;
                let reason = match ingested.parsed {
                    Err(rejection) => describe(&rejection),
                    Ok(_) => "rejected".into(),
                };
                summary.rejections.push((index + 1, reason));
            }
        }
    }
    Ok(summary)
}

fn describe(rejection: &crate::notification::Rejection) -> String {
    use crate::notification::Rejection;
    match rejection {
        Rejection::Malformed(detail) => detail.clone(),
        Rejection::Invalid { errors, .. } => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_arrays_into_their_elements() {
        let bodies = split(br#" [ {"a":1}, {"b": [2, 3]} ] "#);
        assert_eq!(
            bodies,
            vec![br#"{"a":1}"#.to_vec(), br#"{"b": [2, 3]}"#.to_vec()]
        );
    }

    #[test]
    fn splits_json_lines_skipping_blank_ones() {
        let bodies = split(b"{\"a\":1}\r\n\n  {\"b\":2}\nnot json\n");
        assert_eq!(
            bodies,
            vec![
                b"{\"a\":1}".to_vec(),
                b"{\"b\":2}".to_vec(),
                b"not json".to_vec()
            ]
        );
    }

    #[test]
    fn a_broken_array_falls_back_to_lines() {
        let bodies = split(b"[1,\n2");
        assert_eq!(bodies, vec![b"[1,".to_vec(), b"2".to_vec()]);
    }
}

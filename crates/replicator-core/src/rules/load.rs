//! Where `REPLICATION_RULES` says the document is: inline JSON, an SSM parameter
//! (`ssm:/NAME`, read with decryption, so a SecureString works), or an S3 object
//! (`s3://BUCKET/KEY`, read with the function's own role, at most [`MAX_RULES_BYTES`]).
//! Read once, at cold start.

use aws_config::SdkConfig;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::RulesError;
use crate::config::env::invalid;
use crate::config::{validate, ConfigError, MIB};

/// The largest rules document read from S3 (S3 itself takes configurations up to 2 MiB of
/// XML; a JSON document of 1,000 rules is well under this).
pub const MAX_RULES_BYTES: u64 = MIB;

const VARIABLE: &str = "REPLICATION_RULES";
const EXPECTED: &str =
    "a JSON document ({\"Rules\": [...]}), ssm:/PARAMETER-NAME or s3://BUCKET/KEY";

/// A parsed `REPLICATION_RULES` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Inline(String),
    Ssm { name: String },
    S3 { bucket: String, key: String },
}

impl Source {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let value = value.trim();
        if value.starts_with('{') {
            return Ok(Self::Inline(value.to_owned()));
        }
        if let Some(name) = value.strip_prefix("ssm:") {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(invalid(VARIABLE, value, EXPECTED));
            }
            return Ok(Self::Ssm {
                name: name.to_owned(),
            });
        }
        if let Some(rest) = value.strip_prefix("s3://") {
            let Some((bucket, key)) = rest.split_once('/').filter(|(_, k)| !k.is_empty()) else {
                return Err(invalid(VARIABLE, value, EXPECTED));
            };
            validate::bucket_name(VARIABLE, bucket)
                .map_err(|_| invalid(VARIABLE, value, EXPECTED))?;
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        let shown: String = value.chars().take(80).collect();
        Err(invalid(VARIABLE, &shown, EXPECTED))
    }

    /// Whether reading it takes a request.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Self::Inline(_))
    }

    /// How errors name it.
    pub fn location(&self) -> String {
        match self {
            Self::Inline(_) => "the inline document".into(),
            Self::Ssm { name } => format!("SSM parameter {name}"),
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// The document's text.
    pub async fn fetch(
        &self,
        sdk: &SdkConfig,
        force_path_style: bool,
    ) -> Result<String, RulesError> {
        let unreadable = |message: String| RulesError::Unreadable {
            location: self.location(),
            message,
        };
        match self {
            Self::Inline(text) => Ok(text.clone()),
            Self::Ssm { name } => {
                let answer = aws_sdk_ssm::Client::new(sdk)
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| {
                        unreadable(format!("GetParameter: {}", DisplayErrorContext(&e)))
                    })?;
                let text = answer
                    .parameter()
                    .and_then(|p| p.value())
                    .ok_or_else(|| unreadable("GetParameter answered no value".into()))?;
                if text.len() as u64 > MAX_RULES_BYTES {
                    return Err(RulesError::TooLarge {
                        location: self.location(),
                        limit: MAX_RULES_BYTES,
                    });
                }
                Ok(text.to_owned())
            }
            Self::S3 { bucket, key } => {
                let s3 = aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(sdk)
                        .force_path_style(force_path_style)
                        .build(),
                );
                let answer = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| unreadable(format!("GetObject: {}", DisplayErrorContext(&e))))?;
                let too_large = || RulesError::TooLarge {
                    location: self.location(),
                    limit: MAX_RULES_BYTES,
                };
                if answer
                    .content_length()
                    .is_some_and(|n| n as u64 > MAX_RULES_BYTES)
                {
                    return Err(too_large());
                }
                let mut body = answer.body;
                let mut bytes = Vec::new();
                while let Some(chunk) = body
                    .try_next()
                    .await
                    .map_err(|e| unreadable(format!("reading the object: {e}")))?
                {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > MAX_RULES_BYTES {
                        return Err(too_large());
                    }
                }
                String::from_utf8(bytes).map_err(|_| unreadable("the object is not UTF-8".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_and_nothing_else() {
        assert_eq!(
            Source::parse(" {\"Rules\": []} ").unwrap(),
            Source::Inline("{\"Rules\": []}".into())
        );
        assert_eq!(
            Source::parse("ssm:/replicator/rules").unwrap(),
            Source::Ssm {
                name: "/replicator/rules".into()
            }
        );
        assert_eq!(
            Source::parse("s3://config-bucket/rules/replication.json").unwrap(),
            Source::S3 {
                bucket: "config-bucket".into(),
                key: "rules/replication.json".into()
            }
        );
        for bad in [
            "ssm:",
            "s3://bucket",
            "s3://bucket/",
            "s3://Bad_Bucket/key",
            "rules.json",
            "[]",
        ] {
            let err = Source::parse(bad).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { variable, .. } if *variable == "REPLICATION_RULES"),
                "{bad}: {err}"
            );
        }
    }
}

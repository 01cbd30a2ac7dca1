//! The destination KMS key, through the destination role: it exists, is an enabled
//! symmetric ENCRYPT_DECRYPT key not pending deletion. Whether the role may encrypt with it
//! is the probe write's to show: the role's grant is through S3 only (`kms:ViaService`),
//! so a direct GenerateDataKey would be denied however right the setup.

use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType};
use replicator_core::permissions;

use super::report::{failed, on_error, statement, Verdict};
use super::Context;

pub async fn describe(cx: &mut Context<'_>) -> Verdict {
    let kms = aws_sdk_kms::Client::new(&cx.clients.destination_sdk);
    let dest = &cx.config.destination;
    let key = &dest.kms_key_id;
    let out = kms.describe_key().key_id(key).send().await.map_err(on_error(format!("the destination role cannot describe KMS key {key}: it does not exist, or neither IAM nor the key policy lets the role use it"),
            format!(
                "allow the destination role: {} (and, if the key policy does not enable IAM policies, add the key-policy statement printed by `replicator policies`)",
                statement(permissions::DESTINATION_KEY_DESCRIBE_ACTIONS, key)
            )))?;
    let meta = out.key_metadata();
    let state = meta.and_then(|m| m.key_state()).cloned();
    let usage = meta.and_then(|m| m.key_usage()).cloned();
    let spec = meta.and_then(|m| m.key_spec()).cloned();
    let arn = meta.and_then(|m| m.arn()).unwrap_or(key).to_owned();
    let detail = format!(
        "{arn}: {}, {}, {}",
        state.as_ref().map(|s| s.as_str()).unwrap_or("?"),
        usage.as_ref().map(|s| s.as_str()).unwrap_or("?"),
        spec.as_ref().map(|s| s.as_str()).unwrap_or("?")
    );
    let key_id = meta.map(|m| m.key_id()).unwrap_or(key);
    let account = &dest.account_id;
    match (&state, &usage, &spec) {
        (
            Some(KeyState::Enabled),
            // An emulator may omit KeyUsage; KMS always reports it.
            Some(KeyUsageType::EncryptDecrypt) | None,
            Some(KeySpec::SymmetricDefault),
        ) => {
            cx.key_arn = Some(arn);
            Ok(detail)
        }
        (Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion), _, _) => Err(failed(
            detail,
            format!("KMS key {arn} is scheduled for deletion: every replica write will fail, and replicas become unreadable once it is deleted"),
            format!("aws kms cancel-key-deletion --key-id {key_id} && aws kms enable-key --key-id {key_id} (in account {account})"),
        )),
        (Some(KeyState::Disabled), _, _) => Err(failed(
            detail,
            format!("KMS key {arn} is disabled: S3 cannot encrypt replicas with it"),
            format!("aws kms enable-key --key-id {key_id} (in account {account})"),
        )),
        _ => Err(failed(
            detail,
            format!("KMS key {arn} is not an enabled symmetric ENCRYPT_DECRYPT key, which SSE-KMS requires"),
            "set DESTINATION_KMS_KEY_ID to an enabled SYMMETRIC_DEFAULT key in the destination account",
        )),
    }
}

//! The one place that turns capnp messages (schema/ddcp.capnp) into this crate's types and back.
//! Every decoder takes bytes from outside (a peer, a file) and answers an error, never a panic.

use capnp::message::{Builder, ReaderOptions};
use capnp::serialize;

use crate::change::{Change, Value};
use crate::protocol::PROTOCOL_VERSION;

mod bundle;
mod protocol;

use crate::ddcp_capnp::{change as change_capnp, changeset, schema as schema_capnp, value};
use crate::ids::{BadSiteId, DbVersion, Seq, SiteId};
use crate::protocol::PublishedSchema;
use crate::schema::{ColumnDesc, SchemaDesc, TableDesc};
use crate::schema_history::{MAX_MIGRATION_BYTES, MAX_MIGRATIONS, SchemaHistory};
pub use bundle::{BundleHeader, decode_bundle_header, encode_bundle_header};
pub use protocol::{
    decode_message, decode_note, decode_published, decode_request, decode_status, encode_message,
    encode_published, encode_status,
};

/// Bytes that are not a valid message of the expected kind.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum CodecError {
    #[error("malformed message: {0}")]
    Capnp(#[from] capnp::Error),
    #[error("malformed message: a field is not valid UTF-8")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("malformed message: {0}")]
    SiteId(#[from] BadSiteId),
    #[error("malformed message: unknown value kind {0}")]
    UnknownValueKind(u16),
    #[error("malformed message: unknown {0} variant")]
    UnknownEnum(&'static str),
    #[error("malformed message: {0} has the wrong length")]
    BadLength(&'static str),
    #[error("malformed message: compressed changes do not decompress ({0})")]
    Decompress(String),
    #[error("malformed message: a member id is not an ed25519 public key")]
    BadMember,
    #[error("malformed message: a sealed status inside a sealed status")]
    UnexpectedSeal,
    #[error("malformed request: an answer's kind of message, sent as a call")]
    NotARequest,
    #[error("malformed note: another kind of message, sent one way")]
    NotANote,
    #[error("peer speaks protocol version {0}, this ddcp speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion(u16),
}

/// Reader limits: a message may not make us walk more than a few times its own size, so a
/// hostile one cannot turn a few bytes into unbounded work.
fn reader_options(message_len: usize) -> ReaderOptions {
    let mut options = ReaderOptions::new();
    options.traversal_limit_in_words(Some(message_len.div_ceil(8) * 4 + 1024));
    options
}

/// Reads one framed message from the front of `bytes` and advances past it.
pub(super) fn read_message(
    bytes: &mut &[u8],
) -> Result<capnp::message::Reader<serialize::OwnedSegments>, CodecError> {
    let options = reader_options(bytes.len());
    Ok(serialize::read_message(bytes, options)?)
}

pub(super) fn write_message(message: &Builder<capnp::message::HeapAllocator>) -> Vec<u8> {
    serialize::write_message_to_words(message)
}

fn fill_value(mut builder: value::Builder<'_>, val: &Value) {
    match val {
        Value::Null => builder.set_null(()),
        Value::Integer(int) => builder.set_integer(*int),
        Value::Real(real) => builder.set_real(*real),
        Value::Text(text) => builder.set_text(text.as_str()),
        Value::Blob(blob) => builder.set_blob(blob),
        Value::RawText(bytes) => builder.set_raw_text(bytes),
    }
}

fn read_value(reader: value::Reader<'_>) -> Result<Value, CodecError> {
    use value::Which;
    Ok(match reader.which() {
        Ok(Which::Null(())) => Value::Null,
        Ok(Which::Integer(int)) => Value::Integer(int),
        Ok(Which::Real(real)) => Value::Real(real),
        Ok(Which::Text(text)) => Value::Text(text?.to_str()?.to_string()),
        Ok(Which::Blob(blob)) => Value::Blob(blob?.to_vec()),
        Ok(Which::RawText(bytes)) => {
            let bytes = bytes?.to_vec();
            // Valid UTF-8 travels as Text: one encoding per value keeps equality simple.
            match String::from_utf8(bytes) {
                Ok(_) => return Err(CodecError::BadLength("rawText holding valid UTF-8")),
                Err(err) => Value::RawText(err.into_bytes()),
            }
        }
        Err(capnp::NotInSchema(kind)) => return Err(CodecError::UnknownValueKind(kind)),
    })
}

pub(super) fn fill_change(mut builder: change_capnp::Builder<'_>, change: &Change) {
    builder.set_table(change.table.as_str());
    builder.set_pk(&change.pk);
    builder.set_cid(change.cid.as_str());
    fill_value(builder.reborrow().init_val(), &change.val);
    builder.set_col_version(change.col_version);
    builder.set_db_version(change.db_version.0);
    builder.set_site_id(&change.site_id.0);
    builder.set_cl(change.cl);
    builder.set_seq(change.seq.0);
}

pub(super) fn read_change(reader: change_capnp::Reader<'_>) -> Result<Change, CodecError> {
    Ok(Change {
        table: reader.get_table()?.to_str()?.to_string(),
        pk: reader.get_pk()?.to_vec(),
        cid: reader.get_cid()?.to_str()?.to_string(),
        val: read_value(reader.get_val()?)?,
        col_version: reader.get_col_version(),
        db_version: DbVersion(reader.get_db_version()),
        site_id: SiteId::from_slice(reader.get_site_id()?)?,
        cl: reader.get_cl(),
        seq: Seq(reader.get_seq()),
    })
}

/// Encodes `changes` as one Changeset message.
pub fn encode_changeset(changes: &[Change]) -> Vec<u8> {
    let mut message = Builder::new_default();
    let root = message.init_root::<changeset::Builder>();
    let mut list = root.init_changes(changes.len() as u32);
    for (index, change) in changes.iter().enumerate() {
        fill_change(list.reborrow().get(index as u32), change);
    }
    write_message(&message)
}

/// Decodes one Changeset message from the front of `bytes`, advancing past it.
pub fn decode_changeset(bytes: &mut &[u8]) -> Result<Vec<Change>, CodecError> {
    let message = read_message(bytes)?;
    let root = message.get_root::<changeset::Reader>()?;
    root.get_changes()?.iter().map(read_change).collect()
}

pub(super) fn fill_schema(builder: schema_capnp::Builder<'_>, schema: &SchemaDesc) {
    let mut tables = builder.init_tables(schema.tables.len() as u32);
    for (index, table) in schema.tables.iter().enumerate() {
        let mut table_builder = tables.reborrow().get(index as u32);
        table_builder.set_name(table.name.as_str());
        let mut columns = table_builder.init_columns(table.columns.len() as u32);
        for (index, column) in table.columns.iter().enumerate() {
            let mut column_builder = columns.reborrow().get(index as u32);
            column_builder.set_name(column.name.as_str());
            column_builder.set_decl_type(column.decl_type.as_str());
            column_builder.set_not_null(column.not_null);
            column_builder.set_pk_index(column.pk_index);
            if let Some(default) = &column.default_value {
                column_builder.set_has_default(true);
                column_builder.set_default_value(default.as_str());
            }
        }
    }
}

/// A schema answer: the shape and the history that made it.
pub(super) fn fill_published_schema(
    mut builder: schema_capnp::Builder<'_>,
    schema: &PublishedSchema,
) {
    fill_schema(builder.reborrow(), &schema.shape);
    let migrations = schema.history.migrations();
    let mut list = builder.init_migrations(migrations.len() as u32);
    for (index, migration) in migrations.iter().enumerate() {
        list.set(index as u32, migration.as_str());
    }
}

/// A schema answer, its history within [`SchemaHistory`]'s bounds (checked before a
/// migration's text is read).
pub(super) fn read_published_schema(
    reader: schema_capnp::Reader<'_>,
) -> Result<PublishedSchema, CodecError> {
    let list = reader.get_migrations()?;
    if list.len() as usize > MAX_MIGRATIONS {
        return Err(CodecError::BadLength("schema history"));
    }
    let mut migrations = Vec::with_capacity(list.len() as usize);
    for migration in list {
        let migration = migration?;
        if migration.len() > MAX_MIGRATION_BYTES {
            return Err(CodecError::BadLength("schema history"));
        }
        migrations.push(migration.to_str()?.to_string());
    }
    Ok(PublishedSchema {
        shape: read_schema(reader)?,
        history: SchemaHistory::new(migrations)
            .map_err(|_| CodecError::BadLength("schema history"))?,
    })
}

pub(super) fn read_schema(reader: schema_capnp::Reader<'_>) -> Result<SchemaDesc, CodecError> {
    let mut tables = Vec::new();
    for table in reader.get_tables()? {
        let mut columns = Vec::new();
        for column in table.get_columns()? {
            columns.push(ColumnDesc {
                name: column.get_name()?.to_str()?.to_string(),
                decl_type: column.get_decl_type()?.to_str()?.to_string(),
                not_null: column.get_not_null(),
                pk_index: column.get_pk_index(),
                default_value: if column.get_has_default() {
                    Some(column.get_default_value()?.to_str()?.to_string())
                } else {
                    None
                },
            });
        }
        tables.push(TableDesc {
            name: table.get_name()?.to_str()?.to_string(),
            columns,
        });
    }
    Ok(SchemaDesc::new(tables))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_changes() -> Vec<Change> {
        let values = [
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Integer(i64::MAX),
            Value::Real(-0.5),
            Value::Text(String::new()),
            Value::Text("Grüße, 世界 🌍".into()),
            Value::Blob(Vec::new()),
            Value::Blob(vec![0, 255, 1]),
            Value::RawText(vec![b'a', 0xff, b'b']),
        ];
        values
            .into_iter()
            .enumerate()
            .map(|(index, val)| Change {
                table: "items".into(),
                pk: vec![1, 9, index as u8],
                cid: "name".into(),
                val,
                col_version: 3,
                db_version: DbVersion(index as i64 + 1),
                site_id: SiteId([index as u8; 16]),
                cl: 1,
                seq: Seq(index as i64),
            })
            .collect()
    }

    #[test]
    fn changesets_round_trip_every_kind_of_value() {
        let changes = sample_changes();
        let bytes = encode_changeset(&changes);
        let mut rest = bytes.as_slice();
        assert_eq!(decode_changeset(&mut rest).unwrap(), changes);
        assert!(rest.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bytes = encode_changeset(&sample_changes());
        for cut in [0, 1, 7, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode_changeset(&mut &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        for byte in flipped.iter_mut().skip(8).step_by(3) {
            *byte ^= 0x5a;
        }
        let _ = decode_changeset(&mut flipped.as_slice());
    }
}

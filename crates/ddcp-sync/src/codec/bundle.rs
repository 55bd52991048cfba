//! The bundle file's header message.

use capnp::message::Builder;

use super::{CodecError, fill_schema, read_message, read_schema, write_message};
use crate::ddcp_capnp::bundle_header;
use crate::ids::{DbVersion, SiteId};
use crate::schema::SchemaDesc;

/// What a bundle file says about itself before its changes.
#[derive(Clone, Debug, PartialEq)]
pub struct BundleHeader {
    /// The bundle format (see `bundle::FORMAT_VERSION`).
    pub format_version: u32,
    /// The database the bundle was made from.
    pub site_id: SiteId,
    /// The bundle holds that database's changes after this version ...
    pub since: DbVersion,
    /// ... up to and including this one.
    pub until: DbVersion,
    /// How many changes follow the header.
    pub change_count: u64,
    /// The source's CRR schema: a bundle applies only to a database with the same one.
    pub schema: SchemaDesc,
}

/// Encodes a bundle header message.
pub fn encode_bundle_header(header: &BundleHeader) -> Vec<u8> {
    let mut message = Builder::new_default();
    let mut root = message.init_root::<bundle_header::Builder>();
    root.set_format_version(header.format_version);
    root.set_site_id(&header.site_id.0);
    root.set_since_version(header.since.0);
    root.set_until_version(header.until.0);
    root.set_change_count(header.change_count);
    fill_schema(root.init_schema(), &header.schema);
    write_message(&message)
}

/// Decodes a bundle header message from the front of `bytes`, advancing past it.
pub fn decode_bundle_header(bytes: &mut &[u8]) -> Result<BundleHeader, CodecError> {
    let message = read_message(bytes)?;
    let root = message.get_root::<bundle_header::Reader>()?;
    Ok(BundleHeader {
        format_version: root.get_format_version(),
        site_id: SiteId::from_slice(root.get_site_id()?)?,
        since: DbVersion(root.get_since_version()),
        until: DbVersion(root.get_until_version()),
        change_count: root.get_change_count(),
        schema: read_schema(root.get_schema()?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnDesc, TableDesc};

    #[test]
    fn bundle_headers_round_trip() {
        let header = BundleHeader {
            format_version: 1,
            site_id: SiteId([3; 16]),
            since: DbVersion(4),
            until: DbVersion(9),
            change_count: 12,
            schema: SchemaDesc::new(vec![TableDesc {
                name: "items".into(),
                columns: vec![ColumnDesc {
                    name: "id".into(),
                    decl_type: "TEXT".into(),
                    not_null: true,
                    pk_index: 1,
                    default_value: Some("'x'".into()),
                }],
            }]),
        };
        let bytes = encode_bundle_header(&header);
        assert_eq!(decode_bundle_header(&mut bytes.as_slice()).unwrap(), header);
    }
}

//! cr-sqlite's packed primary key (`crsql_changes.pk`): a column count byte, then per column a
//! byte whose low three bits are the type and whose high five bits are the length of a
//! following big-endian integer (the value for INTEGER, the byte length for TEXT and BLOB),
//! then the bytes. A negative INTEGER takes 8 bytes; a shorter one is zero-extended.

use super::change::Value;

const INTEGER: u8 = 1;
const FLOAT: u8 = 2;
const TEXT: u8 = 3;
const BLOB: u8 = 4;
const NULL: u8 = 5;

/// The values of a packed primary key, in key order. The reason when it is malformed.
pub fn unpack(pk: &[u8]) -> Result<Vec<Value>, &'static str> {
    let (&count, mut rest) = pk.split_first().ok_or("empty")?;
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        if rest.len() < n {
            return Err("truncated");
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let big_endian = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut values = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let tag = take(1)?[0];
        let int_len = (tag >> 3) as usize;
        let value = match tag & 0x07 {
            INTEGER | TEXT | BLOB if int_len > 8 => return Err("integer longer than 8 bytes"),
            INTEGER => Value::Integer(big_endian(take(int_len)?) as i64),
            FLOAT => Value::Real(f64::from_bits(big_endian(take(8)?))),
            kind @ (TEXT | BLOB) => {
                let len = usize::try_from(big_endian(take(int_len)?))
                    .map_err(|_| "length out of range")?;
                let bytes = take(len)?.to_vec();
                match (kind, String::from_utf8(bytes)) {
                    (TEXT, Ok(text)) => Value::Text(text),
                    (TEXT, Err(err)) => Value::RawText(err.into_bytes()),
                    (_, Ok(text)) => Value::Blob(text.into_bytes()),
                    (_, Err(err)) => Value::Blob(err.into_bytes()),
                }
            }
            NULL => Value::Null,
            _ => return Err("unknown column type"),
        };
        values.push(value);
    }
    if !rest.is_empty() {
        return Err("trailing bytes");
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    #[test]
    fn reads_what_cr_sqlite_0_16_packs() {
        // `select hex(crsql_pack_columns(...))` on cr-sqlite 0.16.3.
        let cases = [
            ("0111D431", vec![Value::Integer(54321)]),
            ("0141FFFFFFFFFFFFFFFF", vec![Value::Integer(-1)]),
            ("0141FFFFFFFFFFFFFED4", vec![Value::Integer(-300)]),
            ("0101", vec![Value::Integer(0)]),
            ("01417FFFFFFFFFFFFFFF", vec![Value::Integer(i64::MAX)]),
            ("01418000000000000000", vec![Value::Integer(i64::MIN)]),
            ("01023FF8000000000000", vec![Value::Real(1.5)]),
            ("0105", vec![Value::Null]),
            ("010C0200FF", vec![Value::Blob(vec![0, 0xff])]),
            ("0103", vec![Value::Text(String::new())]),
            (
                "020B01780905",
                vec![Value::Text("x".into()), Value::Integer(5)],
            ),
        ];
        for (packed, values) in cases {
            assert_eq!(unpack(&unhex(packed)), Ok(values), "{packed}");
        }
    }

    #[test]
    fn refuses_malformed_keys() {
        for (packed, reason) in [
            ("", "empty"),
            ("010B0978", "truncated"),
            ("0149000000000000000000", "integer longer than 8 bytes"),
            ("0107", "unknown column type"),
            ("010500", "trailing bytes"),
        ] {
            assert_eq!(unpack(&unhex(packed)), Err(reason), "{packed}");
        }
    }
}

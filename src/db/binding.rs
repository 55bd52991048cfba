//! Which DHT record a database belongs to: `ddcp init` writes the record key (without its
//! secret) into `ddcp_meta`, so that a command given one database and another database's state
//! dir refuses to mix them (serve would publish this database under the other's record).

use rusqlite::OptionalExtension;

use super::{Db, DbError};
use crate::sync::RecordKey;

impl Db {
    /// The record this database belongs to, when it knows one (databases initialized before
    /// the binding existed do not, until a command binds them).
    pub fn bound_record(&self) -> Result<Option<RecordKey>, DbError> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "select value from ddcp_meta where key = 'record_key'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        text.map(|text| {
            text.parse()
                .map_err(|_| DbError::CorruptMetadata("record_key is not a record key".into()))
        })
        .transpose()
    }

    /// Binds the database to `record` (its secret is not stored here).
    pub fn bind_record(&self, record: &RecordKey) -> Result<(), DbError> {
        self.conn().execute(
            "insert into ddcp_meta (key, value) values ('record_key', ?1)
             on conflict (key) do update set value = excluded.value",
            [record.without_secret().to_string()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::db::test_support::temp_db;
    use crate::sync::RecordKey;

    #[test]
    fn a_database_remembers_its_record_without_the_secret() {
        let (_dir, db) = temp_db();
        assert_eq!(db.bound_record().unwrap(), None);
        let key = "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY";
        let with_secret: RecordKey = format!("{key}:{}", &key[5..]).parse().unwrap();
        db.bind_record(&with_secret).unwrap();
        let bound = db.bound_record().unwrap().unwrap();
        assert_eq!(bound, with_secret.without_secret());
        assert_eq!(bound.secret(), None);
    }
}

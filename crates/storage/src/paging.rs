//! Paging (SPEC 1), once for every list: the total count of a query, and one page of it.

use sea_orm::sea_query::ColumnType;
use sea_orm::{EntityTrait, FromQueryResult, QuerySelect, QueryTrait, Select, Statement};
use switchboard_domain::paging::{Page, PageRequest};

use crate::{Result, Store};

impl Store {
    /// The rows of `query` (already in its order) on page `page`, and how many rows it has in
    /// all, both read through the read door.
    pub(crate) async fn read_page<E>(
        &self,
        query: Select<E>,
        page: PageRequest,
    ) -> Result<Page<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Send + Sync,
    {
        let backend = self.backend();
        let inner = query.clone().build(backend);
        let count = Statement {
            sql: format!(
                "SELECT COUNT(*) AS num_items FROM ({}) AS sub_query",
                inner.sql
            ),
            ..inner
        };
        let total = self
            .read_rows(count, &[("num_items", ColumnType::BigInteger)])
            .await?
            .first()
            .map(|row| row.try_get::<i64>("", "num_items"))
            .transpose()?
            .unwrap_or_default();
        let results = self
            .read_all(query.offset(page.offset()).limit(page.size))
            .await?;
        Ok(Page {
            number: page.number,
            size: page.size,
            total: u64::try_from(total).unwrap_or_default(),
            results,
        })
    }
}
